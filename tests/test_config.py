"""Deployment configs: parse_config / load_config build a graph from a valid config, with
environment substitution. Problems are in test_config_errors.py.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from config_helpers import FILE, issues_of, one_issue, parse

from callweaver.errors import ConfigError, ConfigIssue
from callweaver.pipelines.config import load_config, parse_config
from callweaver.pipelines.graph import Edge
from callweaver.pipelines.registry import BUILTINS, Registry
from callweaver.processors.echo import Echo, EchoParams
from callweaver.processors.energy_vad import EnergyVAD, EnergyVADParams
from callweaver.processors.passthrough import Identity
from callweaver.runtime.actor import Policy, Supervision

# -- a valid config ---------------------------------------------------------------------------

VALID = """\
    # A full config: defaults, overrides, env substitution.
    name: agent
    description: ${DESC:-a test agent}
    server:
      host: ${HOST:-0.0.0.0}
      port: ${PORT:-9000}
    pipeline:
      inbox: {capacity: 64, overflow: block}
      nodes:
        - name: vad
          type: energy_vad
          params: {threshold_dbfs: -40, stop_ms: 300}
          on_error: end_call
        - name: tidy
          type: identity
        - name: bot
          type: echo
          max_restarts: 5
          inbox: {capacity: 8}
"""


def test_valid_config_builds_the_graph() -> None:
    dep = parse(VALID)

    assert dep.path == FILE
    assert dep.config.name == "agent"
    assert dep.config.description == "a test agent"
    assert dep.config.server.host == "0.0.0.0"
    assert dep.config.server.port == 9000  # "9000" after substitution, coerced to int
    graph = dep.graph
    assert list(graph.nodes) == ["vad", "tidy", "bot"]
    assert graph.edges == (
        Edge("input", "out", "vad"),
        Edge("vad", "out", "tidy"),
        Edge("tidy", "out", "bot"),
        Edge("bot", "out", "output"),
    )
    assert graph.fused == frozenset({"tidy"})

    vad, tidy, bot = graph.nodes["vad"], graph.nodes["tidy"], graph.nodes["bot"]
    assert vad.supervision == Supervision(Policy.END_CALL, max_restarts=3)
    assert bot.supervision == Supervision(Policy.RESTART, max_restarts=5)
    assert (vad.inbox_capacity, vad.overflow) == (64, "block")
    assert (bot.inbox_capacity, bot.overflow) == (8, "drop_oldest")

    made = vad.factory()
    assert isinstance(made, EnergyVAD)
    assert made.params == EnergyVADParams(threshold_dbfs=-40, stop_ms=300)
    assert isinstance(tidy.factory(), Identity)
    echo = bot.factory()
    assert isinstance(echo, Echo)
    assert echo.params == EchoParams()
    assert vad.factory() is not made, "each call gets fresh processors"


def test_explicit_edges_and_fuse_false() -> None:
    dep = parse(
        """\
        name: agent
        pipeline:
          nodes:
            - {name: tidy, type: identity, fuse: false}
            - {name: bot, type: echo}
          edges:
            - input -> tidy
            - tidy.out -> bot
            - bot -> output
        """
    )
    assert dep.graph.edges == (
        Edge("input", "out", "tidy"),
        Edge("tidy", "out", "bot"),
        Edge("bot", "out", "output"),
    )
    assert dep.graph.fused == frozenset()


def test_no_nodes_is_input_straight_to_output() -> None:
    dep = parse("name: agent\npipeline: {}\n")
    assert dep.graph.nodes == {}
    assert dep.graph.edges == (Edge("input", "out", "output"),)


def test_registry_defaults_to_registry_default(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(textwrap.dedent(VALID), encoding="utf-8")
    dep = load_config(path, env={})
    assert dep.path == str(path)
    assert list(dep.graph.nodes) == ["vad", "tidy", "bot"]


def test_load_config_reports_the_path_it_was_given(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: agent\npipeline:\n  nodes:\n    - {name: a, type: nope}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, Registry(BUILTINS), env={})
    [issue] = info.value.issues
    assert (issue.file, issue.line, issue.node, issue.key) == (str(path), 4, "a", "type")
    assert str(issue).startswith(f"{path}:4: node 'a': key 'type': unknown node type 'nope'")


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [issue] = info.value.issues
    assert (issue.file, issue.line, issue.node, issue.key) == (str(path), None, None, None)
    assert issue.message.startswith("cannot read: ")
    assert str(issue).startswith(f"{path}: cannot read: ")


# -- environment substitution -----------------------------------------------------------------


def env_description(value: str, env: dict[str, str]) -> str:
    dep = parse(f"name: agent\ndescription: '{value}'\npipeline: {{}}\n", env)
    return dep.config.description


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A}", {"A": "ay"}, "ay"),
        ("x-${A}-y", {"A": "ay"}, "x-ay-y"),
        ("${A}${B}", {"A": "1", "B": "2"}, "12"),
        ("${A:-fallback}", {}, "fallback"),
        ("${A:-fallback}", {"A": "set"}, "set"),
        ("${A:-fallback}", {"A": ""}, ""),  # set but empty still wins over the default
        ("${A:-}", {}, ""),
        ("${A:-with spaces, commas: and colons}", {}, "with spaces, commas: and colons"),
        ("$$", {}, "$"),
        ("price: $$5", {}, "price: $5"),
        ("$${A}", {"A": "ay"}, "${A}"),  # escaped: not substituted
        ("$$$${A}", {"A": "ay"}, "$${A}"),
        ("$$${A}", {"A": "ay"}, "$ay"),
        ("$A and $5", {"A": "ay"}, "$A and $5"),  # only ${...} is substituted
    ],
)
def test_env_substitution(value: str, env: dict[str, str], expected: str) -> None:
    assert env_description(value, env) == expected


def test_substituted_values_are_validated_with_their_field_type() -> None:
    dep = parse(
        """\
        name: ${NAME}
        server: {port: "${PORT:-8080}"}
        pipeline: {}
        """,
        {"NAME": "from-env"},
    )
    assert dep.config.name == "from-env"
    assert dep.config.server.port == 8080
    issue = one_issue(
        """\
        name: agent
        server: {port: "${PORT:-8080}", workers: "$${W}"}
        pipeline: {}
        """
    )
    assert (issue.line, issue.node, issue.key) == (2, None, "server.workers")
    assert "valid integer" in issue.message


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLWEAVER_TEST_DESCRIPTION", "from the process")
    dep = parse_config(
        "name: agent\ndescription: ${CALLWEAVER_TEST_DESCRIPTION}\npipeline: {}\n",
        FILE,
        Registry(BUILTINS),
    )
    assert dep.config.description == "from the process"


def test_missing_env_var() -> None:
    issue = one_issue(
        """\
        name: agent
        description: "calls for ${TEAM}"
        pipeline: {}
        """
    )
    assert issue == ConfigIssue(
        FILE, 2, None, "description", "environment variable TEAM is not set (no default given)"
    )
    assert str(issue) == (
        "agent.yaml:2: key 'description': environment variable TEAM is not set (no default given)"
    )


def test_every_missing_env_var_is_reported() -> None:
    issues = issues_of(
        """\
        name: ${NAME}
        description: ${A} ${B:-ok} ${C}
        pipeline:
          nodes:
            - {name: bot, type: echo, params: {preroll_ms: "${PREROLL}"}}
        """
    )
    missing = [(i.line, i.key, i.message) for i in issues if "environment variable" in i.message]
    assert missing == [
        (1, "name", "environment variable NAME is not set (no default given)"),
        (2, "description", "environment variable A is not set (no default given)"),
        (2, "description", "environment variable C is not set (no default given)"),
        (5, "params.preroll_ms", "environment variable PREROLL is not set (no default given)"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        """\
        name: agent
        pipeline:
          nodes:
            - {name: bot, type: echo, params: {preroll_ms: "${PREROLL}"}}
        """,
        """\
        name: agent
        pipeline:
          nodes:
            - {name: bot, type: echo, type: echo}
        """,
    ],
    ids=["missing-env-var", "duplicate-key"],
)
def test_issues_found_while_reading_name_their_node(text: str) -> None:
    issues = issues_of(text)
    assert issues[0].line == 4
    assert issues[0].node == "bot"
