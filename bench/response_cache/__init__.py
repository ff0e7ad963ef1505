"""The response cache, measured on its real paths (``python -m bench.response_cache``).

1. **Hit rate** (:mod:`.hitrate`): 22 scripted calls, 76 caller turns (:mod:`.calls`), run in
   order through the ``cache`` node and an ``llm`` node against the fake OpenAI server: how
   many turns the cache answered, how many of those wrongly, and how many requests the LLM
   got, with declared answers and learning, with learning only, and with the seeds' rule
   (MiniLM cosine alone at 0.85), next to the seeds' promised 40 %.
2. **Latency** (:mod:`.latency`): callers speaking the clinic's questions into paced file
   calls through silero VAD, whisper, the ``cache`` node, an ``llm`` node (the fake server in
   another process, 200 ms to its first token) and piper: voice-to-voice on a hit with the
   audio cached, on a text-only hit, on a miss (the cost of a lookup added to an LLM turn),
   and with no cache at all.

Memory per 10 000 entries and the stores' own latency are ``bench.cache_store``'s; lookup
time at 10 000 entries is ``bench.matcher``'s.
"""
