"""The offline voice agent end to end: voice-to-voice per stage, memory, and concurrent calls.

    python -m bench.offline_agent [--quick] [--out docs/benchmarks.md]

Everything runs the real stack of ``configs/local.yaml`` (silero VAD -> whisper tiny.en ->
declared answers matched by MiniLM -> piper, flite as its fallback), loaded with
``load_config`` and run as ``Call(dep.graph)`` over a paced :class:`FileIO`, the way
``callweaver simulate`` runs a file call (on uvloop when installed, as the CLI does).

The callers are flite voices other than the bot's (rms, awb, kal16), synthesized at run time
into a temporary directory: questions for every declared answer and a few the clinic has no
answer for (the no-match reply). Four measures:

1. *Cold call*: the first call of this process, which loads every model on its start; a task
   that wakes every 10 ms records how long the event loop was blocked meanwhile.
2. *One call at a time*: one phone call per question (lead silence, the question, then the
   bot's reply plays until the call hangs up), every stage's p50/p95/p99 after the end of
   caller speech, where the time between stages goes, and correctness per turn: the
   transcript against the words spoken, the reply chosen against the expected answer (and
   the answer the question's own text would get, to tell recognition errors from matching
   errors), and the reply audio transcribed back by whisper.
3. *Memory*: a fresh child process loads each model in turn (psutil RSS after each), then
   runs two calls.
4. *Concurrent calls*: N paced calls at once in this process (each asks a few questions,
   waiting for each reply to play; calls start at random offsets), v2v p50/p95 per N; N is
   sustained while the p95 stays within ``--slowdown`` times the p95 of (2).

Results go to ``bench/results/offline_agent.json`` and the ``offline-agent`` section of
``docs/benchmarks.md`` (``--quick``: fewer turns and calls, ``offline_agent-quick.json``, the
report untouched unless ``--out`` is given). A watchdog ends a hung run.
"""

# The modules, in the order they import each other: questions (the callers' questions and
# voices) <- answers (the bot's declared replies) <- probes (loop stalls, busy cores) <- calls
# (paced calls and their turns) <- stats <- measure (the run's measures); memory (the fresh
# process); report (the docs section); __main__ (the CLI).

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "local.yaml"

Json = dict[str, Any]
