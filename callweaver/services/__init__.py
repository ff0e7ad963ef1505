"""Services: STT, LLM and TTS providers, and what wraps them (health, failover)."""
