"""Cost model of the small-model-vs-LLM study: a dated price table, the small model's deployment and MLOps
inputs (each one measured here, from a dated source, or assumed, and labelled so), cost per 1,000
predictions and the break-even monthly volume (`careeredge-cloud report-slm-llm`)."""
