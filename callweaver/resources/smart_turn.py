"""Smart-turn v3: has the caller finished their turn? One ONNX session per process.

The model (pipecat's smart-turn v3.2, a Whisper-tiny encoder with a classifier head, about
8 MB quantized) hears the last 8 s of a turn and returns the probability that the speaker is
done. It looks at prosody and wording together, so "I would like to book a table for..." with
a long pause is still an unfinished turn, while "...for two people tonight." is a finished one.

Input contract (what the model was trained on, and what pipecat feeds it):

- 16 kHz mono, floats in [-1, 1]; exactly 8 s: a longer turn keeps its last 8 s, a shorter one
  is padded with zeros *in front*, so the end of speech always sits at the end of the window;
- the window is normalized to zero mean and unit variance (padding included), then turned into
  Whisper's log-mel spectrogram (:func:`log_mel`): 80 mel bands, 25 ms windows every 10 ms,
  800 frames;
- the output is already a probability (a sigmoid inside the graph): >= 0.5 means complete.

Decisions run on one worker thread (onnxruntime releases the GIL), feature extraction
included, so the event loop keeps moving frames meanwhile; decisions of several calls queue on
that thread in arrival order. They are not batched: a batch of B costs B single inferences on
CPU, so batching would only make the first call of a batch wait for the last.

The model file ships inside the ``pipecat-ai`` wheel (BSD-2-Clause). It is found there
*without importing pipecat* (which would pull in its whole framework) and run with
``onnxruntime`` directly.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from callweaver.errors import ModelUnavailable

__all__ = [
    "SAMPLE_RATE",
    "WINDOW_SAMPLES",
    "SmartTurnModel",
    "SmartTurnUnavailable",
    "default_model_path",
    "log_mel",
    "shared_model",
]

SAMPLE_RATE: Final = 16000
WINDOW_SAMPLES: Final = 8 * SAMPLE_RATE
MODEL_FILE: Final = "smart-turn-v3.2-cpu.onnx"
_EXTRA: Final = "pip install 'callweaver[turn]'"

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


class SmartTurnUnavailable(ModelUnavailable):
    """The smart-turn model (from the ``pipecat-ai`` wheel) or its runtime is not installed."""


def default_model_path() -> Path:
    """The smart-turn ONNX file inside the installed ``pipecat-ai`` package (not imported)."""
    spec = importlib.util.find_spec("pipecat")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / "audio" / "turn" / "smart_turn" / "data" / MODEL_FILE
            if path.is_file():
                return path
    raise SmartTurnUnavailable(
        f"end_of_turn: smart_turn needs the smart-turn model from the 'pipecat-ai' wheel ({_EXTRA})"
    )


# -- Whisper's log-mel spectrogram ----------------------------------------------------------
#
# Whisper (Radford et al. 2022, and its reference audio.py): STFT of 400-sample periodic-Hann
# windows every 160 samples, centred (the signal reflected by 200 samples at each end), power
# spectrum; 80 triangular filters equally spaced on Slaney's mel scale over 0-8 kHz, each
# scaled to unit area (2 / its width in Hz); log10 with a floor of 1e-10; the last STFT frame
# dropped; values below (max - 8) raised to it; finally (x + 4) / 4.

N_FFT: Final = 400
HOP: Final = 160
N_MELS: Final = 80
FRAMES: Final = WINDOW_SAMPLES // HOP


def _hz_to_mel(hz: F64) -> F64:
    # Slaney: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 mels per factor 6.4)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(hz < 1000.0, hz * 3.0 / 200.0, log_part)


def _mel_to_hz(mel: F64) -> F64:
    log_part = 1000.0 * np.exp((mel - 15.0) * (np.log(6.4) / 27.0))
    return np.where(mel < 15.0, mel * 200.0 / 3.0, log_part)


def _mel_filters() -> F64:
    """[80, 201]: row m is filter m's weight per FFT bin."""
    bins = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(np.array(SAMPLE_RATE / 2.0))), N_MELS + 2))
    filters = np.empty((N_MELS, bins.size))
    for m in range(N_MELS):
        low, centre, high = edges[m], edges[m + 1], edges[m + 2]
        filters[m] = np.interp(bins, [low, centre, high], [0.0, 1.0, 0.0]) * 2.0 / (high - low)
    return filters


_FILTERS: Final = _mel_filters()
_HANN: Final = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic
_FRAME_INDEX: Final = np.arange(FRAMES)[:, None] * HOP + np.arange(N_FFT)[None, :]


def fit_window(audio: npt.NDArray[np.floating[Any]]) -> F32:
    """The model's 8 s window of ``audio`` (16 kHz): its last 8 s, or zeros in front."""
    x = np.asarray(audio, dtype=np.float32)
    if x.size >= WINDOW_SAMPLES:
        return x[x.size - WINDOW_SAMPLES :]
    return np.concatenate([np.zeros(WINDOW_SAMPLES - x.size, dtype=np.float32), x])


def log_mel(audio: npt.NDArray[np.floating[Any]]) -> F32:
    """The model's input for ``audio`` (16 kHz, floats in [-1, 1], any length): [80, 800]."""
    x = fit_window(audio)
    # zero mean, unit variance over the whole window (in float32, as the model's trainer did)
    x = (x - x.mean()) / np.sqrt(x.var() + np.float32(1e-7))
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    # frames 0..799 only: Whisper drops the 801st, so it is never computed
    spectrum = np.fft.rfft(padded[_FRAME_INDEX] * _HANN, axis=1)
    power = spectrum.real**2 + spectrum.imag**2  # [800, 201]
    mel: F64 = np.log10(np.maximum(power @ _FILTERS.T, 1e-10)).T  # [80, 800]
    mel = np.maximum(mel, mel.max() - 8.0)
    out: F32 = ((mel + 4.0) / 4.0).astype(np.float32)
    return out


# -- the model ------------------------------------------------------------------------------


class SmartTurnModel:
    """The process-wide smart-turn session; see the module docstring."""

    def __init__(self, path: str | Path | None = None, *, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise SmartTurnUnavailable(f"smart-turn needs onnxruntime ({_EXTRA})") from None
        self.path = Path(path) if path is not None else default_model_path()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        started = time.perf_counter()
        self._session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self.load_s = time.perf_counter() - started
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="smart-turn")
        self.decisions = 0
        self.busy_s = 0.0

    def infer(self, features: F32) -> F32:
        """Synchronous: probabilities of completion for ``features`` [B, 80, 800]."""
        out: list[Any] = self._session.run(None, {"input_features": features})
        return np.asarray(out[0][:, 0], dtype=np.float32)

    def probability_now(self, audio: npt.NDArray[np.floating[Any]]) -> float:
        """Synchronous: the probability that the turn in ``audio`` (16 kHz) is complete."""
        started = time.perf_counter()
        prob = float(self.infer(log_mel(audio)[None])[0])
        self.busy_s += time.perf_counter() - started
        self.decisions += 1
        return prob

    async def probability(self, audio: npt.NDArray[np.floating[Any]]) -> float:
        """The probability that the turn in ``audio`` (16 kHz, floats in [-1, 1]; only its last
        8 s count) is complete, computed on the model's worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.probability_now, audio)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@functools.cache
def shared_model() -> SmartTurnModel:
    """The process's one smart-turn model, created on first use."""
    return SmartTurnModel()
