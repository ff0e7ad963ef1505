"""How well the VADs find real speech, clean and in noise.

    python -m bench.vad_accuracy [--out docs/benchmarks.md]

Reference: the clean recording itself. Its 10 ms frames louder than halfway (in dB) between
its noise floor (10th percentile) and its speech level (90th percentile) are speech; gaps
shorter than the VAD's ``stop_ms`` are bridged and runs shorter than its ``start_ms`` dropped,
because a VAD with those settings is asked to do exactly that. On human recordings with room
noise and reverberation this reference is approximate (breaths and reverb tails count).
The recording is then mixed with noise at a known SNR (measured over the reference speech),
run through each VAD as a real actor (``run_processor``), and scored:

- precision and recall of voiced 10 ms frames (inside a detected turn vs. inside a reference
  segment);
- boundary error: for every reference segment, the detected segment overlapping it most; the
  start and end errors in ms (median and 90th percentile of their absolute values).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.docs import write_section
from callweaver.frames import Frame, InputAudioFrame, SpeechStartedFrame, SpeechStoppedFrame
from callweaver.processors.energy_vad import EnergyVAD, EnergyVADParams
from callweaver.processors.silero_vad import SileroVAD, SileroVADParams
from callweaver.processors.vad import VoiceActivity
from callweaver.testing import run_processor
from callweaver.transports.wav import read_wav

ROOT = Path(__file__).resolve().parents[1]
HOP_S = 0.010
Segment = tuple[float, float]
I16 = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    start_err_ms: tuple[float, float]  # median, p90 of |error|
    end_err_ms: tuple[float, float]
    segments: int
    detected: int


def frame_levels(samples: I16, rate: int) -> npt.NDArray[np.float64]:
    hop = int(rate * HOP_S)
    n = samples.size // hop
    x = samples[: n * hop].astype(np.float64).reshape(n, hop)
    rms = np.sqrt(np.mean(x * x, axis=1))
    with np.errstate(divide="ignore"):
        return np.asarray(20 * np.log10(rms / 32768.0))


def merge(segments: Sequence[Segment], gap_s: float, min_s: float) -> list[Segment]:
    out: list[list[float]] = []
    for start, end in segments:
        if out and start - out[-1][1] < gap_s:
            out[-1][1] = end
        else:
            out.append([start, end])
    return [(a, b) for a, b in out if b - a >= min_s]


def reference_segments(samples: I16, rate: int, stop_s: float, start_s: float) -> list[Segment]:
    levels = frame_levels(samples, rate)
    finite = levels[np.isfinite(levels)]
    # halfway (in dB) between the noise floor and the speech level of this recording
    threshold = (np.percentile(finite, 10) + np.percentile(finite, 90)) / 2
    voiced = levels >= threshold
    raw: list[Segment] = []
    run_start = None
    for i, v in enumerate([*voiced, False]):
        if v and run_start is None:
            run_start = i
        elif not v and run_start is not None:
            raw.append((run_start * HOP_S, i * HOP_S))
            run_start = None
    return merge(raw, stop_s, start_s)


def mix_noise(samples: I16, reference: Sequence[Segment], rate: int, snr_db: float,
              seed: int = 7) -> I16:  # fmt: skip
    """Add pink-ish noise so that speech power / noise power == ``snr_db`` over the speech."""
    if math.isinf(snr_db):
        return samples
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(samples.size)
    pink = np.convolve(white, np.ones(8) / 8, mode="same")  # gentle low-pass: more speech-like
    speech = np.concatenate(
        [samples[int(a * rate) : int(b * rate)].astype(np.float64) for a, b in reference]
    )
    p_speech = float(np.mean(speech * speech))
    p_noise = float(np.mean(pink * pink))
    pink *= math.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    mixed = samples.astype(np.float64) + pink
    return np.clip(mixed, -32768, 32767).astype(np.int16)


def chunks(samples: I16, rate: int, ms: int = 20) -> list[Frame]:
    step = rate * ms // 1000
    return [
        InputAudioFrame(
            pcm=samples[i : i + step].tobytes(),
            sample_rate=rate,
            pts_ns=i * 1_000_000_000 // rate,
            ts_ns=(i + step) * 1_000_000_000 // rate,
        )
        for i in range(0, samples.size - step + 1, step)
    ]


async def detect(vad: VoiceActivity, samples: I16, rate: int) -> list[Segment]:
    tail = np.zeros(rate, dtype=np.int16)  # one second of silence so the last turn closes
    run = await run_processor(vad, chunks(np.concatenate([samples, tail]), rate))
    starts = [f.pts_ns / 1e9 for f in run.downstream if isinstance(f, SpeechStartedFrame)]
    stops = [f.pts_ns / 1e9 for f in run.downstream if isinstance(f, SpeechStoppedFrame)]
    return list(zip(starts, stops, strict=False))


def labels(segments: Sequence[Segment], n: int) -> npt.NDArray[np.bool_]:
    out = np.zeros(n, dtype=bool)
    for a, b in segments:
        out[round(a / HOP_S) : round(b / HOP_S)] = True
    return out


def score(reference: Sequence[Segment], detected: Sequence[Segment], duration_s: float) -> Score:
    n = int(duration_s / HOP_S) + 100
    ref, det = labels(reference, n), labels(detected, n)
    tp = float(np.sum(ref & det))
    precision = tp / max(float(np.sum(det)), 1.0)
    recall = tp / max(float(np.sum(ref)), 1.0)
    start_err, end_err = [], []
    for a, b in reference:
        overlaps = [(min(b, d) - max(a, c), c, d) for c, d in detected]
        best = max(overlaps, default=(0.0, 0.0, 0.0))
        if best[0] > 0:
            start_err.append(abs(best[1] - a) * 1000)
            end_err.append(abs(best[2] - b) * 1000)

    def stats(v: list[float]) -> tuple[float, float]:
        return (float(np.median(v)), float(np.percentile(v, 90))) if v else (math.nan, math.nan)

    return Score(precision, recall, stats(start_err), stats(end_err), len(reference), len(detected))


VADS: dict[str, Callable[[], VoiceActivity]] = {
    "silero": lambda: SileroVAD(SileroVADParams(stop_ms=200, start_ms=64, barge_in=False)),
    "energy": lambda: EnergyVAD(EnergyVADParams(stop_ms=200, start_ms=60, barge_in=False)),
}
SNRS = (math.inf, 20.0, 10.0, 5.0, 0.0)


def recordings() -> dict[str, Path]:
    """The speech this evaluation uses: our espeak sample, and human recordings from the
    moonshine-voice wheel when it is installed (``pip install --no-deps moonshine-voice``)."""
    found = {"espeak (caller.wav)": ROOT / "examples" / "audio" / "caller.wav"}
    # locate the wheel's files without importing it (its __init__ needs packages we skip)
    spec = importlib.util.find_spec("moonshine_voice")
    if spec is not None and spec.submodule_search_locations:
        assets = Path(next(iter(spec.submodule_search_locations))) / "assets"
        for name in ("beckett.wav", "two_cities.wav"):
            if (assets / name).is_file():
                found[f"human ({name})"] = assets / name
    return found


async def evaluate(path: Path, vad: str, snr_db: float) -> Score:
    pcm = read_wav(path)
    samples = np.frombuffer(pcm.data, dtype="<i2")
    reference = reference_segments(samples, pcm.sample_rate, stop_s=0.2, start_s=0.06)
    noisy = mix_noise(samples, reference, pcm.sample_rate, snr_db)
    detected = await detect(VADS[vad](), noisy, pcm.sample_rate)
    return score(reference, detected, samples.size / pcm.sample_rate)


BEGIN, END = "<!-- vad-accuracy:begin -->", "<!-- vad-accuracy:end -->"


async def table() -> str:
    rows = [
        BEGIN,
        "\n## VAD accuracy on real speech, clean and in noise\n\n",
        "`python -m bench.vad_accuracy`: reference segments from the clean recording, pink-ish "
        "noise mixed in at each SNR, both VADs with `start_ms` 60-64 and `stop_ms` 200. "
        "Precision/recall of voiced 10 ms frames; boundary errors are |detected - reference| "
        "(median / p90, ms) over the reference segments.\n\n",
        "| recording | SNR | VAD | precision | recall | start error ms | end error ms "
        "| segments ref/det |\n|---|---|---|---|---|---|---|---|\n",
    ]
    for name, path in recordings().items():
        for snr in SNRS:
            for vad in VADS:
                s = await evaluate(path, vad, snr)
                snr_text = "clean" if math.isinf(snr) else f"{snr:g} dB"
                rows.append(
                    f"| {name} | {snr_text} | {vad} | {s.precision:.3f} | {s.recall:.3f} "
                    f"| {s.start_err_ms[0]:.0f} / {s.start_err_ms[1]:.0f} "
                    f"| {s.end_err_ms[0]:.0f} / {s.end_err_ms[1]:.0f} "
                    f"| {s.segments}/{s.detected} |\n"
                )
    rows.append(END)
    return "".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.vad_accuracy")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = p.parse_args()
    section = asyncio.run(table())
    write_section(args.out, BEGIN, END, section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
