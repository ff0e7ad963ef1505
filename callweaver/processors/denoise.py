"""Noise suppression of the caller's audio, as its own node (``type: denoise``).

Two backends, each an optional install:

- ``webrtc`` (``pip install 'callweaver[denoise]'``): WebRTC's noise suppressor from
  ``webrtc-noise-gain``: spectral, 16 kHz, 10 ms blocks, about 10 us per block; optionally
  WebRTC's automatic gain control too. The wrapper always runs WebRTC's high-pass filter as
  well (it takes out hum below ~80 Hz).
- ``rnnoise`` (``pip install 'callweaver[rnnoise]'``): RNNoise 0.2, a small recurrent network,
  the library inside ``pyrnnoise``: 48 kHz, 10 ms blocks, about 0.55 ms per block with the
  portable C build that wheel ships.

Caller audio at any rate is resampled to the backend's rate, suppressed block by block and
resampled back (:class:`~callweaver.audio.resample.Resampler`). The output is time-aligned
with the input: the backend's own delay (960 samples at 48 kHz for RNNoise, 96 at 16 kHz for
WebRTC) is taken off, so the node emits one frame per input frame, of the same size and with
the same ``pts_ns``, ``ts_ns``, ids and rate, holding the denoised version of the same
samples. ``ts_ns`` stays the arrival time of those samples, so the delay this node adds shows
up in the latency marks after it (endpoint minus speech end), where it belongs.

Latency: a frame goes out once the audio after it that the backend looks ahead at (20 ms for
RNNoise, 6 ms for WebRTC) and the resamplers' look-ahead (about 2 ms) have arrived. With 20 ms
frames that is one frame (20 ms) for webrtc at any rate; for rnnoise one frame at 48 kHz and
two (40 ms) at other rates (``python -m bench.denoise_eval`` measures it).

Every other frame (anything but mono :class:`InputAudioFrame`) passes through untouched, and
in order: one that arrives while audio is held waits behind that audio.

RNNoise costs over a millisecond per 20 ms frame, so by default it runs on the event loop's
default executor (the library releases the GIL), one job at a time per call: the loop spends
about 0.15 ms per frame on it instead of 1.3 ms. WebRTC's tens of microseconds run inline
(a thread would cost more than it saves).

Which to use, measured on speech in noise (``docs/benchmarks.md``): silero's VAD does not need
either; webrtc helped a small STT in some steady noise, hurt it in other steady noise and with
background talkers; RNNoise costs 50 times the CPU and, with background talkers, suppresses the
caller's own voice. The node is off unless a config adds it; webrtc is its default backend.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import importlib.util
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from callweaver.audio.resample import Resampler
from callweaver.errors import ModelUnavailable
from callweaver.frames.audio import InputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.control import EndFrame
from callweaver.runtime.processor import Processor

__all__ = ["Backend", "Denoise", "DenoiseParams", "DenoiseUnavailable"]

Backend = Literal["rnnoise", "webrtc"]

_PACKAGES: dict[str, tuple[str, str]] = {  # backend: (package, callweaver extra)
    "rnnoise": ("pyrnnoise", "rnnoise"),
    "webrtc": ("webrtc-noise-gain", "denoise"),
}
_WEBRTC_ONLY = ("level", "auto_gain")


class DenoiseUnavailable(ModelUnavailable):
    """The package a denoise backend needs is not installed."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        package, extra = _PACKAGES[backend]
        super().__init__(
            f"the {backend} denoise backend needs the {package!r} package "
            f"(pip install 'callweaver[{extra}]')"
        )


class DenoiseParams(BaseModel):
    """Which suppressor, and its options."""

    model_config = ConfigDict(extra="forbid")

    backend: Backend = Field(
        "webrtc",
        validate_default=True,  # a node with no params is checked for its package too
        description="rnnoise (RNNoise) or webrtc (WebRTC NS)",
    )
    level: int = Field(
        2, ge=1, le=4, description="webrtc: suppression, 1 low, 2 moderate, 3 high, 4 very high"
    )
    auto_gain: bool = Field(
        False,
        description="webrtc: also apply WebRTC's automatic gain control (raises quiet callers)",
    )
    thread: bool | None = Field(
        None,
        description="run the backend on a worker thread; default: yes for rnnoise, no for webrtc",
    )

    @field_validator("backend")
    @classmethod
    def _installed(cls, backend: Backend) -> Backend:
        try:
            _require(backend)
        except DenoiseUnavailable as exc:
            raise ValueError(str(exc)) from None
        return backend

    @field_validator(*_WEBRTC_ONLY)
    @classmethod
    def _webrtc_only(cls, value: Any, info: ValidationInfo) -> Any:
        backend = info.data.get("backend")
        if backend is not None and backend != "webrtc":
            raise ValueError(f"{info.field_name} is an option of the webrtc backend only")
        return value

    @property
    def threaded(self) -> bool:
        return self.backend == "rnnoise" if self.thread is None else self.thread


# -- backends -------------------------------------------------------------------------------


class _Suppressor(Protocol):
    rate: int  # Hz
    block: int  # samples per call of the library
    lag: int  # samples by which its output trails its input

    def process(self, pcm: bytes) -> bytes:
        """Suppress whole blocks of PCM16 at ``rate``; returns as many samples."""
        ...


def _require(backend: str) -> None:
    """Raise :class:`DenoiseUnavailable` unless ``backend``'s package is importable."""
    if backend == "rnnoise":
        _rnnoise_path()
    else:
        try:
            importlib.import_module("webrtc_noise_gain")
        except ImportError:
            raise DenoiseUnavailable("webrtc") from None


def _rnnoise_path() -> Path:
    # The library inside the pyrnnoise wheel, found without importing the package: its
    # __init__ pulls in audiolab, PyAV and matplotlib (0.23 s) for file helpers we never use.
    try:
        spec = importlib.util.find_spec("pyrnnoise")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        for name in ("librnnoise.so", "librnnoise.dylib", "rnnoise.dll"):
            if (folder / name).is_file():
                return folder / name
    raise DenoiseUnavailable("rnnoise")


@cache
def _rnnoise_lib(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))  # a CDLL call releases the GIL: worker threads run in parallel
    lib.rnnoise_create.argtypes = [ctypes.c_void_p]
    lib.rnnoise_create.restype = ctypes.c_void_p
    lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    lib.rnnoise_destroy.restype = None
    lib.rnnoise_get_frame_size.restype = ctypes.c_int
    lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.rnnoise_process_frame.restype = ctypes.c_float
    return lib


class _RNNoise:
    rate = 48000
    lag = 960  # measured: speech in vs. out correlates best (0.99) 20 ms apart

    def __init__(self) -> None:
        lib = _rnnoise_lib(_rnnoise_path())
        self._process = lib.rnnoise_process_frame
        self.block = int(lib.rnnoise_get_frame_size())
        self._state = lib.rnnoise_create(None)
        if not self._state:
            raise MemoryError("rnnoise_create failed")
        # freed when the last reference goes, which may be a worker thread's job still running
        weakref.finalize(self, lib.rnnoise_destroy, self._state)

    def process(self, pcm: bytes) -> bytes:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)  # RNNoise works in int16 scale
        y = np.empty_like(x)
        xp, yp, step = x.ctypes.data, y.ctypes.data, self.block * 4
        for offset in range(0, x.nbytes, step):
            self._process(self._state, yp + offset, xp + offset)
        return np.clip(np.rint(y), -32768, 32767).astype("<i2").tobytes()


class _WebRTC:
    rate = 16000
    block = 160

    def __init__(self, level: int, auto_gain: bool) -> None:
        module = importlib.import_module("webrtc_noise_gain")  # untyped: keep it Any
        # The wrapper's first argument is AGC1's target level in dB; with AGC2 also on, the
        # value made no measurable difference (1..31), so it is only switched on or off.
        self._ap = module.AudioProcessor(3 if auto_gain else 0, level)
        self.lag = 96  # its 256-sample analysis window over 160-sample blocks

    def process(self, pcm: bytes) -> bytes:
        process, size = self._ap.Process10ms, self.block * 2
        return b"".join(process(pcm[i : i + size]).audio for i in range(0, len(pcm), size))


def _suppressor(p: DenoiseParams) -> _Suppressor:
    _require(p.backend)
    return _RNNoise() if p.backend == "rnnoise" else _WebRTC(p.level, p.auto_gain)


# -- one stream of audio --------------------------------------------------------------------


class _Stream:
    """Denoises one stream of PCM16 at ``rate``, synchronously: ``feed`` chunks, then
    ``finish``; ``out`` collects the denoised audio at ``rate``, time-aligned with the input
    (sample k of ``out`` is input sample k, denoised)."""

    def __init__(self, suppressor: _Suppressor, rate: int) -> None:
        self.rate = rate
        self._s = suppressor
        self._down = Resampler(rate, suppressor.rate)
        self._up = Resampler(suppressor.rate, rate)
        self._pending = bytearray()  # at the backend's rate, less than a block
        self._received = 0  # samples at the backend's rate, in and out of the suppressor
        self._processed = 0
        self._passed = 0  # denoised samples handed to the upsampler (the lag taken off)
        self.out = bytearray()

    def feed(self, pcm: bytes) -> None:
        self._take(self._down.process(pcm))
        self.out += self._up.process(self._run(0))

    def finish(self) -> None:
        """End of the stream: push the last samples through (the backend's delay is filled
        with silence) and flush both resamplers."""
        self._take(self._down.flush())
        lag, block = self._s.lag, self._s.block
        short = self._received + lag - self._processed  # input the tail still needs
        pad = -(-short // block) * block - len(self._pending) // 2
        denoised = self._run(max(pad, 0))
        self.out += self._up.process(denoised) + self._up.flush()

    def _take(self, pcm: bytes) -> None:
        self._pending += pcm
        self._received += len(pcm) // 2

    def _run(self, pad: int) -> bytes:
        self._pending += bytes(2 * pad)
        size = self._s.block * 2
        whole = len(self._pending) // size * size
        if not whole:
            return b""
        chunk = bytes(self._pending[:whole])
        del self._pending[:whole]
        out = self._s.process(chunk)
        skip = min(max(self._s.lag - self._processed, 0), len(out) // 2)
        self._processed += whole // 2
        # never more than was received: the padding's own output is dropped
        keep = max(min(len(out) // 2 - skip, self._received - self._passed), 0)
        self._passed += keep
        return out[2 * skip : 2 * (skip + keep)]


class _Serial:
    """Runs one call's jobs in order on the loop's default executor, one at a time. A job, once
    submitted, runs to the end even if the task awaiting it is cancelled, so the stream's
    state and output stay whole; later awaits pick up what it produced."""

    def __init__(self) -> None:
        self._jobs: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()

    async def run(self, job: Callable[[], None]) -> None:
        self._jobs.append(job)
        future = asyncio.get_running_loop().run_in_executor(None, self._work)
        await asyncio.shield(future)

    def _work(self) -> None:
        with self._lock:
            while self._jobs:
                self._jobs.popleft()()


# -- the node -------------------------------------------------------------------------------


class Denoise(Processor):
    """Suppresses noise in caller audio; one frame out per frame in, same timestamps."""

    Params = DenoiseParams

    def __init__(self, params: DenoiseParams | None = None) -> None:
        self.p = params or DenoiseParams()
        super().__init__(self.p)
        _require(self.p.backend)
        self._serial = _Serial() if self.p.threaded else None
        self._stream: _Stream | None = None
        self._held: deque[Frame] = deque()  # frames waiting for their audio, in arrival order

    async def process(self, frame: Frame) -> None:
        if not (isinstance(frame, InputAudioFrame) and frame.channels == 1):
            if self._held:
                self._held.append(frame)
            else:
                await self.emit(frame)
            return
        stream = self._stream
        if stream is None or stream.rate != frame.sample_rate:
            if stream is not None:
                await self._finish(stream)
            stream = self._stream = _Stream(_suppressor(self.p), frame.sample_rate)
        self._held.append(frame)
        await self._call(stream.feed, frame.pcm)
        await self._release(stream, final=False)

    async def on_end(self, frame: EndFrame) -> None:
        if self._stream is not None:
            await self._finish(self._stream)
            self._stream = None
        await self._release(None, final=True)

    async def _finish(self, stream: _Stream) -> None:
        await self._call(stream.finish)
        await self._release(stream, final=True)

    async def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if self._serial is None:
            fn(*args)
        else:
            await self._serial.run(lambda: fn(*args))

    async def _release(self, stream: _Stream | None, *, final: bool) -> None:
        """Emit the held frames whose denoised audio is complete, in order; ``final``: all of
        them (the stream has finished; its last frame may be a sample short or long from the
        resamplers' rounding, and is padded or cut to its size)."""
        out = stream.out if stream is not None else bytearray()
        held = self._held
        while held:
            head = held[0]
            if not isinstance(head, InputAudioFrame) or head.channels != 1:
                await self.emit(held.popleft())
                continue
            need = len(head.pcm)
            if len(out) < need and not final:
                return
            pcm = bytes(out[:need])
            del out[:need]
            held.popleft()
            await self.emit(replace(head, pcm=pcm.ljust(need, b"\0")))
        if final:
            out.clear()
