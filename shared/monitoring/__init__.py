"""Monitoring shared by the device and the cloud: one feature projection, one set of drift metrics.

numpy only (the device runs it offline on its own store). `features` turns a posting or a logged
prediction into one row; `drift` compares two sets of rows the way Vertex AI Model Monitoring does
(L-infinity for categorical features, Jensen-Shannon divergence for bucketed numeric ones, plus PSI);
`trends` turns rows into per-skill shares and the trends file the device's advice reads.
"""
