"""Text utilities shared by the reply and speech stages (pure functions, no I/O)."""
