"""The audio codecs on bytes: G.711 mu-law, streaming resampling, levels."""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import numpy.typing as npt
import pytest

from callweaver.audio import Resampler, level_dbfs, pcm16_to_ulaw, resample, ulaw_to_pcm16

RATES = (8000, 16000, 22050, 24000, 48000)
PAIRS = list(permutations(RATES, 2))
AMP = 0.5 * 32767  # -6 dBFS peak
FREQ = 440.0  # far below the lowest Nyquist frequency (4 kHz)

Samples = npt.NDArray[np.int64]


def ints(pcm: bytes) -> Samples:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int64)


def pcm16(samples: npt.NDArray[np.floating] | Samples) -> bytes:
    return np.rint(samples).astype("<i2").tobytes()


def sine(rate: int, n: int | None = None) -> npt.NDArray[np.float64]:
    """The ideal tone, unrounded: 1 s (440 whole cycles) unless ``n`` samples are asked for."""
    n = rate if n is None else n
    return AMP * np.sin(2 * np.pi * FREQ * np.arange(n) / rate)


def max_jump(samples: npt.NDArray[np.floating] | Samples) -> float:
    return float(np.abs(np.diff(samples)).max())


def chunk_sizes(total: int, seed: int) -> list[int]:
    """Random sizes in samples summing to ``total``: empty, one-sample and larger chunks."""
    rng = np.random.default_rng(seed)
    sizes, left = [], total
    while left:
        pick = int(rng.choice([0, 1, 2, 7, int(rng.integers(1, 1000))]))
        sizes.append(min(pick, left))
        left -= sizes[-1]
    return sizes


def run_chunked(resampler: Resampler, pcm: bytes, sizes: list[int]) -> list[bytes]:
    """Every output of feeding ``pcm`` in chunks of ``sizes`` samples, the flush last."""
    outputs, pos = [], 0
    for size in sizes:
        outputs.append(resampler.process(pcm[2 * pos : 2 * (pos + size)]))
        pos += size
    return [*outputs, resampler.flush()]


# -- mu-law --------------------------------------------------------------------------------

ALL_PCM = np.arange(-32768, 32768, dtype=np.int64)


def test_ulaw_decodes_known_codes() -> None:
    assert ulaw_to_pcm16(bytes([0xFF, 0x7F, 0x00, 0x80])) == pcm16(np.array([0, 0, -32124, 32124]))


def test_ulaw_decode_table_is_symmetric_and_monotonic() -> None:
    decoded = ints(ulaw_to_pcm16(bytes(range(256))))
    # The top bit is the sign (set = positive), the other bits are inverted magnitude.
    assert np.array_equal(decoded[0x80:], -decoded[:0x80])
    assert np.all(np.diff(decoded[:0x80]) > 0)  # 0x00 -32124 up to 0x7F 0
    assert decoded.min() == -32124
    assert decoded.max() == 32124


def test_ulaw_encodes_zero_as_ff() -> None:
    assert pcm16_to_ulaw(b"\x00\x00") == b"\xff"


def test_ulaw_round_trip_error_is_half_a_step_of_the_segment() -> None:
    decoded = ints(ulaw_to_pcm16(pcm16_to_ulaw(pcm16(ALL_PCM))))
    err = np.abs(decoded - ALL_PCM)
    magnitude = np.abs(ALL_PCM)
    clipped = magnitude > 32635
    # Segment s holds biased magnitudes (|x| + 0x84) in [2**(s+7), 2**(s+8)) with 16 steps of
    # 2**(s+3); decoding returns the middle of a step, so the error is at most 2**(s+2).
    biased = np.minimum(magnitude, 32635) + 0x84
    segment = np.floor(np.log2(biased >> 7)).astype(np.int64)
    half_step = 2 ** (segment + 2)
    assert np.all(err[~clipped] <= half_step[~clipped])
    for s in range(8):  # the bound is reached in every segment
        assert err[~clipped & (segment == s)].max() == 2 ** (s + 2)
    # In relative terms: at most (|x| + 132) / 32, so 4 near zero and ~3 % of the magnitude.
    assert np.all(32 * err[~clipped] <= magnitude[~clipped] + 0x84)
    # Beyond the clip level everything decodes to the loudest code.
    assert np.array_equal(decoded[clipped], np.sign(ALL_PCM[clipped]) * 32124)
    assert err.max() == 32768 - 32124
    # The sign survives; quiet samples may become 0.
    assert np.all((np.sign(decoded) == np.sign(ALL_PCM)) | (decoded == 0))


def test_ulaw_code_round_trip_is_identity_except_negative_zero() -> None:
    codes = bytes(range(256))
    back = pcm16_to_ulaw(ulaw_to_pcm16(codes))
    # 0x7F ("-0") and 0xFF ("+0") both decode to 0, which encodes as 0xFF.
    assert back == codes[:0x7F] + b"\xff" + codes[0x80:]


@pytest.mark.parametrize("n", [0, 1, 160, 8000])
def test_ulaw_lengths(n: int) -> None:
    assert len(ulaw_to_pcm16(bytes(n))) == 2 * n
    assert len(pcm16_to_ulaw(bytes(2 * n))) == n


def test_ulaw_rejects_odd_pcm() -> None:
    with pytest.raises(ValueError, match="2-byte samples, got 3 bytes"):
        pcm16_to_ulaw(b"\x00\x00\x00")


# -- resampling ----------------------------------------------------------------------------


def test_equal_rates_pass_the_same_bytes_through() -> None:
    resampler = Resampler(16000, 16000)
    pcm = pcm16(sine(16000, 320))
    assert resampler.process(pcm) is pcm
    assert resampler.flush() == b""
    assert resampler.delay_s == 0.0
    assert resample(pcm, 8000, 8000) == pcm


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_chunked_stream_equals_whole_buffer(in_rate: int, out_rate: int) -> None:
    pcm = pcm16(sine(in_rate))
    whole = resample(pcm, in_rate, out_rate)
    sizes = chunk_sizes(in_rate, seed=in_rate + out_rate)
    assert 0 in sizes
    assert 1 in sizes
    # Byte for byte: every output sample is computed from the same input samples.
    assert b"".join(run_chunked(Resampler(in_rate, out_rate), pcm, sizes)) == whole


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_chunk_borders_leave_no_clicks(in_rate: int, out_rate: int) -> None:
    pcm = pcm16(sine(in_rate))
    outputs = run_chunked(Resampler(in_rate, out_rate), pcm, chunk_sizes(in_rate, seed=7))
    out = ints(b"".join(outputs))
    ideal = sine(out_rate, len(out))
    ideal_jump = max_jump(np.rint(ideal))
    # Only the stream's own start and end ring (the tone starts and stops abruptly): 7.6 ms
    # at most; past 10 ms every sample is within 1 LSB of the ideal tone, borders included.
    edge = out_rate // 100
    inner = slice(edge, len(out) - edge)
    assert np.abs(out[inner] - np.rint(ideal[inner])).max() <= 1
    assert max_jump(out[inner]) <= ideal_jump + 1
    borders = np.cumsum([len(o) // 2 for o in outputs])[:-1]
    borders = borders[(borders > edge) & (borders < len(out) - edge)]
    assert borders.size > 10
    assert np.abs(out[borders] - out[borders - 1]).max() <= ideal_jump + 1


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_output_is_time_aligned_at_start_and_end(in_rate: int, out_rate: int) -> None:
    out = ints(resample(pcm16(sine(in_rate)), in_rate, out_rate)).astype(np.float64)
    tenth = out_rate // 10
    period = int(out_rate / FREQ)
    for part in (slice(0, tenth), slice(len(out) - tenth, len(out))):
        lags = range(-(period // 2), period // 2 + 1)
        t = np.arange(len(out))[part]
        score = [
            float(np.dot(out[part], np.sin(2 * np.pi * FREQ * (t - lag) / out_rate)))
            for lag in lags
        ]
        assert lags[int(np.argmax(score))] == 0
        # Finer: the phase of a least-squares sine fit, in output samples (measured < 0.001).
        basis = np.stack(
            [np.sin(2 * np.pi * FREQ * t / out_rate), np.cos(2 * np.pi * FREQ * t / out_rate)]
        )
        (a, b), *_ = np.linalg.lstsq(basis.T, out[part], rcond=None)
        assert abs(math.atan2(b, a) / (2 * np.pi * FREQ) * out_rate) < 0.01


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_latency_is_a_constant_couple_of_milliseconds(in_rate: int, out_rate: int) -> None:
    chunk = in_rate // 50  # 20 ms
    pcm = pcm16(sine(in_rate, 10 * in_rate))
    resampler = Resampler(in_rate, out_rate)
    assert resampler.delay_s == 0.0
    fed = emitted = 0
    delays = []
    for start in range(0, len(pcm), 2 * chunk):
        piece = pcm[start : start + 2 * chunk]
        fed += len(piece) // 2
        emitted += len(resampler.process(piece)) // 2
        delays.append(resampler.delay_s)
        # What went in = what came out + what is held back.
        assert fed / in_rate == pytest.approx(emitted / out_rate + resampler.delay_s, abs=1e-9)
    # Only the kernel's look-ahead is held back: 16 zero crossings of the lower rate, about
    # 2.2 ms at 8 kHz and 1.1 ms at 16 kHz, the same for every chunk (within one output sample).
    lookahead = math.ceil(16 / (0.92 * min(1.0, out_rate / in_rate))) / in_rate
    assert max(delays) <= lookahead + 1 / out_rate + 1e-9
    assert max(delays) < 0.0025
    assert max(delays) - min(delays) <= 1 / out_rate + 1e-9
    resampler.flush()
    assert resampler.delay_s == 0.0


LENGTHS = [0, 1, 2, 3, 7, 80, 159, 160, 441, 1040, 4999, 8000]


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_output_length_is_input_length_scaled_and_rounded(in_rate: int, out_rate: int) -> None:
    rng = np.random.default_rng(0)
    for n in LENGTHS:
        pcm = pcm16(rng.normal(0, 3000, n))
        out = len(resample(pcm, in_rate, out_rate)) // 2
        # |out - n * out_rate / in_rate| <= 1/2, in integers: the nearest whole sample.
        assert abs(2 * out * in_rate - 2 * n * out_rate) <= in_rate, n


def test_output_length_at_an_exact_half_rounds_up() -> None:
    assert len(resample(bytes(2 * 1040), 24000, 22050)) // 2 == 956  # 955.5
    assert len(resample(bytes(2 * 441), 16000, 8000)) // 2 == 221  # 220.5


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_level_of_a_tone_is_preserved(in_rate: int, out_rate: int) -> None:
    pcm = pcm16(sine(in_rate))
    out = resample(pcm, in_rate, out_rate)
    inner_in, inner_out = (
        slice(2 * in_rate // 50, -2 * in_rate // 50),
        slice(2 * out_rate // 50, -2 * out_rate // 50),
    )
    # Measured: within 0.0001 dB (the allowance for a tone below both Nyquists is 0.1 dB).
    assert level_dbfs(out[inner_out]) == pytest.approx(level_dbfs(pcm[inner_in]), abs=0.001)


def test_8k_to_16k_and_back_is_transparent_for_a_tone() -> None:
    pcm = pcm16(sine(8000))
    back = ints(resample(resample(pcm, 8000, 16000), 16000, 8000))
    original = ints(pcm)
    err = (back - original).astype(np.float64)
    snr = 10 * math.log10(float(np.sum(original.astype(np.float64) ** 2) / np.sum(err**2)))
    assert snr > 60  # measured 79 dB
    assert np.abs(err[80:-80]).max() <= 2  # a few LSB of rounding, twice


def test_digital_silence_stays_silent() -> None:
    assert resample(bytes(3200), 8000, 16000) == bytes(6400)
    assert resample(bytes(3200), 16000, 8000) == bytes(1600)


def test_full_scale_input_clips_instead_of_wrapping() -> None:
    square = np.tile(np.repeat([32767, -32768], 50), 40)
    out = ints(resample(pcm16(square), 8000, 16000))
    assert out.max() == 32767
    assert out.min() == -32768
    ideal = np.repeat(square, 2)
    position = np.arange(len(ideal)) % 100  # in each half period of 100 samples
    interiors = (position >= 10) & (position < 90)
    assert np.all(np.sign(out[interiors]) == np.sign(ideal[interiors]))


def test_empty_chunks_change_nothing() -> None:
    resampler = Resampler(8000, 16000)
    assert resampler.process(b"") == b""
    assert resampler.flush() == b""


def test_flush_starts_a_new_stream() -> None:
    pcm = pcm16(sine(8000, 800))
    resampler = Resampler(8000, 24000)
    first = resampler.process(pcm) + resampler.flush()
    assert resampler.delay_s == 0.0
    again = resampler.process(pcm) + resampler.flush()
    assert first == again == resample(pcm, 8000, 24000)


def test_resampler_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2-byte samples, got 5 bytes"):
        Resampler(8000, 16000).process(bytes(5))
    with pytest.raises(ValueError, match="2-byte samples"):
        Resampler(8000, 8000).process(bytes(1))
    with pytest.raises(ValueError, match="in_rate must be a positive int"):
        Resampler(0, 16000)
    with pytest.raises(ValueError, match="out_rate must be a positive int"):
        Resampler(8000, -1)
    with pytest.raises(ValueError, match="zero_crossings must be at least 2"):
        Resampler(8000, 16000, zero_crossings=1)


def test_resampler_reports_its_rates() -> None:
    resampler = Resampler(22050, 16000)
    assert (resampler.in_rate, resampler.out_rate) == (22050, 16000)


# -- levels --------------------------------------------------------------------------------


def test_level_of_silence_is_minus_infinity() -> None:
    assert level_dbfs(b"") == -math.inf
    assert level_dbfs(bytes(320)) == -math.inf


def test_level_of_full_scale_tones() -> None:
    full_sine = pcm16(32767 * np.sin(2 * np.pi * FREQ * np.arange(8000) / 8000))
    assert level_dbfs(full_sine) == pytest.approx(-3.0103, abs=0.001)  # 20 log10(1/sqrt 2)
    square = pcm16(np.repeat([32767, -32767], 8000))
    assert level_dbfs(square) == pytest.approx(0.0, abs=0.001)


def test_level_dbfs_is_still_importable_from_energy_vad() -> None:
    from callweaver.processors.energy_vad import level_dbfs as from_vad

    assert from_vad is level_dbfs
