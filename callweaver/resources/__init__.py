"""Process-wide resources shared by every call: models and their batching. One module each."""
