"""What one child process measures: the VAD of N concurrent calls.

Lockstep (``measure_point``): a tick hands every call its next 20 ms frame at once
(``asyncio.gather``), as when the actors of concurrent calls run in the same event-loop
iteration, so callweaver's shared model sees all their windows together and batches them.
Ticks run back to back, unpaced: the process does nothing but VAD, so its CPU time
(``time.process_time``, which counts every thread, onnxruntime's and the executors' included)
per call-frame is the VAD's cost per call per 20 ms. Calls start at different offsets in the
speech file and join the warm-up one tick apart over 8 ticks (20 ms frames and 32 ms windows
line up every 160 ms), so their windows complete on different ticks. RSS is read in the same
process: after imports, after the first call has run (for callweaver that includes the
process's one model), and after all N have run (steady state).

Paced (``measure_paced``): real time, call i's frames due every 20 ms at i/N of the period, each
call its own task, so windows reach the model spread over time, as from calls on separate
connections. ``FloorSide`` runs the same pacing with no VAD: the harness's own CPU.
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import sys
import time
import wave
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parents[2]
AUDIO = ROOT / "examples" / "audio" / "caller.wav"
RATE = 16000
FRAME_BYTES = 640  # 20 ms of 16 kHz PCM16 mono
FRAME_NS = 20_000_000
FRAME_S = 0.020
PHASES = 8  # frames per 160 ms, where 20 ms frames and 32 ms windows line up again
THRESHOLD = 0.5  # speech probability counted as speech by the agreement check

Json = dict[str, Any]


def load_frames(path: Path = AUDIO) -> list[bytes]:
    """The speech file cut into whole 20 ms frames (the tail shorter than a frame dropped)."""
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
            raise ValueError(f"{path} must be 16 kHz mono PCM16")
        pcm = w.readframes(w.getnframes())
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def rss_bytes() -> int:
    import psutil  # type: ignore[import-untyped,unused-ignore]

    return int(psutil.Process().memory_info().rss)


def thread_count() -> int:
    import psutil  # type: ignore[import-untyped,unused-ignore]

    return int(psutil.Process().num_threads())


class Side(Protocol):
    """One framework's VAD, one instance per call, as the driver sees it."""

    name: str
    probs: list[list[float]]
    """Per call, the speech probability of each 32 ms window (filled only when recording)."""

    def add_call(self) -> None:
        """Create the VAD of one more call, set up the way the framework sets it up."""
        ...

    def feed(self, call: int, pcm: bytes, pts_ns: int) -> Awaitable[object]:
        """Analyse ``call``'s next frame, as the framework's pipeline does per audio frame."""
        ...

    def mark(self) -> None:
        """The measured phase starts: zero the side's own counters."""
        ...

    def stats(self) -> Json:
        """The side's own figures for the measured phase."""
        ...


class CallweaverSide:
    """``SileroVAD`` processors with default params; ``classify`` is their per-frame work."""

    def __init__(self, record: bool = False) -> None:
        from callweaver.frames.audio import InputAudioFrame
        from callweaver.processors.silero_vad import SileroVAD, SileroVADParams
        from callweaver.resources.silero import SileroVADModel, VADStream, shared_model

        probs: list[list[float]] = []

        class Recording(SileroVAD):
            """Keeps each window's probability; only the agreement check uses it. Every window
            is scored (none skipped as too quiet), so that the check compares the model."""

            def __init__(self) -> None:
                super().__init__(SileroVADParams(min_volume_dbfs=-math.inf))
                self.mine: list[float] = []
                probs.append(self.mine)  # in call order, whenever the call's audio starts

            def _open(self, frame: InputAudioFrame) -> VADStream:
                stream = super()._open(frame)
                mine, score = self.mine, stream.probability

                async def probability(window: Any) -> float:
                    p = await score(window)
                    mine.append(p)
                    return p

                stream.probability = probability  # type: ignore[method-assign]
                return stream

        self.name = f"callweaver {version('callweaver')}"
        self.probs = probs
        self._frame = InputAudioFrame
        self._kind: type[SileroVAD] = Recording if record else SileroVAD
        self._vads: list[SileroVAD] = []
        self._model: SileroVADModel | None = None
        self._shared_model = shared_model
        self._skipped0 = 0

    def add_call(self) -> None:
        self._vads.append(self._kind())

    def feed(self, call: int, pcm: bytes, pts_ns: int) -> Awaitable[object]:
        frame = self._frame(pcm=pcm, sample_rate=RATE, pts_ns=pts_ns, ts_ns=pts_ns)
        return self._vads[call].classify(frame)

    def mark(self) -> None:
        model = self._model = self._shared_model()
        model.batches = model.windows = model.max_batch = 0
        self._skipped0 = self._skipped()

    def _skipped(self) -> int:
        """Windows too quiet to score, over the calls' streams."""
        return sum(v._stream.skipped for v in self._vads if v._stream is not None)

    def stats(self) -> Json:
        model = self._model or self._shared_model()
        return {
            "batches": model.batches,
            "windows": model.windows,
            "skipped": self._skipped() - self._skipped0,
            "max_batch": model.max_batch,
            "mean_batch": round(model.windows / model.batches, 2) if model.batches else 0.0,
        }


class PipecatSide:
    """``SileroVADAnalyzer`` per call; ``analyze_audio`` is what pipecat's ``VADController``
    awaits for every input audio frame (model, loudness and state machine, on the analyzer's
    own executor thread)."""

    def __init__(self, record: bool = False, resets: bool = True) -> None:
        from loguru import logger

        logger.remove()  # pipecat logs at DEBUG on every analyzer it creates
        logger.add(sys.stderr, level="WARNING")
        from pipecat.audio.vad.silero import SileroVADAnalyzer

        self.name = f"pipecat-ai {version('pipecat-ai')}"
        self.probs: list[list[float]] = []
        self._record = record
        self._resets = resets
        self._make = SileroVADAnalyzer
        self._analyzers: list[SileroVADAnalyzer] = []

    def add_call(self) -> None:
        analyzer = self._make(sample_rate=RATE)
        analyzer.set_sample_rate(RATE)  # what VADController.setup does
        if self._record:
            mine: list[float] = []
            self.probs.append(mine)
            score = analyzer.voice_confidence

            def voice_confidence(buffer: bytes) -> float:
                p = score(buffer)
                mine.append(float(getattr(p, "item", lambda: p)()))
                return p

            analyzer.voice_confidence = voice_confidence  # type: ignore[method-assign]
        if not self._resets:  # the agreement check's exact-match variant only
            analyzer._maybe_reset_model = lambda confidence: None  # type: ignore[method-assign]
        self._analyzers.append(analyzer)

    def feed(self, call: int, pcm: bytes, pts_ns: int) -> Awaitable[object]:
        return self._analyzers[call].analyze_audio(pcm)

    def mark(self) -> None:
        pass

    def stats(self) -> Json:
        return {}


class FloorSide:
    """No VAD at all: what the paced driver itself costs per call-frame (timers, wake-ups)."""

    def __init__(self, record: bool = False) -> None:
        self.name = "no VAD (harness floor)"
        self.probs: list[list[float]] = []

    def add_call(self) -> None:
        pass

    async def _nothing(self) -> None:
        pass

    def feed(self, call: int, pcm: bytes, pts_ns: int) -> Awaitable[object]:
        return self._nothing()

    def mark(self) -> None:
        pass

    def stats(self) -> Json:
        return {}


SIDES: dict[str, type[CallweaverSide] | type[PipecatSide] | type[FloorSide]] = {
    "callweaver": CallweaverSide,
    "pipecat": PipecatSide,
    "floor": FloorSide,
}


@dataclass
class _Feed:
    """Where one call is in the looped speech file."""

    offset: int
    sent: int = 0


async def _tick(side: Side, feeds: list[_Feed], active: Sequence[int], frames: list[bytes]) -> None:
    """Every active call's next frame, all in this loop iteration."""
    pending = []
    for i in active:
        f = feeds[i]
        pending.append(side.feed(i, frames[(f.offset + f.sent) % len(frames)], f.sent * FRAME_NS))
        f.sent += 1
    await asyncio.gather(*pending)


def _offsets(calls: int, n_frames: int) -> list[int]:
    return [i * n_frames // calls for i in range(calls)]


async def measure_point(side: Side, calls: int, ticks: int, warmup: int) -> Json:
    """CPU per call-frame, wall per tick and RSS for ``calls`` concurrent calls."""
    if warmup < PHASES:
        raise ValueError(f"warmup must be at least {PHASES} ticks (the staggered start)")
    frames = load_frames()
    gc.collect()
    rss0 = rss_bytes()
    feeds = [_Feed(o) for o in _offsets(calls, len(frames))]
    side.add_call()
    for _ in range(warmup):
        await _tick(side, feeds, [0], frames)
    gc.collect()
    rss1 = rss_bytes()
    for _ in range(1, calls):
        side.add_call()
    for t in range(warmup):
        await _tick(side, feeds, [i for i in range(calls) if i == 0 or t >= i % PHASES], frames)

    everyone = range(calls)
    walls: list[float] = []
    side.mark()
    cpu0 = time.process_time()
    for _ in range(ticks):
        t0 = time.perf_counter()
        await _tick(side, feeds, everyone, frames)
        walls.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    stats = side.stats()
    gc.collect()
    rss_n = rss_bytes()
    return {
        "side": side.name,
        "calls": calls,
        "ticks": ticks,
        "warmup": warmup,
        "cpu_us_per_call_frame": round(cpu * 1e6 / (calls * ticks), 1),
        "wall_us_per_tick": {
            "median": round(statistics.median(walls) * 1e6, 1),
            "mean": round(statistics.fmean(walls) * 1e6, 1),
        },
        "rss_kb": {"imports": rss0 // 1024, "one_call": rss1 // 1024, "all_calls": rss_n // 1024},
        "rss_kb_first_call": round((rss1 - rss0) / 1024, 1),
        "rss_kb_per_additional_call": (
            round((rss_n - rss1) / 1024 / (calls - 1), 1) if calls > 1 else None
        ),
        "rss_kb_per_call": round((rss_n - rss0) / 1024 / calls, 1),
        "threads": thread_count(),
        **stats,
    }


async def _paced(
    side: Side, feeds: list[_Feed], frames: list[bytes], seconds: float
) -> list[float]:
    """Each call's frames every 20 ms, call i at i/N of the period; returns, per frame, how
    long after it was due its analysis finished (s)."""
    loop = asyncio.get_running_loop()
    count = round(seconds / FRAME_S)
    start = loop.time() + 0.01
    done_after: list[float] = []

    async def call(i: int) -> None:
        f, phase = feeds[i], start + i * FRAME_S / len(feeds)
        for k in range(count):
            due = phase + k * FRAME_S
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await side.feed(i, frames[(f.offset + f.sent) % len(frames)], f.sent * FRAME_NS)
            f.sent += 1
            done_after.append(loop.time() - due)

    await asyncio.gather(*(call(i) for i in range(len(feeds))))
    return done_after


async def measure_paced(side: Side, calls: int, seconds: float, warmup_s: float) -> Json:
    """CPU per call-frame in real time, each call's frames arriving at its own phase.

    Calls over separate connections do not deliver their frames in the same loop iteration;
    their windows reach the shared model spread over time, and only those that arrive while
    an inference is running (or in the same iteration) share a batch. This is that case.
    """
    frames = load_frames()
    feeds = [_Feed(o) for o in _offsets(calls, len(frames))]
    for _ in range(calls):
        side.add_call()
    await _paced(side, feeds, frames, warmup_s)
    side.mark()
    cpu0 = time.process_time()
    done_after = sorted(await _paced(side, feeds, frames, seconds))
    cpu = time.process_time() - cpu0
    return {
        "side": side.name,
        "calls": calls,
        "seconds": seconds,
        "cpu_us_per_call_frame": round(cpu * 1e6 / len(done_after), 1),
        "done_after_due_ms": {
            "median": round(statistics.median(done_after) * 1e3, 2),
            "p99": round(done_after[int(0.99 * (len(done_after) - 1))] * 1e3, 2),
        },
        "late_fraction": round(sum(d > FRAME_S for d in done_after) / len(done_after), 4),
        **side.stats(),
    }


async def _probabilities(side: Side, calls: int, frames_per_call: int) -> list[list[float]]:
    """Each call's window probabilities over ``frames_per_call`` frames, staggered starts."""
    frames = load_frames()
    feeds = [_Feed(o) for o in _offsets(calls, len(frames))]
    for _ in range(calls):
        side.add_call()
    for t in range(frames_per_call + PHASES):
        active = [i for i in range(calls) if t >= i % PHASES and feeds[i].sent < frames_per_call]
        await _tick(side, feeds, active, frames)
    return side.probs


def _compare(ours: list[list[float]], theirs: list[list[float]]) -> Json:
    pairs = [
        (c, p) for cw, pc in zip(ours, theirs, strict=True) for c, p in zip(cw, pc, strict=True)
    ]
    diffs = sorted(abs(c - p) for c, p in pairs)
    return {
        "windows": len(pairs),
        "agree_fraction": round(
            sum((c >= THRESHOLD) == (p >= THRESHOLD) for c, p in pairs) / len(pairs), 4
        ),
        "speech_fraction": {
            "callweaver": round(sum(c >= THRESHOLD for c, _ in pairs) / len(pairs), 3),
            "pipecat": round(sum(p >= THRESHOLD for _, p in pairs) / len(pairs), 3),
        },
        "prob_abs_diff": {
            "mean": round(statistics.fmean(diffs), 4),
            "p99": round(diffs[int(0.99 * (len(diffs) - 1))], 4),
            "max": round(diffs[-1], 4),
        },
    }


async def measure_agreement(calls: int, frames_per_call: int) -> Json:
    """Both sides on the same audio: how often they agree that a 32 ms window is speech.

    Same model file and the same windows, so a real disagreement means one side is fed
    wrongly (or that callweaver's batching mixes up calls' states). pipecat resets its model's
    state during quiet stretches every 2 s of audio and callweaver does not, so pipecat is
    also run with that reset off: then every probability must match exactly.
    """
    ours = await _probabilities(CallweaverSide(record=True), calls, frames_per_call)
    shipped = await _probabilities(PipecatSide(record=True), calls, frames_per_call)
    no_reset = await _probabilities(PipecatSide(record=True, resets=False), calls, frames_per_call)
    return {
        "calls": calls,
        "frames_per_call": frames_per_call,
        "threshold": THRESHOLD,
        "pipecat_as_shipped": _compare(ours, shipped),
        "pipecat_without_state_reset": _compare(ours, no_reset),
    }


def run_child(kind: str, calls: int, ticks: int, warmup: int, paced_s: float = 0.0) -> Json:
    """Body of one child process: one side at one N (lockstep, or paced for ``paced_s``
    seconds after ``warmup`` frames of pacing), or the agreement check."""
    import onnxruntime  # noqa: F401  # the runtime library is per process, not per call

    if kind == "agree":
        return asyncio.run(measure_agreement(calls, ticks))
    side = SIDES[kind]()
    if paced_s > 0:
        return asyncio.run(measure_paced(side, calls, paced_s, warmup * FRAME_S))
    return asyncio.run(measure_point(side, calls, ticks, warmup))
