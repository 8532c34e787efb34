"""Model A as a Hugging Face Space: the Gradio app (`app.py`), its asynchronous prediction log
(`prediction_log.py`) and `careeredge-cloud space build / push` (`command.py`)."""
