"""The Hugging Face Hub side: Model B's weekly push (`push.py`) and the API client both it and the Space
push use (`api.py`: token from the environment only)."""
