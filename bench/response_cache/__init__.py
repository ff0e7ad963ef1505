"""The response cache, measured on its real paths (``python -m bench.response_cache``).

1. **Hit rate** (:mod:`.hitrate`): scripted calls to a clinic's front desk (:mod:`.calls`,
   English and Spanish: rephrased common questions, near misses, personal data, follow-ups,
   short answers, each turn labelled with the intent whose reply it needs), run in order
   through the ``cache`` node and an ``llm`` node (``cacheable: true``) against the tests'
   fake OpenAI server, so later calls are served what earlier ones taught. Per setup (declared
   answers and learning, learning only, the seeds' rule of MiniLM cosine alone at 0.85): how
   many turns the cache answered, how many of those with another question's reply, how many
   requests the LLM was spared, what the guard refused, and why each repeat question missed;
   next to the seeds' promised 40 %. Text only, a few seconds.
2. **Latency** (:mod:`.latency`): callers speaking the clinic's questions into paced file
   calls through silero VAD, whisper, the ``cache`` node, an ``llm`` node (the fake server in
   another process, 200 ms to its first token) and piper: voice-to-voice on a hit with the
   audio cached, on a text-only hit, on a miss (the cost of a lookup added to an LLM turn),
   and with no cache at all.

Memory per 10 000 entries and the stores' own latency are ``bench.cache_store``'s; lookup
time at 10 000 entries is ``bench.matcher``'s.
"""
