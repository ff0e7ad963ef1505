"""Deployment configs with problems: every one is reported, with its file, line, node and key.

Line numbers below count from 1, as an editor shows them. Configs are dedented literals whose
first line is line 1.
"""

from __future__ import annotations

import pytest
from config_helpers import FILE, issues_of, one_issue, parse, where

from callweaver.errors import ConfigIssue

# -- one problem at a time: file, line, node, key ---------------------------------------------

HEAD = "name: agent\npipeline:\n  nodes:\n"  # lines 1-3; the first node is on line 4


@pytest.mark.parametrize(
    ("body", "line", "node", "key", "message"),
    [
        pytest.param(
            "    - {name: bot, type: parrot}\n",
            4,
            "bot",
            "type",
            "unknown node type 'parrot' (known: answers, cache, denoise, echo, energy_vad, "
            "identity, language, llm, passthrough, silero_vad, stt, tts; or use "
            "'package.module:Class')",
            id="unknown-type",
        ),
        pytest.param(
            "    - name: stt\n      type: stt\n      params:\n        providers:\n"
            "          - {type: whisperr}\n",
            7,
            "stt",
            "params.providers",
            "Value error, unknown stt provider 'whisperr' (known: azure, whisper)",
            id="unknown-provider",
        ),
        pytest.param(
            "    - name: tts\n      type: tts\n      params:\n        providers:\n"
            "          - piper\n          - {type: flite, voice: robot}\n",
            7,
            "tts",
            "params.providers",
            "Value error, tts provider 'flite': voice: Input should be 'kal16', 'slt', 'rms' or "
            "'awb'",
            id="bad-provider-param",
        ),
        pytest.param(
            "    - name: bot\n      type: answers\n"
            "      params: {file: /nonexistent.yaml, answers: [{question: hi, reply: hello}]}\n",
            6,
            "bot",
            "params",
            "Value error, answers file '/nonexistent.yaml': no such file",
            id="missing-answers-file",
        ),
        pytest.param(
            "    - name: vad\n      type: energy_vad\n      params:\n        stop_ms: soon\n",
            7,
            "vad",
            "params.stop_ms",
            "Input should be a valid integer, unable to parse string as an integer",
            id="bad-param-value",
        ),
        pytest.param(
            "    - name: vad\n      type: energy_vad\n      params: {threshold_dbfs: 3}\n",
            6,
            "vad",
            "params.threshold_dbfs",
            "Input should be less than or equal to 0",
            id="param-out-of-range",
        ),
        pytest.param(
            "    - {name: bot, type: echo}\n"
            "    - name: vad\n      type: energy_vad\n      params:\n"
            "        stop_ms: 300\n        stop_after: 300\n",
            9,
            "vad",
            "params.stop_after",
            "Extra inputs are not permitted",
            id="unknown-param-key",
        ),
        pytest.param(
            "    - {name: tidy, type: identity, params: {level: 1}}\n",
            4,
            "tidy",
            "params.level",
            "this node type takes no params",
            id="params-for-a-node-without-params",
        ),
        pytest.param(
            "    - {name: bot, type: echo, on_eror: skip}\n",
            4,
            "bot",
            "on_eror",
            "Extra inputs are not permitted",
            id="unknown-node-key",
        ),
        pytest.param(
            "    - {name: bot, type: echo, on_error: retry}\n",
            4,
            "bot",
            "on_error",
            "Input should be 'restart', 'skip' or 'end_call'",
            id="bad-policy",
        ),
        pytest.param(
            "    - {name: bot}\n",
            4,
            "bot",
            "type",
            "Field required",
            id="missing-type",
        ),
        pytest.param(
            "    - {name: bot, type: echo}\n    - type: echo\n",
            5,
            "#2",
            "name",
            "Field required",
            id="missing-name",
        ),
        pytest.param(
            "    - {name: 2bot, type: echo}\n",
            4,
            "2bot",
            "name",
            "String should match pattern '^[A-Za-z_][A-Za-z0-9_-]*$'",
            id="bad-node-name",
        ),
        pytest.param(
            "    - {name: input, type: echo}\n  edges: [input -> output]\n",
            4,
            "input",
            None,
            "node name 'input' is reserved",
            id="reserved-node-name",
        ),
    ],
)
def test_node_problem(
    body: str, line: int, node: str | None, key: str | None, message: str
) -> None:
    assert one_issue(HEAD + body) == ConfigIssue(FILE, line, node, key, message)


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        pytest.param(
            "name: agent\ncolour: blue\npipeline: {}\n",
            2,
            "colour",
            "Extra inputs are not permitted",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "name: agent\nserver:\n  host: 0.0.0.0\n  prot: 80\npipeline: {}\n",
            4,
            "server.prot",
            "Extra inputs are not permitted",
            id="unknown-nested-key",
        ),
        pytest.param(
            "name: agent\nserver:\n  port: 70000\npipeline: {}\n",
            3,
            "server.port",
            "Input should be less than or equal to 65535",
            id="bad-value",
        ),
        pytest.param(
            "name: agent\n",
            1,
            "pipeline",
            "Field required",
            id="missing-pipeline",
        ),
        pytest.param(
            "name: ''\npipeline: {}\n",
            1,
            "name",
            "String should have at least 1 character",
            id="empty-name",
        ),
        pytest.param(
            "name: agent\npipeline: {inbox: {overflow: lose}}\n",
            2,
            "pipeline.inbox.overflow",
            "Input should be 'drop_oldest' or 'block'",
            id="bad-inbox-overflow",
        ),
        pytest.param(
            "name: agent\nname: again\npipeline: {}\n",
            2,
            "name",
            "duplicate key 'name'",
            id="duplicate-yaml-key",
        ),
    ],
)
def test_top_level_problem(text: str, line: int, key: str, message: str) -> None:
    assert one_issue(text) == ConfigIssue(FILE, line, None, key, message)


def test_unknown_top_level_key_with_a_block_value_is_reported_on_its_own_line() -> None:
    issue = one_issue("name: agent\nlogging:\n  level: debug\npipeline: {}\n")
    assert (issue.line, issue.node, issue.key) == (2, None, "logging")


# -- graph problems -----------------------------------------------------------------------------

GRAPH_HEAD = """\
name: agent
pipeline:
  nodes:
    - {name: vad, type: energy_vad}
    - {name: bot, type: echo}
  edges:
"""  # lines 1-6; the first edge is on line 7


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        pytest.param(
            ["input -> vad", "vad -> bot", "bot -> output", "vad -> speaker"],
            [
                (
                    10,
                    None,
                    "pipeline.edges.3",
                    "edge vad.out -> speaker: no node 'speaker' to lead to",
                )
            ],
            id="edge-to-a-missing-node",
        ),
        pytest.param(
            ["input -> vad", "vad -> bot", "bot -> output", "mic -> vad"],
            [(10, None, "pipeline.edges.3", "edge mic.out -> vad: no node 'mic' to start from")],
            id="edge-from-a-missing-node",
        ),
        pytest.param(
            ["input -> vad", "vad.speech -> bot", "vad -> bot", "bot -> output"],
            [
                (
                    8,
                    None,
                    "pipeline.edges.1",
                    "edge vad.speech -> bot: node 'vad' has no port 'speech' (ports: out)",
                )
            ],
            id="edge-from-a-missing-port",
        ),
        pytest.param(
            ["input -> vad", "vad -> bot", "bot -> output", "output -> bot"],
            [
                (
                    10,
                    None,
                    "pipeline.edges.3",
                    "edge output.out -> bot: no node 'output' to start from",
                )
            ],
            id="edge-from-output",
        ),
        pytest.param(
            ["input -> vad", "vad -> bot", "input -> output"],
            [(5, "bot", None, "port 'out' of node 'bot' leads nowhere: its frames would be lost")],
            id="unconnected-port",
        ),
        pytest.param(
            ["input -> vad", "vad -> output", "bot -> output"],
            [
                (
                    5,
                    "bot",
                    None,
                    "node 'bot' is not reachable from input: it would never see the end of the "
                    "call, so the call could not drain",
                )
            ],
            id="node-unreachable-from-input",
        ),
        pytest.param(
            ["input -> vad", "vad -> bot", "bot -> vad", "bot -> output"],
            [(5, "bot", None, "cycle bot -> vad -> bot: end of stream could never get through it")],
            id="cycle",
        ),
        pytest.param(
            ["input -> vad", "vad -> bot", "bot -> bot", "bot -> output"],
            [(5, "bot", None, "cycle bot -> bot: end of stream could never get through it")],
            id="self-loop",
        ),
        pytest.param(
            ["input -> vad", "vad -> bot", "bot => output"],
            [
                (
                    9,
                    None,
                    "pipeline.edges.2",
                    "edge must read 'node[.port] -> node', got 'bot => output'",
                )
            ],
            id="edge-syntax",
        ),
    ],
)
def test_graph_problem(
    edges: list[str], expected: list[tuple[int, str | None, str | None, str]]
) -> None:
    text = GRAPH_HEAD + "".join(f"    - {e}\n" for e in edges)
    issues = issues_of(text)
    assert [(i.line, i.node, i.key, i.message) for i in issues] == expected
    assert {i.file for i in issues} == {FILE}


def test_no_path_from_input_to_output() -> None:
    issue = one_issue("name: agent\npipeline: {nodes: [], edges: []}\n")
    assert issue == ConfigIssue(FILE, 2, None, "pipeline", "no path from input to output")


def test_duplicate_node_names() -> None:
    issues = issues_of(
        """\
        name: agent
        pipeline:
          nodes:
            - {name: bot, type: echo}
            - {name: bot, type: passthrough}
          edges: [input -> bot, bot -> output]
        """
    )
    assert [(i.node, i.key, i.message) for i in issues] == [
        ("bot", None, "duplicate node name 'bot'")
    ]


def test_duplicate_node_name_is_reported_on_the_duplicate() -> None:
    issues = issues_of(
        """\
        name: agent
        pipeline:
          nodes:
            - {name: bot, type: echo}
            - {name: bot, type: passthrough}
        """
    )
    assert [(i.line, i.node, i.message) for i in issues] == [
        (5, "bot", "duplicate node name 'bot'")
    ]


# -- many problems at once ----------------------------------------------------------------------


def test_schema_problems_are_all_reported_at_once() -> None:
    issues = issues_of(
        """\
        name: agent
        colour: blue
        server: {port: -1, workers: 0}
        pipeline:
          inbox: {capacity: 0}
          nodes:
            - {name: vad}
            - {name: bot, type: echo, on_error: retry, extra: 1}
            - {type: echo}
        """
    )
    assert where(issues) == {
        (FILE, 2, None, "colour"),
        (FILE, 3, None, "server.port"),
        (FILE, 3, None, "server.workers"),
        (FILE, 5, None, "pipeline.inbox.capacity"),
        (FILE, 7, "vad", "type"),
        (FILE, 8, "bot", "on_error"),
        (FILE, 8, "bot", "extra"),
        (FILE, 9, "#3", "name"),
    }
    assert len(issues) == 8


def test_node_type_and_param_problems_are_all_reported_at_once() -> None:
    issues = issues_of(
        """\
        name: agent
        pipeline:
          nodes:
            - name: vad
              type: energy_vad
              params:
                threshold_dbfs: loud
                start_ms: -1
                stop_ms: 300
                volume: 11
            - name: stt
              type: whisper
            - name: tidy
              type: identity
              params: {level: 1, mode: x}
            - name: bot
              type: echo
              params:
                preroll_ms: 100
                chunk_ms: 0
        """
    )
    assert [(i.file, i.line, i.node, i.key) for i in issues] == [
        (FILE, 7, "vad", "params.threshold_dbfs"),
        (FILE, 8, "vad", "params.start_ms"),
        (FILE, 10, "vad", "params.volume"),
        (FILE, 12, "stt", "type"),
        (FILE, 15, "tidy", "params.level"),
        (FILE, 15, "tidy", "params.mode"),
        (FILE, 20, "bot", "params.chunk_ms"),
    ]
    messages = [i.message for i in issues]
    assert messages[0] == "Input should be a valid number, unable to parse string as a number"
    assert messages[1] == "Input should be greater than or equal to 0"
    assert messages[2] == "Extra inputs are not permitted"
    assert messages[3].startswith("unknown node type 'whisper'")
    assert messages[4] == messages[5] == "this node type takes no params"
    assert messages[6] == "Input should be greater than 0"


def test_graph_problems_are_all_reported_at_once() -> None:
    issues = issues_of(
        """\
        name: agent
        pipeline:
          nodes:
            - {name: vad, type: energy_vad}
            - {name: bot, type: echo}
            - {name: loop1, type: passthrough}
            - {name: loop2, type: passthrough}
            - {name: orphan, type: passthrough}
          edges:
            - input -> vad
            - vad.audio -> bot
            - bot -> ghost
            - loop1 -> loop2
            - loop2 -> loop1
            - vad -> output
            - orphan -> output
        """
    )
    expected = [
        (
            11,
            None,
            "pipeline.edges.1",
            "edge vad.audio -> bot: node 'vad' has no port 'audio' (ports: out)",
        ),
        (12, None, "pipeline.edges.2", "edge bot.out -> ghost: no node 'ghost' to lead to"),
        (5, "bot", None, "port 'out' of node 'bot' leads nowhere: its frames would be lost"),
        (
            5,
            "bot",
            None,
            "node 'bot' is not reachable from input: it would never see the end of the call, "
            "so the call could not drain",
        ),
        (
            6,
            "loop1",
            None,
            "node 'loop1' is not reachable from input: it would never see the end of the call, "
            "so the call could not drain",
        ),
        (
            7,
            "loop2",
            None,
            "node 'loop2' is not reachable from input: it would never see the end of the call, "
            "so the call could not drain",
        ),
        (
            8,
            "orphan",
            None,
            "node 'orphan' is not reachable from input: it would never see the end of the call, "
            "so the call could not drain",
        ),
        (
            6,
            "loop1",
            None,
            "cycle loop1 -> loop2 -> loop1: end of stream could never get through it",
        ),
    ]
    # issues come in file order (stable within a line)
    assert [(i.line, i.node, i.key, i.message) for i in issues] == sorted(
        expected, key=lambda row: row[0]
    )


def test_reading_problems_are_reported_with_schema_problems() -> None:
    issues = issues_of(
        """\
        name: agent
        description: ${MISSING}
        server: {port: http}
        pipeline: {}
        """
    )
    assert [(i.line, i.key) for i in issues] == [(2, "description"), (3, "server.port")]


# -- files that are not a config ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "detail"),
    [
        pytest.param(
            "name: agent\npipeline:\n  nodes:\n    - name: a\n     type: echo\n",
            5,
            "expected <block end>, but found '<block mapping start>'",
            id="bad-indentation",
        ),
        pytest.param(
            "name: agent\npipeline:\n  nodes: [\n    {name: a, type: echo}\n\n",
            6,
            "expected ',' or ']', but got '<stream end>'",
            id="unclosed-flow-sequence",
        ),
        pytest.param(
            "name: agent\npipeline:\n\tnodes: []\n",
            3,
            "found character '\\t' that cannot start any token",
            id="tab",
        ),
        pytest.param(
            "name: agent\ndescription: 'unterminated\npipeline: {}\n",
            4,
            "found unexpected end of stream",
            id="unterminated-quote",
        ),
    ],
)
def test_invalid_yaml_is_reported_with_its_line(text: str, line: int, detail: str) -> None:
    issue = one_issue(text)
    assert (issue.file, issue.line, issue.node, issue.key) == (FILE, line, None, None)
    assert issue.message.startswith("invalid YAML: ")
    assert detail in issue.message


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing but a comment\n"])
def test_empty_file(text: str) -> None:
    assert one_issue(text) == ConfigIssue(FILE, 1, None, None, "the file is empty")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    assert one_issue(text) == ConfigIssue(FILE, 1, None, None, "the top level must be a mapping")


def test_unknown_yaml_tag_is_a_config_error() -> None:
    issue = one_issue("name: agent\npipeline:\n  nodes:\n    - {name: a, type: !proc echo}\n")
    assert (issue.line, issue.message.startswith("invalid YAML")) == (4, True)


def test_yaml_merge_keys() -> None:
    dep = parse(
        """\
        name: agent
        pipeline:
          nodes:
            - &quiet {name: vad, type: energy_vad, params: {threshold_dbfs: -45}}
            - <<: *quiet
              name: vad2
        """
    )
    assert list(dep.graph.nodes) == ["vad", "vad2"]
    assert dep.graph.nodes["vad2"].factory().params.threshold_dbfs == -45


def test_problems_from_every_phase_are_reported_in_one_run() -> None:
    # a schema problem elsewhere does not hide the node-level ones, and the lines stay right
    # even though the invalid node in between is left out of the node checks
    issues = issues_of(
        """\
        name: agent
        colour: blue
        pipeline:
          nodes:
            - {name: vad, type: energy_vad, params: {stop_ms: 5}}
            - {name: broken}
            - {name: bot, type: no_such_type}
        """
    )
    assert where(issues) == {
        (FILE, 2, None, "colour"),
        (FILE, 6, "broken", "type"),
        (FILE, 5, "vad", "params.stop_ms"),
        (FILE, 7, "bot", "type"),
    }
