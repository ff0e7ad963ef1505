"""Spoken-language detection on phone-call transcripts, measured (``python -m bench.language``)."""
