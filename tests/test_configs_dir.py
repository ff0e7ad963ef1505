"""Every config shipped in configs/ validates, through the API and through the CLI.

configs/custom-processor.yaml needs the example plugin installed:
``pip install -e examples/custom_processor``.

Configs are checked as shipped: ``CALLWEAVER_*`` variables of the environment running the tests
are ignored so that the files' own defaults apply, and a variable a config requires without a
default (an API key, say) gets a placeholder when it is not set.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from callweaver.pipelines.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted([*ROOT.glob("configs/*.yaml"), *ROOT.glob("configs/*.yml")])
_REQUIRED_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def config_env(paths: list[Path]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWEAVER_")}
    for path in paths:
        for name in _REQUIRED_VAR.findall(path.read_text(encoding="utf-8")):
            env.setdefault(name, f"placeholder-{name.lower()}")
    return env


def validate(
    *paths: Path | str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``callweaver validate`` as a user would, in a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "callweaver.cli", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env if env is not None else config_env([]),
        timeout=60,
        check=False,
    )


def test_configs_are_found() -> None:
    names = [p.name for p in CONFIGS]
    assert "default.yaml" in names
    assert "custom-processor.yaml" in names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_validates(path: Path) -> None:
    dep = load_config(path, env=config_env([path]))
    assert dep.path == str(path)
    assert dep.config.name
    assert dep.graph.nodes, "a shipped config has at least one node"


def test_cli_validates_every_config() -> None:
    result = validate(*CONFIGS, env=config_env(CONFIGS))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(CONFIGS)
    for path, line in zip(CONFIGS, lines, strict=True):
        assert line.startswith(f"{path}: OK (")


BROKEN = """\
name: broken
server:
  port: 99999
pipeline:
  nodes:
    - name: vad
      type: energy_vad
      params:
        stop_ms: 5
    - name: bot
      type: parrot
    - {name: louder, type: passthrough, params: {gain_db: 6}}
"""


def test_cli_reports_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")
    result = validate(broken)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    # a schema problem does not hide the node problems: one run reports everything
    assert lines[:3] == [
        f"{broken}: 4 problem(s)",
        f"  {broken}:3: key 'server.port': Input should be less than or equal to 65535",
        f"  {broken}:9: node 'vad': key 'params.stop_ms': Input should be greater than or equal "
        "to 20",
    ]
    assert lines[3].startswith(f"  {broken}:11: node 'bot': key 'type': unknown node type 'parrot'")
    assert (
        lines[4]
        == f"  {broken}:12: node 'louder': key 'params.gain_db': this node type takes no params"
    )


def test_cli_reports_every_node_problem_with_file_line_node_and_key(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN.replace("  port: 99999", "  port: 9999"), encoding="utf-8")
    result = validate(broken)

    assert result.returncode == 1
    err = result.stderr.splitlines()
    assert err[0] == f"{broken}: 3 problem(s)"
    assert err[1] == (
        f"  {broken}:9: node 'vad': key 'params.stop_ms': "
        "Input should be greater than or equal to 20"
    )
    assert err[2].startswith(f"  {broken}:11: node 'bot': key 'type': unknown node type 'parrot'")
    assert err[3] == (
        f"  {broken}:12: node 'louder': key 'params.gain_db': this node type takes no params"
    )
    assert len(err) == 4


def test_cli_checks_every_file_and_fails_if_any_fails(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        textwrap.dedent(
            """\
            name: broken
            pipeline:
              nodes: [{name: bot, type: echo}]
              edges: [input -> bot, bot -> speaker]
            """
        ),
        encoding="utf-8",
    )
    missing = tmp_path / "missing.yaml"
    default = ROOT / "configs" / "default.yaml"
    result = validate(default, broken, missing)

    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{default}: OK (parrot: 2 nodes, 3 edges)"]
    err = result.stderr.splitlines()
    assert err[0] == f"{broken}: 3 problem(s)"
    assert (
        f"  {broken}:4: key 'pipeline.edges.1': edge bot.out -> speaker: no node 'speaker' "
        "to lead to"
    ) in err[1:4]
    assert err[-2] == f"{missing}: 1 problem(s)"
    assert err[-1].startswith(f"  {missing}: cannot read: ")
    assert "No such file or directory" in err[-1]


def test_cli_reports_a_missing_env_var(tmp_path: Path) -> None:
    config = tmp_path / "needs-key.yaml"
    config.write_text(
        "name: keyed\ndescription: key ${CALLWEAVER_TEST_API_KEY}\npipeline: {}\n",
        encoding="utf-8",
    )
    env = config_env([])
    env.pop("CALLWEAVER_TEST_API_KEY", None)
    result = validate(config, env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines()[1] == (
        f"  {config}:2: key 'description': "
        "environment variable CALLWEAVER_TEST_API_KEY is not set (no default given)"
    )

    result = validate(config, env={**env, "CALLWEAVER_TEST_API_KEY": "sk-test"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{config}: OK (keyed: 0 nodes, 1 edges)\n"


def test_the_production_config_names_each_missing_credential() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ELEVENLABS_",
           "TWILIO_", "GOOGLE_", "CALLWEAVER_"))}  # fmt: skip
    res = validate(ROOT / "configs" / "twilio-azure.yaml", env=env)
    assert res.returncode != 0
    for name in ("TWILIO_AUTH_TOKEN", "AZURE_SPEECH_KEY", "AZURE_OPENAI_KEY",
                 "ELEVENLABS_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"):  # fmt: skip
        assert f"environment variable {name} is not set" in res.stdout + res.stderr
    assert "placeholder" not in res.stdout  # no value is ever printed
