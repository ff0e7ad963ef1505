"""The Azure STT provider, per utterance and streamed as the caller speaks, and through
``callweaver simulate``: the real Azure Speech SDK against a fake service speaking
Azure's USP protocol over real WebSockets on loopback (``fake_azure``)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_azure import (
    FakeAzure,
    Script,
    flite_pcm,
)
from ports import free_port

from callweaver.audio.resample import resample
from callweaver.errors import ProviderError
from callweaver.runtime.clock import VirtualClock
from callweaver.services.azure_stt import AzureSTT
from callweaver.services.failover import FailoverSTT, Switch
from callweaver.services.health import ProviderHealth
from callweaver.services.stt import STT, STTStream, Utterance

MakeSTT = Callable[..., AzureSTT]


@pytest.fixture
async def server() -> AsyncIterator[FakeAzure]:
    async with FakeAzure() as fake:
        yield fake


@pytest.fixture
async def make_stt(server: FakeAzure) -> AsyncIterator[MakeSTT]:
    made: list[AzureSTT] = []

    def make(**params: Any) -> AzureSTT:
        params = {"key": server.key, "host": server.host, **params}
        stt = AzureSTT(AzureSTT.Params(**params), name="az")
        made.append(stt)
        return stt

    yield make
    for stt in made:
        await stt.aclose()


async def stt_failure(stt: AzureSTT, utterance: Utterance) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await stt.transcribe(utterance)
    return info.value


def hello(rate: int = 16000, language: str = "") -> Utterance:
    pcm = resample(flite_pcm("Hello, I would like a table."), 16000, rate)
    return Utterance(pcm, rate, language)


# -- STT ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "asked", "locale"),
    [
        (16000, "", "en-US"),
        (8000, "zh-HK", "zh-HK"),
        (16000, "yue", "zh-HK"),
        (48000, "en", "en-US"),
    ],
)
async def test_stt_transcribes(
    server: FakeAzure, make_stt: MakeSTT, rate: int, asked: str, locale: str
) -> None:
    server.default = Script(text="I would like a table.")
    stt: STT = make_stt()
    utterance = hello(rate, asked)
    transcript = await stt.transcribe(utterance)
    assert transcript.text == "I would like a table."
    assert transcript.language == (asked or "en-US")
    (recognition,) = server.recognitions
    sent = min(rate, 16000)  # the service takes 8 or 16 kHz
    assert (recognition.language, recognition.sample_rate) == (locale, sent)
    assert recognition.audio == resample(utterance.pcm, rate, sent) and recognition.ended
    assert isinstance(stt, AzureSTT)
    assert stt.last_latency_s is not None and 0 < stt.last_latency_s < 1.0


async def test_a_long_utterance_is_not_sent_at_real_time(
    server: FakeAzure, make_stt: MakeSTT
) -> None:
    # the SDK throttles pushed audio to real time after 5 s unless told otherwise: a 12 s
    # turn would then wait about 7 s for its transcript
    stt = make_stt()
    short = hello()
    await stt.transcribe(short)
    assert isinstance(stt, AzureSTT) and stt.last_latency_s is not None
    quick = stt.last_latency_s
    long = Utterance(short.pcm * round(12 / short.duration_s), short.sample_rate)
    await stt.transcribe(long)
    assert stt.last_latency_s is not None and stt.last_latency_s < quick + 2.0
    assert len(server.recognitions[-1].audio) == len(long.pcm)


async def test_stt_warm_opens_the_socket_first(server: FakeAzure, make_stt: MakeSTT) -> None:
    stt = make_stt()
    await stt.warm()
    assert server.connections == 1 and not server.recognitions[0].audio
    transcript = await stt.transcribe(hello())
    assert transcript.text == Script().text
    assert server.connections == 1 and server.recognitions[0].ended


async def test_stt_401_is_final(server: FakeAzure, make_stt: MakeSTT) -> None:
    stt = make_stt(key="wrong-key-5b7e9c")
    error = await stt_failure(stt, hello())
    assert not error.retryable and "AuthenticationFailure" in str(error)
    assert "wrong-key-5b7e9c" not in str(error) + repr(stt) + repr(stt.params)


async def test_stt_refused_port(make_stt: MakeSTT) -> None:
    error = await stt_failure(make_stt(host=f"ws://127.0.0.1:{free_port()}"), hello())
    assert error.retryable and "ConnectionFailure" in str(error)


async def test_stt_stream_cut_by_1011(server: FakeAzure, make_stt: MakeSTT) -> None:
    server.default = Script(close_code=1011)
    error = await stt_failure(make_stt(), hello())
    assert error.retryable and "ServiceError" in str(error) and "1011" in str(error)
    # the SDK reconnects and sends the audio again, four times, before it gives up
    assert len(server.recognitions) == 5 and all(r.ended for r in server.recognitions)


async def test_stt_silent_server_times_out(server: FakeAzure, make_stt: MakeSTT) -> None:
    server.default = Script(hang=True)
    started = time.monotonic()
    error = await stt_failure(make_stt(result_timeout_s=0.8), hello())
    elapsed = time.monotonic() - started
    assert error.retryable and "no final result within 0.8 s" in str(error)
    assert 0.75 < elapsed < 1.5


async def test_stt_garbled_audio(server: FakeAzure, make_stt: MakeSTT) -> None:
    error = await stt_failure(make_stt(), Utterance(b"\x00" * 1001, 16000))
    assert error.retryable and "odd" in str(error)
    assert server.attempts == 0


async def test_stt_language_it_does_not_serve(server: FakeAzure, make_stt: MakeSTT) -> None:
    stt = make_stt()
    assert {"zh-HK", "yue", "en", "en-US", "zh"} <= (stt.languages or set())
    error = await stt_failure(stt, Utterance(b"\0\0" * 160, 16000, "tlh"))
    assert error.retryable and server.attempts == 0


# -- STT, streamed as the caller speaks -------------------------------------------------------


async def speak_into(stream: STTStream, pcm: bytes, rate: int = 16000) -> None:
    """Push ``pcm`` in 20 ms chunks at the pace a caller speaks it."""
    loop = asyncio.get_running_loop()
    step, started = rate // 50 * 2, loop.time()
    for k, i in enumerate(range(0, len(pcm), step)):
        stream.push(pcm[i : i + step])
        await asyncio.sleep(max(0.0, started + (k + 1) * 0.02 - loop.time()))


async def read_partials(stream: STTStream, into: list[tuple[float, str]]) -> None:
    loop = asyncio.get_running_loop()
    async for partial in stream.partials():
        into.append((loop.time(), partial.text))


async def test_stt_stream_hears_the_caller_as_they_speak(
    server: FakeAzure, make_stt: MakeSTT
) -> None:
    text = "Hello, I would like a table."
    server.default = Script(text=text, hypothesis_ms=300)
    stt = make_stt()
    await stt.warm()
    pcm = flite_pcm(text)
    seconds = len(pcm) / 2 / 16000
    loop = asyncio.get_running_loop()
    partials: list[tuple[float, str]] = []
    stream = stt.open("", 16000)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(read_partials(stream, partials))
        await speak_into(stream, pcm)
        (recognition,) = server.recognitions
        assert not recognition.ended and recognition.seconds > seconds - 0.3  # heard already
        finished = loop.time()
        transcript = await stream.finish()
    assert transcript.text == text and transcript.language == "en-US"
    assert recognition.audio == pcm and recognition.ended and server.connections == 1
    # interim transcripts came while the caller spoke, one more word each
    during = [t for at, t in partials if at < finished]
    assert during[:3] == ["hello,", "hello, i", "hello, i would"] and len(during) >= 5
    assert partials[0][0] < finished - seconds / 2
    assert recognition.hypotheses[0][0] < seconds / 2  # sent when half the audio had come
    assert stt.last_latency_s is not None and 0 < stt.last_latency_s < 0.5


async def test_stt_stream_in_the_calls_language_and_rate(
    server: FakeAzure, make_stt: MakeSTT
) -> None:
    server.default = Script(text="我想 訂位", hypothesis_ms=200)
    stt = make_stt()
    pcm = resample(flite_pcm("Hello, I would like a table."), 16000, 48000)
    stream = stt.open("yue", 48000)
    partials: list[tuple[float, str]] = []
    async with asyncio.TaskGroup() as tg:
        tg.create_task(read_partials(stream, partials))
        for i in range(0, len(pcm), 1920):  # 20 ms at 48 kHz, as fast as it goes
            stream.push(pcm[i : i + 1920])
        transcript = await stream.finish()
    assert (transcript.text, transcript.language) == ("我想 訂位", "yue")
    assert [text for _, text in partials][:2] == ["我想", "我想 訂位"]
    (recognition,) = server.recognitions
    assert (recognition.language, recognition.sample_rate) == ("zh-HK", 16000)
    assert recognition.audio == resample(pcm, 48000, 16000)  # chunked = whole, byte for byte


async def test_stt_stream_refused_port_fails_before_the_end(make_stt: MakeSTT) -> None:
    stream = make_stt(host=f"ws://127.0.0.1:{free_port()}").open("en-US", 16000)
    stream.push(hello().pcm[:16000])
    async with asyncio.timeout(5):
        assert [p async for p in stream.partials()] == []  # ended: the stream has failed
    with pytest.raises(ProviderError) as info:
        await stream.finish()
    assert info.value.retryable and "ConnectionFailure" in str(info.value)


async def test_stt_stream_waits_for_the_caller_then_times_out_after(
    server: FakeAzure, make_stt: MakeSTT
) -> None:
    server.default = Script(hang=True)
    stream = make_stt(result_timeout_s=0.5).open("en-US", 16000)
    await speak_into(stream, hello().pcm[: 16000 * 2])  # 1 s: longer than the timeout
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await stream.finish()
    elapsed = time.monotonic() - started
    assert info.value.retryable and "no final result within 0.5 s" in str(info.value)
    assert 0.45 < elapsed < 1.2


async def test_stt_stream_cancelled_then_the_next_turn(
    server: FakeAzure, make_stt: MakeSTT
) -> None:
    stt = make_stt()
    first = stt.open("en-US", 16000)
    await speak_into(first, hello().pcm[:8000])
    await first.cancel()
    await first.cancel()  # twice is fine
    assert [p async for p in first.partials()] == []
    second = stt.open("en-US", 16000)
    second.push(hello().pcm)
    assert (await second.finish()).text == Script().text
    assert len(server.recognitions) == 2 and server.recognitions[1].ended


async def test_stt_stream_broken_mid_turn_hands_the_whole_utterance_over(
    server: FakeAzure,
) -> None:
    text = "Hello, I would like a table."
    pcm = flite_pcm(text)
    async with FakeAzure(default=Script(text="heard by the second")) as second:
        providers: list[STT] = [
            AzureSTT(AzureSTT.Params(key=server.key, host=server.host), name="az-1"),
            AzureSTT(AzureSTT.Params(key=second.key, host=second.host), name="az-2"),
        ]
        switches: list[Switch] = []
        health = ProviderHealth(clock=VirtualClock())
        failover = FailoverSTT(
            providers, first_timeout_s=3.0, health=health, on_switch=switches.append
        )
        stream = failover.open("en-US", 16000)
        assert stream.live
        half = len(pcm) // 4 * 2
        await speak_into(stream, pcm[:half])
        assert server.recognitions[0].audio  # the first service was hearing it
        await server.stop()  # ... and goes away mid-turn
        await speak_into(stream, pcm[half:])
        started = time.monotonic()
        transcript = await stream.finish()
        elapsed = time.monotonic() - started
        await failover.aclose()
    assert transcript.text == "heard by the second"
    (recognition,) = second.recognitions
    assert recognition.audio == pcm  # the whole utterance, not what came after the break
    assert [(s.from_provider, s.to_provider) for s in switches] == [("az-1", "az-2")]
    assert health.breaker("az-1").failures == 1 and health.breaker("az-2").successes == 1
    assert elapsed < 3.5


async def test_simulate_shows_interim_transcripts(tmp_path: Path) -> None:
    """The user's path: ``callweaver simulate`` on configs/local.yaml with Azure STT (the
    fake) first: the output and the JSON report show what was heard while the caller spoke,
    then the final transcript, answered."""
    root = Path(__file__).parent.parent
    said = "Hello, I'd like to book an appointment with a doctor, please."
    async with FakeAzure(default=Script(text=said, hypothesis_ms=300)) as server:
        config = yaml.safe_load((root / "configs" / "local.yaml").read_text())
        for node in config["pipeline"]["nodes"]:
            if node["type"] == "stt":
                azure = {"type": "azure", "key": server.key, "host": server.host}
                node["params"]["providers"] = [azure, "whisper"]
            elif node["type"] == "tts":
                node["params"]["providers"] = ["flite"]
        path = tmp_path / "azure.yaml"
        path.write_text(yaml.safe_dump(config))
        report = tmp_path / "report.json"
        argv = ["simulate", str(path), "--audio", str(root / "examples/audio/question-book.wav")]
        argv += ["--out", str(tmp_path / "reply.wav"), "--json", str(report)]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callweaver", *argv, cwd=root,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(120):
            out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    printed = out.decode()
    assert "[1] interim: hello, i'd like" in printed
    assert printed.index("interim:") < printed.index(f"caller: {said}")
    conversation = json.loads(report.read_text())["conversation"]
    speakers = [c["speaker"] for c in conversation]
    assert speakers[:5] == ["interim"] * 5 and "caller" in speakers
    heard = [c["text"] for c in conversation if c["speaker"] == "caller"]
    assert heard == [said]
    assert any("book you in" in c["text"] for c in conversation if c["speaker"] == "bot")
    assert len(server.recognitions) == 1 and server.recognitions[0].ended
