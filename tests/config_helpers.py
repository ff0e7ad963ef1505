"""Helpers shared by the config tests: parse dedented YAML with built-ins only and a
controlled environment, and collect the issues it reports."""

from __future__ import annotations

import textwrap

import pytest

from callweaver.errors import ConfigError, ConfigIssue
from callweaver.pipelines.config import Deployment, parse_config
from callweaver.pipelines.registry import BUILTINS, Registry

FILE = "agent.yaml"


def parse(text: str, env: dict[str, str] | None = None) -> Deployment:
    """Parse a dedented config with built-ins only and a controlled environment."""
    return parse_config(textwrap.dedent(text), FILE, Registry(BUILTINS), env or {})


def issues_of(text: str, env: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    assert str(info.value) == "\n".join(str(i) for i in info.value.issues)
    return info.value.issues


def where(issues: list[ConfigIssue]) -> set[tuple[str, int | None, str | None, str | None]]:
    return {(i.file, i.line, i.node, i.key) for i in issues}


def one_issue(text: str, env: dict[str, str] | None = None) -> ConfigIssue:
    issues = issues_of(text, env)
    assert len(issues) == 1, issues
    return issues[0]
