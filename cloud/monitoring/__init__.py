"""Cloud-side monitoring: skew and drift over time, the trends file, the weekly replay, the report,
the Vertex AI exporter. The metrics themselves live in `shared.monitoring` (the device runs them too)."""
