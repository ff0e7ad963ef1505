"""Local text-to-speech providers: piper (neural), flite and espeak-ng (formant/diphone).

None of them touches the network. Piper is the default voice; flite and espeak-ng are the
fallbacks that cost almost no CPU (``MODELS.md``: flite slt comes back word for word through
whisper, espeak-ng is less clear but speaks a hundred languages).

- :class:`PiperTTS` runs the process's shared voice (:mod:`callweaver.resources.piper`) and
  yields one chunk per sentence as soon as that sentence is synthesized.
- :class:`FliteTTS` and :class:`EspeakTTS` run their binary once per text (no shell; the text
  goes in as one argument after ``-t`` or on stdin, so text that starts with ``-`` is still
  text) and stream the WAV it writes to stdout as chunks of ``CHUNK_MS``. The WAV header is
  read with the standard ``wave`` module; its sizes are ignored (a WAV written to a pipe
  cannot know them: espeak-ng writes 0x7ffff000) and the audio runs to end of file. A
  synthesis that is cancelled or closed early kills its process and waits for it.

Errors are :class:`~callweaver.errors.ProviderError`. What breaks the provider for every call
(a missing binary, a configured voice the engine does not have) is not retryable; what is
about one request (a language it cannot speak, a failed run, no audio) is: another provider
may do it.

Text with nothing to say (empty, whitespace, only punctuation) yields no chunk. Each provider
says which languages it speaks in ``languages`` (primary subtags; None: any), so that a
failover skips it for a call in another language.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import wave
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callweaver.errors import ProviderError
from callweaver.resources import piper
from callweaver.runtime.processes import ChildProcess, spawn
from callweaver.services.locales import VoiceChoice, VoicesParams
from callweaver.services.tts import Speech

CHUNK_MS = 100  # flite/espeak audio is handed on in pieces of this length
_READ = 1 << 16
_HEADER_MAX = 1 << 12  # a WAV header longer than this is not one flite or espeak-ng wrote
_ARG_MAX = 100_000  # bytes of text flite takes as one argument (Linux caps one at 128 KiB)
_STDERR_TAIL = 300


def _speakable(text: str) -> bool:
    return any(c.isalnum() for c in text)


def _primary(language: str) -> str:
    return language.replace("_", "-").split("-")[0].lower()


def _check_language(name: str, languages: frozenset[str], language: str) -> None:
    if language and _primary(language) not in languages:
        spoken = ", ".join(sorted(languages))
        raise ProviderError(name, f"speaks {spoken}, not {language!r}", retryable=True)


# -- piper -----------------------------------------------------------------------------------


class PiperParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voice: str | None = Field(
        None, description="path to a piper voice's .onnx (its .onnx.json beside it); default joe"
    )
    length_scale: float | None = Field(
        None, gt=0.2, le=5.0, description="phoneme length: < 1 speaks faster; default the voice's"
    )
    volume: float = Field(1.0, gt=0, le=2.0, description="multiplier on the normalized audio")
    sentence_silence_ms: int = Field(0, ge=0, le=2000, description="pause between sentences")

    @field_validator("voice")
    @classmethod
    def _installed(cls, voice: str | None) -> str | None:
        piper.check_installed(voice)  # ValueError / ModelUnavailable with what to install
        return voice


class PiperTTS:
    """The piper provider of the TTS interface; the voice is loaded (once per process) when
    the provider is built, so a missing package fails the call's start, not its first reply."""

    Params = PiperParams

    def __init__(self, params: PiperParams | None = None, *, name: str = "piper") -> None:
        self.params = params or PiperParams()
        self.name = name
        self.voice = piper.shared_voice(self.params.voice)
        self.languages: frozenset[str] | None = frozenset({self.voice.language})
        self._settings = piper.Settings(
            length_scale=self.params.length_scale, volume=self.params.volume
        )

    async def synthesize(self, text: str, language: str = "") -> AsyncIterator[Speech]:
        """One chunk per sentence, each as soon as it is synthesized."""
        assert self.languages is not None
        _check_language(self.name, self.languages, language)
        if not _speakable(text):
            return
        # piper reads [[ ... ]] as raw phonemes: reply text never means that
        text = re.sub(r"\[{2,}", "[", text)
        rate = self.voice.sample_rate
        pause = b"\0\0" * (rate * self.params.sentence_silence_ms // 1000)
        spoken = 0
        try:
            async with contextlib.aclosing(self.voice.stream(text, self._settings)) as pieces:
                async for pcm in pieces:
                    if not pcm:
                        continue
                    yield Speech((pause + pcm) if spoken and pause else pcm, rate)
                    spoken += 1
        except Exception as exc:  # phonemizer or onnxruntime failed on this text
            raise ProviderError(self.name, f"synthesis failed: {exc}", retryable=True) from exc
        if not spoken:
            raise ProviderError(self.name, "no audio for the text", retryable=True)

    async def aclose(self) -> None:
        """The voice is the process's: nothing to release per call."""


# -- flite and espeak-ng: a process per text ---------------------------------------------------


class _ProcessTTS:
    """What flite and espeak-ng share: run the binary, stream its WAV, clean up."""

    name: str
    package: str  # the Debian package that has the binary

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self._running: set[ChildProcess] = set()

    async def _run(
        self, argv: Sequence[str], stdin: bytes | None, output: str | None = None
    ) -> AsyncGenerator[Speech, None]:
        """Run ``argv`` and stream the WAV it writes to stdout, or to the file ``output``
        (read once the process has exited)."""
        try:
            # not the loop's own create_subprocess_exec: uvloop's fork() can hang whisper's
            # worker thread for ever (see callweaver.runtime.processes)
            proc = await spawn(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: see _kill
            )
        except FileNotFoundError:
            where = "" if self.binary == self.package else f" ({self.binary} not found)"
            raise ProviderError(
                self.name,
                f"{self.package} not installed{where}: apt-get install {self.package}",
                retryable=False,
            ) from None
        except OSError as exc:
            raise ProviderError(
                self.name, f"cannot run {self.binary}: {exc}", retryable=False
            ) from None
        self._running.add(proc)
        try:
            if stdin is not None:
                await self._feed(proc, stdin)
            wav = proc.stdout
            if output is not None:
                await proc.wait()
                wav = asyncio.StreamReader()
                with contextlib.suppress(FileNotFoundError):  # none written: _audio says so
                    wav.feed_data(await asyncio.to_thread(Path(output).read_bytes))
                wav.feed_eof()
            assert wav is not None
            async with contextlib.aclosing(self._audio(proc, wav)) as audio:
                async for speech in audio:
                    yield speech
        finally:
            self._running.discard(proc)
            _kill(proc)
            # read the pipes to their end: the process and its transport are then gone
            await proc.communicate()

    async def _feed(self, proc: ChildProcess, data: bytes) -> None:
        # both engines read the whole text before they write any audio: no deadlock here
        assert proc.stdin is not None
        try:
            proc.stdin.write(data)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died early: its exit status says why
        finally:
            proc.stdin.close()

    async def _audio(
        self, proc: ChildProcess, wav: asyncio.StreamReader
    ) -> AsyncGenerator[Speech, None]:
        assert proc.stderr is not None
        buf = b""
        header: tuple[int, int | None] | None = None  # (sample rate, data bytes or None)
        while header is None:
            block = await wav.read(_READ)
            buf += block
            header, buf = self._header(buf, final=not block or len(buf) > _HEADER_MAX)
            if not block:
                break
        total = 0
        if header is not None:
            rate, limit = header
            step = rate * CHUNK_MS // 1000 * 2
            while True:
                block = await wav.read(_READ) if block else b""
                buf += block
                if limit is not None:
                    buf = buf[: max(0, limit - total)]
                while len(buf) >= step:
                    piece, buf = buf[:step], buf[step:]
                    total += len(piece)
                    yield Speech(piece, rate)
                if not block:
                    break
            tail = buf[: len(buf) // 2 * 2]
            if tail:
                total += len(tail)
                yield Speech(tail, rate)
        # read after stdout: both engines write a line at most there, never a pipe's worth
        stderr = (await proc.stderr.read()).decode(errors="replace").strip()
        code = await proc.wait()
        if code != 0:
            raise self._failure(code, stderr)
        if total == 0:
            raise ProviderError(self.name, f"no audio{self._said(stderr)}", retryable=True)

    def _header(self, buf: bytes, *, final: bool) -> tuple[tuple[int, int | None] | None, bytes]:
        """Parse the WAV header at the start of ``buf``: ((rate, data bytes or None), the
        audio after the header), or (None, buf) while it is incomplete."""
        if not buf and final:
            return None, buf
        stream = io.BytesIO(buf)
        try:
            with wave.open(stream, "rb") as w:
                channels, width, rate, frames = (
                    w.getnchannels(),
                    w.getsampwidth(),
                    w.getframerate(),
                    w.getnframes(),
                )
                start = stream.tell()
        except (wave.Error, EOFError) as exc:
            if not final:
                return None, buf
            raise ProviderError(
                self.name, f"{self.binary} wrote no WAV audio ({exc})", retryable=True
            ) from None
        if channels != 1 or width != 2:
            raise ProviderError(
                self.name,
                f"{self.binary} wrote {channels}-channel {8 * width}-bit audio, not mono 16-bit",
                retryable=False,
            )
        size = frames * 2
        # a WAV streamed to a pipe carries 0 or a huge placeholder: read to end of file then
        known = 0 < size < 0x7FFF0000
        return (rate, size if known else None), buf[start:]

    def _failure(self, code: int, stderr: str) -> ProviderError:
        return ProviderError(
            self.name, f"{self.binary} exited with {code}{self._said(stderr)}", retryable=True
        )

    @staticmethod
    def _said(stderr: str) -> str:
        return f": {stderr[-_STDERR_TAIL:]}" if stderr else ""

    async def aclose(self) -> None:
        """Kill what is still running (a synthesis whose iteration was abandoned)."""
        for proc in list(self._running):
            _kill(proc)


def _kill(proc: ChildProcess) -> None:
    """Kill a synthesis that is still running, with whatever it started: the binary may be
    a wrapper script whose child engine holds the output pipe, and reading the pipes to their
    end would then wait for that child forever. The process group is the process's own (and
    its number cannot be reused) while the process has not been reaped."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if sys.platform == "win32":
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)


FliteVoice = Literal["kal16", "slt", "rms", "awb"]


class FliteParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voice: FliteVoice = Field("slt", description="kal16, slt, rms or awb (16 kHz, English)")
    binary: str = Field("flite", min_length=1, description="the flite executable")


class FliteTTS(_ProcessTTS):
    """The flite provider: English only, about 1 % of a core per second of speech."""

    Params = FliteParams
    package = "flite"
    languages: frozenset[str] | None = frozenset({"en"})

    def __init__(self, params: FliteParams | None = None, *, name: str = "flite") -> None:
        self.params = params or FliteParams()
        self.name = name
        super().__init__(self.params.binary)

    async def synthesize(self, text: str, language: str = "") -> AsyncIterator[Speech]:
        """The whole text in one run; flite writes its WAV when it is done (a sentence takes
        a few milliseconds), then it is streamed in chunks."""
        assert self.languages is not None
        _check_language(self.name, self.languages, language)
        if not _speakable(text):
            return
        text = text.replace("\0", " ")
        if len(text.encode()) > _ARG_MAX:
            raise ProviderError(
                self.name, f"text too long for flite ({len(text)} characters)", retryable=True
            )
        # flite writes its WAV to a file, not to stdout: "/dev/stdout" cannot be opened when
        # the pipe is a socket (uvloop's are), and flite writes nothing before it is done.
        # The text goes in as the one argument of -t, which takes it verbatim, "-" or not.
        with tempfile.TemporaryDirectory(prefix="callweaver-flite-") as tmp:
            output = os.path.join(tmp, "speech.wav")
            argv = [self.binary, "-voice", self.params.voice, "-o", output, "-t", text]
            async with contextlib.aclosing(self._run(argv, None, output)) as audio:
                async for speech in audio:
                    yield speech


_ESPEAK_VOICE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+-]*$")


class EspeakParams(VoicesParams):
    voice_form = _ESPEAK_VOICE
    voice_what = "an espeak-ng voice (a language code)"

    model_config = ConfigDict(extra="forbid")

    voice: str = Field(
        "en-us",
        pattern=_ESPEAK_VOICE.pattern,
        description="espeak-ng voice (a language code, optionally +variant: en-us+f3)",
    )
    rate: int = Field(175, ge=80, le=450, description="words per minute")
    binary: str = Field("espeak-ng", min_length=1, description="the espeak-ng executable")


class EspeakTTS(_ProcessTTS):
    """The espeak-ng provider: about a hundred languages, robotic but light. A request in
    another language than the configured voice's uses the voice ``voices`` gives it, else the
    locale table's espeak voice (Cantonese for zh-HK: ``yue``), else espeak-ng's voice named
    by the language."""

    Params = EspeakParams
    package = "espeak-ng"

    def __init__(self, params: EspeakParams | None = None, *, name: str = "espeak") -> None:
        self.params = params or EspeakParams()
        self.name = name
        super().__init__(self.params.binary)
        self.languages: frozenset[str] | None = _espeak_languages(self.params.binary)
        p = self.params
        self.voices = VoiceChoice("espeak", p.voice, p.voice.split("+")[0], voices=p.voices)

    def voice_for(self, language: str) -> str:
        """The espeak-ng voice to speak ``language`` with (see the class docstring)."""
        return self.voices.voice(language) or language.replace("_", "-").lower()

    async def synthesize(self, text: str, language: str = "") -> AsyncIterator[Speech]:
        """The text goes in on stdin; espeak-ng writes its audio as it goes, streamed on in
        chunks."""
        if not _speakable(text):
            return
        voice = self.voice_for(language)
        argv = [self.binary, "-v", voice, "-s", str(self.params.rate), "-b", "1"]
        argv += ["--stdin", "--stdout"]
        try:
            async with contextlib.aclosing(self._run(argv, text.encode())) as audio:
                async for speech in audio:
                    yield speech
        except ProviderError as exc:
            if exc.retryable or voice == self.params.voice:
                raise
            # no voice for this request's language: the provider still works for others
            raise ProviderError(self.name, f"no voice for {language!r}", retryable=True) from exc

    def _failure(self, code: int, stderr: str) -> ProviderError:
        if "voice does not exist" in stderr:
            return ProviderError(self.name, stderr[-_STDERR_TAIL:], retryable=False)
        return super()._failure(code, stderr)


@functools.cache
def _espeak_languages(binary: str) -> frozenset[str] | None:
    """The primary language subtags espeak-ng has voices for (``--voices``, once per process;
    None when it cannot be asked: any language is then tried)."""
    try:
        listing = subprocess.run(
            [binary, "--voices"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found: set[str] = set()
    for line in listing.splitlines()[1:]:
        head = re.match(r"\s*\d+\s+(\S+)", line)
        if head:
            found.add(_primary(head.group(1)))
        found.update(_primary(code) for code in re.findall(r"\(([^\s()]+) \d+\)", line))
    return frozenset(found) or None
