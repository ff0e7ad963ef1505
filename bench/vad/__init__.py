"""VAD benchmark: callweaver's batched silero against pipecat's one-session-per-call silero.

See ``drivers.py`` for what one measured point does and ``__main__.py`` for the CLI.
"""
