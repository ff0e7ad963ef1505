"""The server: one ASGI app (FastAPI on uvicorn) serving every transport a deployment enables,
with ``/health`` and ``/metrics``."""
