"""Failover on real engines and real failures: broken processes, a hanging engine, noise, a
shared breaker, and OpenAI-compatible servers that fail on the wire.

test_failover.py pins the wrapper's rules down with in-process providers; here the same rules
meet what really goes wrong: an engine binary that exits 1 or does not have the voice, one
that never answers (alone, or behind a wrapper script whose child holds the pipe), one that
writes white noise in a valid WAV, and chat servers that answer 500 or 429, cut the stream,
are slow to the first token or refuse the connection. The audio of the provider that took
over is transcribed back with whisper tiny.en: the caller hears the same sentence.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import psutil
import pytest
from fake_openai import FakeOpenAI, Reply
from ports import free_port

from callweaver.audio.resample import resample
from callweaver.resources import whisper
from callweaver.runtime.clock import VirtualClock
from callweaver.services.failover import FailoverLLM, FailoverTTS, Switch
from callweaver.services.health import BreakerPolicy, BreakerState, ProviderHealth
from callweaver.services.llm import Message
from callweaver.services.local_tts import EspeakTTS, FliteTTS, PiperTTS
from callweaver.services.openai_llm import OpenAILLM
from callweaver.services.tts import TTS, Speech

SENTENCE = "Our clinic opens at eight in the morning on weekdays."
FLITE = shutil.which("flite") or "flite"
TIMEOUT_S = 0.5  # first-audio timeout of the hang and breaker tests


@pytest.fixture(scope="module")
def asr() -> whisper.WhisperModel:
    return whisper.shared_model("tiny.en")


def script(path: Path, body: str) -> Path:
    """An executable shell script at ``path`` (replaced atomically if it exists)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    tmp.chmod(0o755)
    os.replace(tmp, path)
    return path


def own_health() -> ProviderHealth:
    """Breakers of the test's own (not the process's), on a clock that does not move."""
    return ProviderHealth(clock=VirtualClock())


async def speak(tts: TTS, text: str = SENTENCE) -> list[Speech]:
    return [s async for s in tts.synthesize(text)]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


async def heard(asr: whisper.WhisperModel, chunks: list[Speech]) -> str:
    assert chunks, "no audio"
    rate = chunks[0].sample_rate
    assert {c.sample_rate for c in chunks} == {rate}
    pcm = resample(b"".join(c.pcm for c in chunks), rate, whisper.SAMPLE_RATE)
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    return (await asr.transcribe(audio, language="en")).text


async def assert_says(asr: whisper.WhisperModel, chunks: list[Speech], text: str) -> None:
    want = Counter(words(text))
    got = Counter(words(await heard(asr, chunks)))
    accuracy = sum((want & got).values()) / sum(want.values())
    assert accuracy >= 0.8, (text, got)


def running(pid: int) -> bool:
    """Is ``pid`` a live process (a zombie waiting for a reaper is not)?"""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def live_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if running(p.pid)]


# -- a provider that raises -------------------------------------------------------------------


def failing_flite(tmp: Path) -> FliteTTS:
    """A flite whose binary is a real process that fails: it says why on stderr, exits 1."""
    binary = script(tmp / "flite-broken", 'echo "engine crashed: out of memory" >&2\nexit 1')
    return FliteTTS(FliteTTS.Params(binary=str(binary)), name="flite-broken")


def unknown_voice_espeak(tmp: Path) -> EspeakTTS:
    return EspeakTTS(EspeakTTS.Params(voice="zz-nosuchvoice"), name="espeak-zz")


BROKEN: dict[str, tuple[Callable[[Path], TTS], Callable[[], TTS], str, BreakerState]] = {
    # broken provider, the one that takes over, what the switch says, the breaker afterwards
    "exit-1-then-piper": (failing_flite, PiperTTS, "engine crashed", BreakerState.CLOSED),
    # a voice the engine does not have is not retryable: the breaker opens at once
    "unknown-voice-then-flite": (
        unknown_voice_espeak,
        FliteTTS,
        "voice does not exist",
        BreakerState.OPEN,
    ),
}


@pytest.mark.parametrize("case", BROKEN)
async def test_a_provider_that_fails_hands_the_sentence_to_the_next(
    case: str, tmp_path: Path, asr: whisper.WhisperModel
) -> None:
    make_bad, make_good, reason, state = BROKEN[case]
    bad, good = make_bad(tmp_path), make_good()
    switches: list[Switch] = []
    wrapper = FailoverTTS(
        [bad, good], first_timeout_s=5, health=own_health(), on_switch=switches.append
    )
    chunks = await speak(wrapper)
    await wrapper.aclose()

    assert [(s.stage, s.from_provider, s.to_provider) for s in switches] == [
        ("tts", bad.name, good.name)
    ]
    assert reason in switches[0].reason
    assert wrapper.switches == 1
    snapshot = wrapper.health.breaker(bad.name).snapshot()
    assert snapshot["failures"] == 1 and snapshot["state"] == state.value
    assert reason in snapshot["last_error"]
    await assert_says(asr, chunks, SENTENCE)
    assert live_children() == []


# -- a provider that hangs --------------------------------------------------------------------

HANGS = {
    # the engine itself never writes a byte
    "engine": 'echo $$ >> "$PIDS"\nexec sleep 600',
    # a wrapper script whose child engine hangs holding the stdout pipe: killing only the
    # wrapper would leave the child (and the pipe) behind
    "wrapper": 'sleep 600 &\necho $! >> "$PIDS"\nwait',
}


@pytest.mark.parametrize("kind", HANGS)
async def test_a_hanging_provider_costs_the_timeout_and_leaves_no_process(
    kind: str, tmp_path: Path, asr: whisper.WhisperModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = tmp_path / "pids"
    monkeypatch.setenv("PIDS", str(pids))  # the engine process inherits it
    binary = script(tmp_path / "flite-hangs", HANGS[kind])
    hung = FliteTTS(FliteTTS.Params(binary=str(binary)), name="flite-hangs")
    switches: list[Switch] = []
    wrapper = FailoverTTS(
        [hung, FliteTTS()],
        first_timeout_s=TIMEOUT_S,
        health=own_health(),
        on_switch=switches.append,
    )
    started = time.monotonic()
    async with asyncio.timeout(10):  # a cleanup that waits for the hung engine fails here
        chunks = await speak(wrapper)
    elapsed = time.monotonic() - started
    await wrapper.aclose()

    assert [(s.from_provider, s.to_provider, s.reason) for s in switches] == [
        ("flite-hangs", "flite", "timeout")
    ]
    assert TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S + 3  # the timeout, not the hang
    engine_pids = [int(line) for line in pids.read_text().split()]
    assert engine_pids and not any(running(pid) for pid in engine_pids)
    assert live_children() == []
    await assert_says(asr, chunks, SENTENCE)


# -- a provider that returns garbage ----------------------------------------------------------


def noise_script(path: Path) -> Path:
    """An engine that writes a valid 16 kHz WAV of one second of white noise."""
    if shutil.which("sox"):
        return script(path, "exec sox -n -r 16000 -b 16 -c 1 -t wav - synth 1 whitenoise")
    code = (
        "import io, random, sys, wave\n"
        "rng = random.Random(7)\n"
        "buf = io.BytesIO()\n"
        "with wave.open(buf, 'wb') as w:\n"
        "    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)\n"
        "    w.writeframes(b''.join(rng.randint(-12000, 12000).to_bytes(2, 'little', "
        "signed=True) for _ in range(16000)))\n"
        "sys.stdout.buffer.write(buf.getvalue())\n"
    )
    (path.parent / "noise.py").write_text(code, encoding="utf-8")
    return script(path, f'exec "{sys.executable}" "{path.parent / "noise.py"}"')


async def test_a_provider_that_returns_noise_is_rejected(
    tmp_path: Path, asr: whisper.WhisperModel
) -> None:
    binary = noise_script(tmp_path / "flite-noise")
    noisy = FliteTTS(FliteTTS.Params(binary=str(binary)), name="flite-noise")
    switches: list[Switch] = []
    wrapper = FailoverTTS(
        [noisy, FliteTTS()], first_timeout_s=5, health=own_health(), on_switch=switches.append
    )
    chunks = await speak(wrapper)
    await wrapper.aclose()

    assert [(s.from_provider, s.to_provider) for s in switches] == [("flite-noise", "flite")]
    assert "noise" in switches[0].reason
    await assert_says(asr, chunks, SENTENCE)
    assert live_children() == []


# -- the breaker is the process's, shared by its calls ------------------------------------------


async def test_two_calls_share_the_breaker_then_fail_back_when_the_engine_is_fixed(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    binary = tmp_path / "flite-wrapped"
    script(binary, f'echo run >> "{runs}"\nexec sleep 600')  # hangs: each try costs the timeout
    clock = VirtualClock()
    shared = ProviderHealth(BreakerPolicy(failure_threshold=2, reset_after_s=30), clock)

    def call() -> tuple[FailoverTTS, list[Switch]]:
        switches: list[Switch] = []
        wrapper = FailoverTTS(
            [FliteTTS(FliteTTS.Params(binary=str(binary)), name="flite-wrapped"), FliteTTS()],
            first_timeout_s=TIMEOUT_S,
            health=shared,
            on_switch=switches.append,
        )
        return wrapper, switches

    def tries() -> int:
        return len(runs.read_text().split()) if runs.exists() else 0

    (first, first_switches), (second, second_switches) = call(), call()
    breaker = shared.breaker("flite-wrapped")
    await speak(first)
    await speak(first)  # this call stays on the second provider after its switch
    assert tries() == 1 and len(first_switches) == 1
    third, third_switches = call()
    await speak(third)  # another call fails on it too: two in a row open the breaker
    assert tries() == 2 and len(third_switches) == 1
    assert breaker.state is BreakerState.OPEN

    # the other call skips it: no process started, no timeout paid, no switch to report
    started = time.monotonic()
    assert await speak(second)
    assert time.monotonic() - started < TIMEOUT_S
    assert tries() == 2 and second_switches == []
    assert breaker.snapshot()["rejected"] == 1

    # fixed (the wrapper now runs the real flite); after reset_after_s one probe goes through
    script(binary, f'echo run >> "{runs}"\nexec "{FLITE}" "$@"')
    await clock.advance(29)
    await speak(second)
    assert tries() == 2  # still open
    await clock.advance(2)
    assert breaker.state is BreakerState.HALF_OPEN
    assert await speak(second)
    assert tries() == 3 and second_switches == []
    assert breaker.state is BreakerState.CLOSED  # failback
    assert await speak(first)  # the other call has it back too
    assert tries() == 4 and len(first_switches) == 1  # (its stickiness has run out: 31 s)

    for wrapper in (first, second):
        await wrapper.aclose()
    assert live_children() == []


# -- LLMs over the wire -----------------------------------------------------------------------

BACKUP = "This is the backup speaking."


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FakeOpenAI, FakeOpenAI]]:
    async with FakeOpenAI(Reply("The primary speaks.")) as a, FakeOpenAI(Reply(BACKUP)) as b:
        yield a, b


LLM_FAULTS: dict[str, tuple[Reply | None, dict[str, float], str]] = {
    # the primary's reply (None: nothing listens), its params, what the switch says
    "http-500": (Reply.error(500), {}, "HTTP 500"),
    "http-429": (Reply.error(429, retry_after="7"), {}, "Retry-After: 7"),
    "cut-before-first-token": (Reply(cut_after=0), {}, "peer closed connection"),
    "slow-first-token": (Reply(first_delay=30), {}, "timeout"),  # the wrapper's timeout
    "slow-first-token-provider": (  # the provider's own first-token timeout
        Reply(first_delay=30, keepalive_every=0.05),
        {"first_token_timeout_s": 0.3},
        "no first token within 0.3 s",
    ),
    "connection-refused": (None, {}, "cannot connect"),
}


@pytest.mark.parametrize("fault", LLM_FAULTS)
async def test_llm_failover_to_a_second_server(
    fault: str, servers: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    primary, backup = servers
    reply, params, reason = LLM_FAULTS[fault]
    url = primary.base_url if reply is not None else f"http://127.0.0.1:{free_port()}/v1"
    if reply is not None:
        primary.default = reply
    switches: list[Switch] = []
    wrapper = FailoverLLM(
        [
            OpenAILLM(OpenAILLM.Params(base_url=url, model="gpt-fake", **params), name="primary"),
            OpenAILLM(OpenAILLM.Params(base_url=backup.base_url, model="gpt-fake"), name="backup"),
        ],
        first_timeout_s=1.0,
        health=own_health(),
        on_switch=switches.append,
    )
    messages = [Message("system", "Be brief."), Message("user", "When are you open?")]
    started = time.monotonic()
    try:
        pieces = [p async for p in wrapper.stream(messages)]
    finally:
        await wrapper.aclose()

    assert "".join(pieces) == BACKUP
    assert [(s.stage, s.from_provider, s.to_provider) for s in switches] == [
        ("llm", "primary", "backup")
    ]
    assert reason in switches[0].reason
    assert len(primary.requests) == (0 if reply is None else 1)
    assert [r.body["messages"][1]["content"] for r in backup.requests] == ["When are you open?"]
    assert wrapper.health.breaker("primary").snapshot()["failures"] == 1
    assert time.monotonic() - started < 1.0 + 3  # never more than the first-token timeout
