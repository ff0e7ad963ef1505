"""The processor registry: built-ins, ``package.module:Class`` paths and entry points.

The entry-point tests need the example plugin installed in the environment that runs pytest:
``pip install -e examples/custom_processor`` (the Makefile's test setup does it).
``module:Class`` tests load ``tests/helpers_processors.py``, importable as
``helpers_processors`` through pytest's ``pythonpath = ["tests"]``.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import itertools
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import helpers_processors
import numpy as np
import pytest
from pydantic import BaseModel

from callweaver.errors import ConfigError, RegistryError
from callweaver.frames import (
    AudioFrame,
    Frame,
    InputAudioFrame,
    OutputAudioFrame,
    ReplyEndFrame,
    ReplyTextFrame,
    TranscriptFrame,
)
from callweaver.pipelines.call import Call
from callweaver.pipelines.config import load_config, parse_config
from callweaver.pipelines.registry import BUILTINS, ENTRY_POINT_GROUP, ParamsError, Registry
from callweaver.processors.cache import ResponseCacheNode
from callweaver.processors.denoise import Denoise
from callweaver.processors.echo import Echo
from callweaver.processors.energy_vad import EnergyVAD, level_dbfs
from callweaver.processors.language import LanguageNode
from callweaver.processors.passthrough import Identity, Passthrough
from callweaver.processors.reply import AnswersReply, LLMReply
from callweaver.processors.silero_vad import SileroVAD
from callweaver.processors.stt import SpeechToText
from callweaver.processors.tts import TextToSpeech
from callweaver.runtime.processor import NoParams, Processor, Transform
from callweaver.testing import ListIO, run_processor, tone

ROOT = Path(__file__).resolve().parents[1]
CUSTOM_CONFIG = ROOT / "configs" / "custom-processor.yaml"
EXAMPLE = "callweaver-example-shout"
RATE = 16000


def _example_installed() -> bool:
    try:
        importlib.metadata.distribution(EXAMPLE)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture
def example() -> None:
    """Fail (not skip) with the fix when the example plugin is not installed."""
    if not _example_installed():
        pytest.fail(
            f"{EXAMPLE} is not installed in this environment: "
            "run `pip install -e examples/custom_processor` (make test does)"
        )


# -- built-ins ----------------------------------------------------------------------------------


def test_builtins() -> None:
    assert dict(BUILTINS) == {
        "passthrough": Passthrough,
        "identity": Identity,
        "energy_vad": EnergyVAD,
        "silero_vad": SileroVAD,
        "echo": Echo,
        "denoise": Denoise,
        "stt": SpeechToText,
        "llm": LLMReply,
        "answers": AnswersReply,
        "cache": ResponseCacheNode,
        "language": LanguageNode,
        "tts": TextToSpeech,
    }


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtins_resolve(name: str) -> None:
    assert Registry.default().resolve(name) is BUILTINS[name]
    assert Registry.default(entry_points_group=None).resolve(name) is BUILTINS[name]
    assert Registry(BUILTINS).resolve(name) is BUILTINS[name]


def test_an_empty_registry_knows_nothing() -> None:
    registry = Registry()
    assert registry.names() == []
    with pytest.raises(RegistryError, match="unknown node type 'echo'"):
        registry.resolve("echo")


def test_unknown_type_lists_what_is_known() -> None:
    with pytest.raises(RegistryError) as info:
        Registry(BUILTINS).resolve("parrot")
    assert str(info.value) == (
        "unknown node type 'parrot' (known: answers, cache, denoise, echo, energy_vad, identity, "
        "language, llm, passthrough, silero_vad, stt, tts; or use 'package.module:Class')"
    )


def test_register() -> None:
    registry = Registry(BUILTINS)
    registry.register("suffix", helpers_processors.Suffix)
    assert registry.resolve("suffix") is helpers_processors.Suffix
    assert "suffix" in registry.names()
    assert "suffix" not in Registry(BUILTINS).names(), "registries do not share state"


def test_register_refuses_a_taken_name() -> None:
    registry = Registry(BUILTINS)
    with pytest.raises(RegistryError, match="node type 'echo' is already registered"):
        registry.register("echo", helpers_processors.Suffix)
    assert registry.resolve("echo") is Echo


@pytest.mark.parametrize(
    "obj", [helpers_processors.NotAProcessor, helpers_processors.ANSWER, Processor()]
)
def test_register_refuses_what_is_not_a_processor_class(obj: object) -> None:
    with pytest.raises(RegistryError, match=r"node type 'thing': .* is not a Processor class"):
        Registry().register("thing", obj)  # type: ignore[arg-type]


# -- package.module:Class paths -----------------------------------------------------------------


def test_module_class_path_resolves() -> None:
    registry = Registry(BUILTINS)
    cls = registry.resolve("helpers_processors:Suffix")
    assert cls is helpers_processors.Suffix
    assert "helpers_processors:Suffix" in registry.names(), "resolved paths are remembered"
    assert registry.resolve("helpers_processors:Suffix") is cls
    assert registry.resolve("callweaver.processors.echo:Echo") is Echo


@pytest.mark.parametrize(
    ("type_name", "message"),
    [
        pytest.param(
            "helpers_processors:NotAProcessor",
            "'helpers_processors:NotAProcessor' is <class 'helpers_processors.NotAProcessor'>, "
            "not a Processor class",
            id="a-class-but-not-a-processor",
        ),
        pytest.param(
            "helpers_processors:ANSWER",
            "'helpers_processors:ANSWER' is 42, not a Processor class",
            id="not-a-class",
        ),
        pytest.param(
            "helpers_processors:SuffixParams",
            "'helpers_processors:SuffixParams' is <class 'helpers_processors.SuffixParams'>, "
            "not a Processor class",
            id="a-params-model",
        ),
        pytest.param(
            "helpers_processors:Missing",
            "module 'helpers_processors' has no 'Missing'",
            id="missing-attribute",
        ),
        pytest.param(
            "no_such_package.processors:Thing",
            "cannot import module 'no_such_package.processors': No module named 'no_such_package'",
            id="missing-module",
        ),
        pytest.param(
            "helpers_processors.sub:Thing",
            "cannot import module 'helpers_processors.sub': No module named "
            "'helpers_processors.sub'; 'helpers_processors' is not a package",
            id="not-a-package",
        ),
    ],
)
def test_bad_module_class_path(type_name: str, message: str) -> None:
    with pytest.raises(RegistryError) as info:
        Registry(BUILTINS).resolve(type_name)
    assert str(info.value) == message


_modules = itertools.count()


def _write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    """Write a throwaway module on sys.path; return its (unique) name."""
    name = f"cw_test_module_{next(_modules)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_module_whose_import_fails_on_a_missing_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _write_module(tmp_path, monkeypatch, "import callweaver_missing_dependency\n")
    with pytest.raises(RegistryError) as info:
        Registry(BUILTINS).resolve(f"{name}:Thing")
    assert str(info.value) == (
        f"cannot import module {name!r}: No module named 'callweaver_missing_dependency'"
    )
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_module_that_raises_when_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _write_module(tmp_path, monkeypatch, "raise RuntimeError('no API key configured')\n")
    with pytest.raises(RegistryError, match="no API key configured") as info:
        Registry(BUILTINS).resolve(f"{name}:Thing")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_empty_module_name() -> None:
    with pytest.raises(RegistryError):
        Registry(BUILTINS).resolve(":Thing")


def test_bad_module_class_path_in_a_config_names_the_node_and_line() -> None:
    text = textwrap.dedent(
        """\
        name: agent
        pipeline:
          nodes:
            - {name: vad, type: energy_vad}
            - name: polite
              type: helpers_processors:NotAProcessor
            - name: llm
              type: acme_llm.processors:Chat
        """
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "agent.yaml", Registry(BUILTINS), {})
    assert [(i.file, i.line, i.node, i.key) for i in info.value.issues] == [
        ("agent.yaml", 6, "polite", "type"),
        ("agent.yaml", 8, "llm", "type"),
    ]
    assert info.value.issues[0].message.endswith("not a Processor class")
    assert info.value.issues[1].message.startswith("cannot import module 'acme_llm.processors'")


def test_module_class_path_in_a_config_validates_params() -> None:
    text = "name: a\npipeline:\n  nodes:\n    - {name: s, type: 'helpers_processors:Suffix'%s}\n"
    dep = parse_config(text % ", params: {suffix: '?!'}", "a.yaml", Registry(BUILTINS), {})
    node = dep.graph.nodes["s"]
    made = node.factory()
    assert isinstance(made, helpers_processors.Suffix)
    assert made.p.suffix == "?!"
    assert dep.graph.fused == frozenset({"s"}), "a Transform loaded by path is fused like any"

    with pytest.raises(ConfigError) as info:
        parse_config(text % ", params: {suffix: '!!!!'}", "a.yaml", Registry(BUILTINS), {})
    [issue] = info.value.issues
    assert (issue.line, issue.node, issue.key) == (4, "s", "params.suffix")
    assert issue.message == "String should have at most 3 characters"


# -- Registry.params ----------------------------------------------------------------------------


def test_params_with_a_pydantic_model() -> None:
    params = Registry.params(helpers_processors.Suffix, {"suffix": "?"})
    assert params == helpers_processors.SuffixParams(suffix="?")
    assert Registry.params(helpers_processors.Suffix, {}) == helpers_processors.SuffixParams()
    with pytest.raises(ParamsError) as info:
        Registry.params(helpers_processors.Suffix, {"suffix": "", "sufix": "!"})
    assert info.value.problems == [
        ("suffix", "String should have at least 1 character"),
        ("sufix", "Extra inputs are not permitted"),
    ]
    assert str(info.value) == (
        "suffix: String should have at least 1 character; sufix: Extra inputs are not permitted"
    )


def test_params_of_a_node_without_params() -> None:
    assert isinstance(Registry.params(Passthrough, {}), NoParams)
    with pytest.raises(ParamsError) as info:
        Registry.params(Passthrough, {"a": 1, "b": 2})
    assert info.value.problems == [
        ("a", "this node type takes no params"),
        ("b", "this node type takes no params"),
    ]


def test_params_with_a_plain_class() -> None:
    repeat = helpers_processors.Repeat
    assert Registry.params(repeat, {"times": 3}) == helpers_processors.RepeatParams(times=3)
    with pytest.raises(ParamsError) as info:
        Registry.params(repeat, {"times": 0})
    assert info.value.problems == [("", "times must be a positive integer, got 0")]
    with pytest.raises(ParamsError) as info:
        Registry.params(repeat, {"count": 3})
    [(key, message)] = info.value.problems
    assert key == ""
    assert "unexpected keyword argument 'count'" in message


def test_plain_class_params_problems_in_a_config() -> None:
    text = textwrap.dedent(
        """\
        name: a
        pipeline:
          nodes:
            - name: twice
              type: helpers_processors:Repeat
              params: {times: 0}
        """
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "a.yaml", Registry(BUILTINS), {})
    [issue] = info.value.issues
    assert (issue.line, issue.node, issue.key) == (6, "twice", "params")
    assert issue.message == "times must be a positive integer, got 0"


async def test_processor_loaded_by_path_runs() -> None:
    registry = Registry(BUILTINS)
    cls = registry.resolve("helpers_processors:Repeat")
    run = await run_processor(cls(registry.params(cls, {"times": 3})), [TranscriptFrame(text="hi")])
    assert [f.text for f in run.downstream if isinstance(f, TranscriptFrame)] == ["hi"] * 3


# -- entry points: the example plugin -----------------------------------------------------------


@pytest.mark.usefixtures("example")
def test_example_entry_points_are_declared() -> None:
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert eps["shout"] == "callweaver_shout.processors:Shout"
    assert eps["gain"] == "callweaver_shout.processors:Gain"


@pytest.mark.usefixtures("example")
def test_entry_points_resolve() -> None:
    from callweaver_shout import Gain, Shout

    registry = Registry.default()
    assert {"shout", "gain", *BUILTINS} <= set(registry.names())
    assert registry.resolve("shout") is Shout
    assert registry.resolve("gain") is Gain
    assert issubclass(Shout, Transform)
    assert Shout.Params is NoParams
    assert issubclass(Gain.Params, BaseModel)


@pytest.mark.usefixtures("example")
def test_entry_points_are_opt_in() -> None:
    assert "gain" in Registry.default().names()
    for registry in (Registry.default(entry_points_group=None), Registry(BUILTINS)):
        assert "gain" not in registry.names()
        with pytest.raises(RegistryError, match="unknown node type 'gain'"):
            registry.resolve("gain")
    assert Registry.default(entry_points_group="callweaver.no_such_group").names() == sorted(
        BUILTINS
    )


@pytest.mark.usefixtures("example")
def test_the_example_module_path_resolves_too() -> None:
    from callweaver_shout import Gain

    assert Registry(BUILTINS).resolve("callweaver_shout.processors:Gain") is Gain
    assert Registry(BUILTINS).resolve("callweaver_shout:Gain") is Gain


@pytest.mark.usefixtures("example")
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"gain_db": 21}, "Input should be less than or equal to 20"),
        ({"gain_db": -40.5}, "Input should be greater than or equal to -40"),
        ({"gain_db": "loud"}, "Input should be a valid number, unable to parse string as a number"),
        ({"gain_db": math.nan}, "Input should be a finite number"),
        ({"gain_db": "inf"}, "Input should be a finite number"),
        ({"gain": 6}, "Extra inputs are not permitted"),
    ],
)
def test_gain_params_are_validated(raw: dict[str, object], message: str) -> None:
    from callweaver_shout import Gain

    with pytest.raises(ParamsError) as info:
        Registry.params(Gain, raw)
    [(_, got)] = info.value.problems
    assert got == message


@pytest.mark.usefixtures("example")
def test_gain_params_accept_the_range() -> None:
    from callweaver_shout import Gain, GainParams

    assert Registry.params(Gain, {}) == GainParams(gain_db=0.0)
    assert Registry.params(Gain, {"gain_db": -40}).gain_db == -40.0
    assert Registry.params(Gain, {"gain_db": "20"}).gain_db == 20.0  # as from ${ENV}


def _gain_line() -> int:
    lines = CUSTOM_CONFIG.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.lstrip().startswith("gain_db:"))


@pytest.mark.usefixtures("example")
def test_custom_processor_config_validates() -> None:
    from callweaver_shout import Gain, GainParams

    dep = load_config(CUSTOM_CONFIG, env={})
    assert list(dep.graph.nodes) == ["vad", "bot", "louder"]
    louder = dep.graph.nodes["louder"].factory()
    assert isinstance(louder, Gain)
    assert louder.params == GainParams(gain_db=6.0)
    assert dep.graph.fused == frozenset()

    dep = load_config(CUSTOM_CONFIG, env={"CALLWEAVER_GAIN_DB": "-3.5"})
    assert dep.graph.nodes["louder"].factory().params.gain_db == -3.5


@pytest.mark.usefixtures("example")
def test_custom_processor_config_reports_a_bad_gain_on_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(CUSTOM_CONFIG, env={"CALLWEAVER_GAIN_DB": "30"})
    [issue] = info.value.issues
    assert (issue.file, issue.line, issue.node, issue.key) == (
        str(CUSTOM_CONFIG),
        _gain_line(),
        "louder",
        "params.gain_db",
    )
    assert issue.message == "Input should be less than or equal to 20"


@pytest.mark.usefixtures("example")
def test_shout_with_params_is_a_config_error() -> None:
    text = "name: a\npipeline:\n  nodes:\n    - {name: s, type: shout, params: {volume: 11}}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "a.yaml", env={})
    [issue] = info.value.issues
    assert (issue.line, issue.node, issue.key, issue.message) == (
        4,
        "s",
        "params.volume",
        "this node type takes no params",
    )


# -- the example processors at work -------------------------------------------------------------


@pytest.mark.usefixtures("example")
async def test_shout_upper_cases_reply_text_only() -> None:
    from callweaver_shout import Shout

    frames = [
        ReplyTextFrame(text="hello there", turn_id=1, sentence=True),
        TranscriptFrame(text="quiet please", turn_id=1),
        ReplyTextFrame(text="ça va?", turn_id=1),
        ReplyEndFrame(turn_id=1),
    ]
    run = await run_processor(Shout(), frames)
    assert run.downstream == [
        ReplyTextFrame(text="HELLO THERE", turn_id=1, sentence=True),
        TranscriptFrame(text="quiet please", turn_id=1),
        ReplyTextFrame(text="ÇA VA?", turn_id=1),
        ReplyEndFrame(turn_id=1),
    ]
    assert run.upstream == []


A = TypeVar("A", InputAudioFrame, OutputAudioFrame)


def _audio(pcm: bytes, cls: type[A], ms: int = 20) -> list[A]:
    """``pcm`` cut into ``ms`` chunks, with their audio-clock times."""
    step = RATE * ms // 1000 * 2
    return [
        cls(pcm=pcm[i : i + step], sample_rate=RATE, pts_ns=i // 2 * 1_000_000_000 // RATE)
        for i in range(0, len(pcm), step)
    ]


def _pcm(frames: Sequence[Frame]) -> bytes:
    """The samples of audio frames, joined."""
    assert all(isinstance(f, AudioFrame) for f in frames)
    return b"".join(f.pcm for f in frames if isinstance(f, AudioFrame))


@pytest.mark.usefixtures("example")
@pytest.mark.parametrize("gain_db", [6.0, -6.0, -40.0, 0.0])
async def test_gain_scales_reply_audio(gain_db: float) -> None:
    from callweaver_shout import Gain, GainParams

    reply = _audio(tone(0.1, dbfs=-20), OutputAudioFrame)
    caller = _audio(tone(0.1, dbfs=-20), InputAudioFrame)
    run = await run_processor(Gain(GainParams(gain_db=gain_db)), [*reply, *caller])

    out = run.downstream
    assert [type(f) for f in out] == [type(f) for f in [*reply, *caller]]
    assert out[len(reply) :] == caller, "caller audio is not touched"
    for before, after in zip(reply, out, strict=False):
        assert after == dataclasses.replace(before, pcm=_pcm([after]))  # only the samples change
    scaled = _pcm(out[: len(reply)])
    original = _pcm(reply)
    assert level_dbfs(scaled) - level_dbfs(original) == pytest.approx(gain_db, abs=0.05)


@pytest.mark.usefixtures("example")
async def test_gain_clips_at_full_scale() -> None:
    from callweaver_shout import Gain, GainParams

    loud = _audio(tone(0.05, dbfs=-3), OutputAudioFrame)
    run = await run_processor(Gain(GainParams(gain_db=20)), loud)
    samples = np.frombuffer(_pcm(run.downstream), dtype="<i2")
    original = np.frombuffer(_pcm(loud), dtype="<i2")
    assert samples.max() == 32767
    assert samples.min() == -32768
    assert np.all(np.sign(samples) == np.sign(original)), "clipped, never wrapped around"


@pytest.mark.usefixtures("example")
def test_scale_pcm16() -> None:
    from callweaver_shout import scale_pcm16

    pcm = np.array([0, 1000, -1000, 20000, -20000, 32767, -32768], dtype="<i2").tobytes()
    doubled = np.frombuffer(scale_pcm16(pcm, 2.0), dtype="<i2").tolist()
    assert doubled == [0, 2000, -2000, 32767, -32768, 32767, -32768]
    halved = np.frombuffer(scale_pcm16(pcm, 0.5), dtype="<i2").tolist()
    assert halved == [0, 500, -500, 10000, -10000, 16384, -16384]
    assert scale_pcm16(b"", 2.0) == b""
    assert scale_pcm16(pcm + b"\x07", 1.0) == pcm + b"\x07", "a stray odd byte is kept"


def _caller_turn() -> list[InputAudioFrame]:
    silence, speech = tone(0.3, dbfs=-math.inf), tone(0.6, dbfs=-12)
    frames = _audio(silence + speech + silence + silence, InputAudioFrame)
    return [dataclasses.replace(f, ts_ns=f.pts_ns) for f in frames]


async def _reply_audio(env: dict[str, str]) -> bytes:
    dep = load_config(CUSTOM_CONFIG, env=env)
    io = ListIO(_caller_turn())
    report = await Call(dep.graph, lossless=True).run(io)
    assert report.errors == []
    assert report.reason == "hangup"
    return _pcm([f for f in io.written if isinstance(f, OutputAudioFrame)])


@pytest.mark.usefixtures("example")
async def test_custom_processor_config_runs_a_call() -> None:
    """energy_vad -> echo -> gain: the caller's turn comes back 6 dB louder."""
    from callweaver_shout import scale_pcm16

    plain = await _reply_audio({"CALLWEAVER_GAIN_DB": "0"})
    louder = await _reply_audio({})  # the config's default: 6 dB
    assert len(plain) >= 2 * RATE * 6 // 10, "the whole 0.6 s turn is replayed"
    assert louder == scale_pcm16(plain, 10 ** (6 / 20))
    assert level_dbfs(louder) - level_dbfs(plain) == pytest.approx(6.0, abs=0.05)


@pytest.mark.usefixtures("example")
async def test_shout_runs_fused_in_a_call() -> None:
    text = textwrap.dedent(
        """\
        name: shouty
        pipeline:
          nodes:
            - {name: shout, type: shout}
            - {name: tag, type: 'helpers_processors:Suffix', params: {suffix: '!'}}
            - {name: relay, type: passthrough}
        """
    )
    dep = parse_config(text, "shouty.yaml", env={})
    assert dep.graph.fused == frozenset({"shout", "tag"})
    io = ListIO(
        [
            ReplyTextFrame(text="hello", turn_id=1),
            TranscriptFrame(text="hi", turn_id=1),
            ReplyTextFrame(text="bye", turn_id=1),
        ]
    )
    report = await Call(dep.graph, lossless=True).run(io)
    assert report.errors == []
    texts = [(type(f).__name__, f.text) for f in io.written if hasattr(f, "text")]
    assert texts == [
        ("ReplyTextFrame", "HELLO!"),
        ("TranscriptFrame", "hi"),
        ("ReplyTextFrame", "BYE!"),
    ]
