"""Streaming resamplers compared: callweaver's polyphase sinc vs libsoxr (python-soxr).

    python -m bench.resample [--out docs/benchmarks.md]

For each rate pair, a 10 s 440 Hz tone is fed in 20 ms chunks, as a call's audio arrives.
Latency is the audio fed in but not yet returned after each chunk (mean and max); CPU is per
chunk; SNR is the output against the ideal tone (edges excluded). soxr comes with the
``bench`` extra.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.docs import write_section
from callweaver.audio.resample import Resampler

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [(8000, 16000), (16000, 8000), (48000, 16000), (22050, 8000), (24000, 16000)]
BEGIN, END = "<!-- resample:begin -->", "<!-- resample:end -->"

Step = Callable[[bytes], bytes]


def ours(a: int, b: int) -> Step:
    return Resampler(a, b).process


def soxr_step(quality: str) -> Callable[[int, int], Step]:
    def make(a: int, b: int) -> Step:
        import soxr  # type: ignore[import-not-found,unused-ignore]

        stream = soxr.ResampleStream(a, b, 1, dtype="float32", quality=quality)

        def step(pcm: bytes) -> bytes:
            x = np.frombuffer(pcm, "<i2").astype(np.float32)
            y = stream.resample_chunk(x)
            return bytes(np.clip(np.rint(y), -32768, 32767).astype("<i2").tobytes())

        return step

    return make


def measure(make: Callable[[int, int], Step], a: int, b: int) -> tuple[float, float, float, float]:
    t = np.arange(10 * a) / a
    pcm = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    step = make(a, b)
    chunk = a // 50 * 2
    fed = got = 0
    lat, outs = [], []
    cpu = time.process_time()
    for i in range(0, len(pcm), chunk):
        out = step(pcm[i : i + chunk])
        outs.append(out)
        fed += chunk // 2
        got += len(out) // 2
        lat.append(fed / a - got / b)
    cpu_us = (time.process_time() - cpu) / (len(pcm) / chunk) * 1e6
    y = np.frombuffer(b"".join(outs), "<i2").astype(np.float64)
    ideal = 0.5 * 32767 * np.sin(2 * np.pi * 440 * np.arange(y.size) / b)
    inner = slice(b // 10, y.size - b // 10)
    # soxr trims its own filter delay, so both outputs are time-aligned with the input
    err = y[inner] - ideal[inner]
    snr = 10 * np.log10(np.mean(ideal[inner] ** 2) / np.mean(err**2))
    return float(np.mean(lat) * 1e3), float(np.max(lat) * 1e3), cpu_us, float(snr)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.resample")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = p.parse_args()
    impls: dict[str, Callable[[int, int], Step]] = {"callweaver": ours}
    try:
        import soxr  # type: ignore[import-not-found,unused-ignore]  # noqa: F401

        impls["soxr HQ"] = soxr_step("HQ")
        impls["soxr LQ"] = soxr_step("LQ")
    except ImportError:
        print("soxr is not installed (pip install -e '.[bench]'): measuring callweaver only")
    rows = [
        BEGIN,
        "\n## Streaming resampling: latency per 20 ms chunk\n\n",
        "`python -m bench.resample`: a 10 s 440 Hz tone fed in 20 ms chunks. Latency = audio "
        "fed in but not yet returned, after each chunk; SNR against the ideal tone.\n\n",
        "| rates | resampler | latency mean / max (ms) | CPU per chunk (us) | SNR (dB) |\n"
        "|---|---|---|---|---|\n",
    ]
    for a, b in PAIRS:
        for name, make in impls.items():
            mean, worst, cpu, snr = measure(make, a, b)
            rows.append(
                f"| {a} -> {b} | {name} | {mean:.1f} / {worst:.1f} | {cpu:.0f} | {snr:.1f} |\n"
            )
    rows.append(END)
    section = "".join(rows)
    write_section(args.out, BEGIN, END, section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
