"""Built-in processors on real audio: the energy VAD and the echo agent."""

from pathlib import Path

import numpy as np
from helpers_processors import assert_pause_before_each_stop

from callweaver.frames import (
    EndOfTurnFrame,
    Frame,
    InputAudioFrame,
    OutputAudioFrame,
    ReplyEndFrame,
    SpeechPausedFrame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
)
from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.echo import Echo, EchoParams
from callweaver.processors.energy_vad import EnergyVAD, EnergyVADParams, level_dbfs
from callweaver.runtime.latency import Stage
from callweaver.testing import ListIO, run_processor, tone
from callweaver.transports.wav import read_wav

CALLER = Path(__file__).parent.parent / "examples" / "audio" / "caller.wav"
RATE = 16000


def chunks(pcm: bytes, rate: int = RATE, ms: int = 20) -> list[Frame]:
    step = rate * ms // 1000 * 2
    return [
        InputAudioFrame(
            pcm=pcm[i : i + step],
            sample_rate=rate,
            pts_ns=i // 2 * 1_000_000_000 // rate,
            ts_ns=(i + step) // 2 * 1_000_000_000 // rate,
        )
        for i in range(0, len(pcm), step)
    ]


def bursts() -> bytes:
    """0.5 s silence, 1.0 s tone, 1.0 s silence, 0.8 s tone, 0.5 s silence."""
    silence = float("-inf")
    parts = [(0.5, silence), (1.0, -12.0), (1.0, silence), (0.8, -12.0), (0.5, silence)]
    return b"".join(tone(s, rate=RATE, dbfs=d) for s, d in parts)


def test_level_dbfs() -> None:
    assert level_dbfs(tone(0.1, dbfs=-6.0)) == np.float32(level_dbfs(tone(0.1, dbfs=-6.0)))
    assert -10.0 < level_dbfs(tone(0.1, dbfs=-6.0)) < -8.0  # sine RMS is 3 dB under its peak
    assert level_dbfs(bytes(640)) == float("-inf")


async def test_energy_vad_finds_known_speech_boundaries() -> None:
    vad = EnergyVAD(EnergyVADParams(start_ms=60, stop_ms=300, barge_in=False))
    run = await run_processor(vad, chunks(bursts()))
    events = [f for f in run.downstream if not isinstance(f, InputAudioFrame)]
    kinds = [type(f).__name__ for f in events if not isinstance(f, SpeechPausedFrame)]
    assert kinds == ["SpeechStartedFrame", "SpeechStoppedFrame", "EndOfTurnFrame"] * 2
    assert_pause_before_each_stop(events)
    starts = [f.pts_ns / 1e9 for f in events if isinstance(f, SpeechStartedFrame)]
    stops = [f.pts_ns / 1e9 for f in events if isinstance(f, SpeechStoppedFrame)]
    assert np.allclose(starts, [0.5, 2.5], atol=0.021)
    assert np.allclose(stops, [1.5, 3.3], atol=0.021)
    assert [f.turn_id for f in events if isinstance(f, EndOfTurnFrame)] == [1, 2]
    # every audio frame is passed on, in order
    audio = [f for f in run.downstream if isinstance(f, InputAudioFrame)]
    assert len(audio) == len(chunks(bursts()))
    # latency marks: speech end is when the last voiced chunk arrived; the endpoint follows it
    assert run.ctx is not None
    turn = run.ctx.latency.turns[0]
    assert turn.marks[Stage.SPEECH_END] == int(1.5e9)


async def test_energy_vad_on_real_speech_opens_and_closes_turns() -> None:
    pcm = read_wav(CALLER)
    vad = EnergyVAD(EnergyVADParams(stop_ms=800, barge_in=False))
    tail = bytes(pcm.sample_rate * 2)  # one second of silence lets the last turn end
    run = await run_processor(vad, chunks(pcm.data + tail, pcm.sample_rate))
    starts = [f for f in run.downstream if isinstance(f, SpeechStartedFrame)]
    stops = [f for f in run.downstream if isinstance(f, SpeechStoppedFrame)]
    # two sentences with 1.5 s between them
    assert len(starts) == len(stops) == 2
    samples = np.frombuffer(pcm.data, "<i2").astype(np.float32)
    first_loud = int(np.argmax(np.abs(samples) > 300)) / pcm.sample_rate
    assert abs(starts[0].pts_ns / 1e9 - first_loud) < 0.1
    assert starts[1].pts_ns - stops[0].pts_ns > 1.2e9


async def test_echo_replays_each_turn() -> None:
    pcm = bursts()
    graph = Graph(
        [
            Node.of("vad", EnergyVAD, EnergyVADParams(stop_ms=300, barge_in=False)),
            Node.of("bot", Echo, EchoParams(preroll_ms=0)),
        ]
    )
    io = ListIO(chunks(pcm))
    report = await Call(graph, lossless=True).run(io)
    replies = [f for f in io.written if isinstance(f, OutputAudioFrame)]
    assert {f.turn_id for f in replies} == {1, 2}
    first = b"".join(f.pcm for f in replies if f.turn_id == 1)
    # the reply is the caller's voiced audio of that turn: 1.0 s of tone, 20 ms granularity
    assert first == pcm[int(0.5 * RATE) * 2 : int(1.5 * RATE) * 2]
    assert sum(isinstance(f, ReplyEndFrame) for f in io.written) == 2
    for turn in report.turns:
        assert turn.voice_to_voice_ms is not None and turn.voice_to_voice_ms >= 0
