"""Deployment configs: YAML in, a validated :class:`Deployment` out, or every problem at once.

A config is checked completely before any call starts: YAML syntax, ``${ENV}`` /
``${ENV:-default}`` substitution (``$$`` is a literal ``$``), the schema below, each node's
type and params (through the :class:`~callweaver.pipelines.registry.Registry`), and the graph
(edges, ports, drainability). Every problem names the file, the line, the node and the key.

Shape::

    name: my-agent
    server: {host: 127.0.0.1, port: 8080, workers: 1}
    transports:
      file: {realtime: true, tail_ms: 600}
    pipeline:
      inbox: {capacity: 256, overflow: drop_oldest}   # default for every node
      nodes:
        - {name: vad, type: energy_vad, params: {stop_ms: 200}}
        - {name: bot, type: echo, on_error: restart}
      edges:                                          # optional: linear when absent
        - input -> vad
        - vad -> bot
        - bot -> output

Top-level keys that start with ``x-`` are ignored: a home for YAML anchors that several nodes
share (``x-store: &store {...}``, then ``store: *store``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from callweaver.errors import ConfigError, ConfigIssue, RegistryError
from callweaver.pipelines.graph import Edge, Graph, Node, check, linear_edges
from callweaver.pipelines.registry import ParamsError, Registry
from callweaver.runtime.actor import Policy, Supervision

_Strict = ConfigDict(extra="forbid")
_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class InboxConfig(BaseModel):
    model_config = _Strict

    capacity: int = Field(256, ge=1, le=100_000)
    overflow: Literal["drop_oldest", "block"] = "drop_oldest"


class NodeConfig(BaseModel):
    model_config = _Strict

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    type: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    on_error: Literal["restart", "skip", "end_call"] = "restart"
    max_restarts: int = Field(3, ge=0)
    inbox: InboxConfig | None = None
    fuse: bool = True


class PipelineConfig(BaseModel):
    model_config = _Strict

    inbox: InboxConfig = Field(default_factory=InboxConfig)
    nodes: list[NodeConfig] = Field(default_factory=list)
    edges: list[str] | None = None


class ServerConfig(BaseModel):
    model_config = _Strict

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1)


class FileTransportConfig(BaseModel):
    model_config = _Strict

    realtime: bool = True
    tail_ms: int = Field(600, ge=0, description="silence appended so the last turn can end")


class RelayLanguage(BaseModel):
    """A language ConversationRelay may switch to, with its voice and providers."""

    model_config = _Strict

    code: str = Field(min_length=2, description="BCP-47, e.g. es-ES")
    voice: str | None = None
    tts_provider: str | None = None
    transcription_provider: str | None = None


class RelayConfig(BaseModel):
    """Twilio ConversationRelay: Twilio does STT and TTS; ``nodes`` are the part of the
    pipeline that runs (from the transcript to the reply text, e.g. ``[bot]``)."""

    model_config = _Strict

    path: str = Field("/relay", pattern=r"^/[\w/-]*$")
    nodes: list[str] = Field(min_length=1, description="pipeline nodes run for relay calls")
    public_url: str | None = Field(None, description="https://host as Twilio reaches us")
    auth_token: SecretStr | None = None
    validate_signature: bool = True
    language: str = "en-US"
    voice: str | None = None
    tts_provider: str | None = None
    transcription_provider: str | None = None
    welcome_greeting: str | None = None
    interruptible: bool = True
    partial_prompts: bool = False
    languages: list[RelayLanguage] = Field(default_factory=list)
    parameters: dict[str, str] = Field(default_factory=dict)


class OutboundConfig(BaseModel):
    """Outbound calls through Twilio's REST API (``POST /calls``, ``callweaver call``)."""

    model_config = _Strict

    account_sid: str = Field(pattern=r"^AC\w+$")
    auth_token: SecretStr
    from_number: str = Field(description="the Twilio number calls come from (E.164)")
    voice_url: str = Field(description="this app's voice webhook, as Twilio reaches it")
    api_base: str = Field("https://api.twilio.com", description="Twilio's REST API")


class TwilioConfig(BaseModel):
    """Twilio Media Streams: ``POST {path}/voice`` answers Twilio's webhook with TwiML that
    connects the call to the WebSocket ``{path}/stream``."""

    model_config = _Strict

    path: str = Field("/twilio", pattern=r"^(/[A-Za-z0-9._~-]+)+$")
    public_url: str | None = Field(
        None,
        pattern=r"^(https?|wss?)://[^/?#\s]+(/[^?#\s]*)?$",
        description="the base URL Twilio reaches this app at (behind a proxy or tunnel); "
        "default: the request's Host header",
    )
    auth_token: SecretStr | None = Field(None, description="use ${TWILIO_AUTH_TOKEN}")
    validate_signature: bool = True
    parameters: dict[str, str] = Field(
        default_factory=dict, description="<Parameter>s of the stream, besides From/To/CallSid"
    )
    max_buffer_ms: int = Field(
        300, ge=20, le=10_000, description="reply audio sent ahead of what Twilio has played"
    )

    @model_validator(mode="after")
    def _token_if_validating(self) -> TwilioConfig:
        if self.validate_signature and not (self.auth_token and self.auth_token.get_secret_value()):
            raise ValueError(
                "validate_signature needs auth_token (auth_token: ${TWILIO_AUTH_TOKEN}), "
                "or set validate_signature: false"
            )
        return self


class WebRTCConfig(BaseModel):
    """WebRTC from a browser: ``GET {path}`` serves the call page, ``POST {path}/offer``
    answers its offer (callweaver is the answerer)."""

    model_config = _Strict

    path: str = Field("/webrtc", pattern=r"^(/[A-Za-z0-9._~-]+)+$")
    page: bool = Field(True, description="serve the call page at {path}")
    ice_addresses: list[str] | None = Field(
        None,
        description="local addresses ICE offers to browsers; [127.0.0.1] for a browser on "
        "this machine with no other route; default: every interface but loopback",
    )
    ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN servers for a server behind NAT, as stun:host:port",
    )
    max_buffer_ms: int = Field(
        300, ge=20, le=10_000, description="reply audio queued ahead of the outgoing track"
    )
    connect_timeout_s: float = Field(
        15.0, gt=0, le=120, description="an answered call that does not connect ends"
    )

    @field_validator("ice_addresses")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        for address in value or ():
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address") from None
        return value

    @field_validator("ice_servers")
    @classmethod
    def _stun(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.fullmatch(r"stuns?:[^\s:/?#]+(:\d+)?", url):
                raise ValueError(f"{url!r} is not a STUN URL (stun:host:port)")
        return value


class TransportsConfig(BaseModel):
    model_config = _Strict

    file: FileTransportConfig = Field(default_factory=FileTransportConfig)
    twilio: TwilioConfig | None = None
    relay: RelayConfig | None = None
    outbound: OutboundConfig | None = None
    webrtc: WebRTCConfig | None = None


class DeploymentConfig(BaseModel):
    model_config = _Strict

    name: str = Field(min_length=1)
    description: str = ""
    server: ServerConfig = Field(default_factory=ServerConfig)
    transports: TransportsConfig = Field(default_factory=TransportsConfig)
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    pipeline: PipelineConfig

    @model_validator(mode="after")
    def _relay_nodes_exist(self) -> DeploymentConfig:
        relay = self.transports.relay
        if relay is not None:
            known = {n.name for n in self.pipeline.nodes}
            missing = [n for n in relay.nodes if n not in known]
            if missing:
                raise ValueError(f"transports.relay.nodes: no pipeline node named {missing}")
        return self


@dataclass(frozen=True, slots=True)
class Deployment:
    """A validated config and the graph built from it."""

    path: str
    config: DeploymentConfig
    graph: Graph


Path_ = tuple[str | int, ...]


class _Reader:
    """Turns a YAML node tree into plain data, substituting env vars and remembering lines."""

    def __init__(self, file: str, env: Mapping[str, str]) -> None:
        self.file = file
        self.env = env
        self.lines: dict[Path_, int] = {}
        self.problems: list[tuple[Path_, int, str]] = []
        self._constructor = yaml.SafeLoader("")

    def read(self, node: yaml.Node, path: Path_ = ()) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            # `<<: *anchor` merge keys: flatten_mapping puts the merged entries first, so that
            # the mapping's own entries override them.
            own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
            self._constructor.flatten_mapping(node)
            merged = len(node.value) - own
            out: dict[str, Any] = {}
            own_keys: set[str] = set()
            for i, (key_node, value_node) in enumerate(node.value):
                key = str(self._constructor.construct_object(key_node))
                if i >= merged:
                    if key in own_keys:
                        self._issue((*path, key), f"duplicate key {key!r}", key_node)
                    own_keys.add(key)
                out[key] = self.read(value_node, (*path, key))
                # An entry is where its key is (a block value starts on the next line).
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self._constructor.construct_object(node)
        if isinstance(value, str) and "$" in value:
            return self._substitute(value, path, node)
        return value

    def _substitute(self, text: str, path: Path_, node: yaml.Node) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self._issue(path, f"environment variable {name} is not set (no default given)", node)
            return ""

        return _ENV.sub(one, text)

    def _issue(self, path: Path_, message: str, node: yaml.Node) -> None:
        self.problems.append((path, node.start_mark.line + 1, message))

    def issues(self, data: Any) -> list[ConfigIssue]:
        """The problems found while reading, named once node names are known."""
        return [
            ConfigIssue(self.file, line, _node_of(path, data), _key(path), message)
            for path, line, message in self.problems
        ]


def _node_of(path: Path_, data: Any) -> str | None:
    if len(path) >= 3 and path[:2] == ("pipeline", "nodes") and isinstance(path[2], int):
        try:
            name = data["pipeline"]["nodes"][path[2]]["name"]
        except (KeyError, IndexError, TypeError):
            return f"#{path[2] + 1}"
        return str(name)
    return None


def _key(path: Path_) -> str | None:
    rel = path[3:] if path[:2] == ("pipeline", "nodes") and len(path) >= 3 else path
    return ".".join(str(p) for p in rel) or None


def _line(lines: Mapping[Path_, int], path: Path_) -> int | None:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def load_config(
    path: str | Path,
    registry: Registry | None = None,
    env: Mapping[str, str] | None = None,
) -> Deployment:
    """Read, validate and build a deployment; raise :class:`ConfigError` with every issue."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(file, None, None, None, f"cannot read: {exc}")]) from exc
    return parse_config(text, file, registry, env)


def parse_config(
    text: str,
    file: str = "<config>",
    registry: Registry | None = None,
    env: Mapping[str, str] | None = None,
) -> Deployment:
    """Like :func:`load_config`, on YAML text."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigIssue(file, line, None, None, f"invalid YAML: {exc}")]) from None
    if root is None:
        raise ConfigError([ConfigIssue(file, 1, None, None, "the file is empty")])
    reader = _Reader(file, os.environ if env is None else env)
    try:
        data = reader.read(root)
    except yaml.YAMLError as exc:  # an unknown tag, a bad merge key...
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigIssue(file, line, None, None, f"invalid YAML: {exc}")]) from None
    issues = reader.issues(data)
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(file, 1, None, None, "the top level must be a mapping")])

    def issue(path: Path_, message: str) -> None:
        issues.append(
            ConfigIssue(file, _line(reader.lines, path), _node_of(path, data), _key(path), message)
        )

    config: DeploymentConfig | None = None
    data = {k: v for k, v in data.items() if not str(k).startswith("x-")}  # anchors' home
    try:
        config = DeploymentConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            issue(tuple(err["loc"]), err["msg"])
    registry = registry or Registry.default()
    if config is None:
        # Still check every node that did validate, so one run reports everything it can.
        pipe, at, whole = _salvage_pipeline(data.get("pipeline"))
        if pipe is not None:
            _build_graph(pipe, registry, issue, check_graph=whole, indices=at)
        raise ConfigError(_in_file_order(issues))
    graph = _build_graph(config.pipeline, registry, issue, name=config.name)
    if issues or graph is None:
        raise ConfigError(_in_file_order(issues))
    return Deployment(file, config, graph)


def _in_file_order(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """Issues sorted by line (stable: same-line issues keep the order they were found in)."""
    return sorted(issues, key=lambda i: i.line if i.line is not None else 0)


def _salvage_pipeline(raw: Any) -> tuple[PipelineConfig | None, list[int], bool]:
    """The valid part of a pipeline section whose siblings (or parts) failed the schema: the
    nodes that validate, their positions in the file's list, and whether the whole section was
    valid (only then can the graph be checked too)."""
    if not isinstance(raw, dict):
        return None, [], False
    try:
        pipe = PipelineConfig.model_validate(raw)
        return pipe, list(range(len(pipe.nodes))), True
    except ValidationError:
        pass
    nodes = raw.get("nodes")
    valid: list[NodeConfig] = []
    positions: list[int] = []
    for i, item in enumerate(nodes if isinstance(nodes, list) else []):
        try:
            valid.append(NodeConfig.model_validate(item))
        except ValidationError:
            continue
        positions.append(i)
    return PipelineConfig(nodes=valid), positions, False


def _build_graph(
    pipe: PipelineConfig,
    registry: Registry,
    issue: Any,
    *,
    check_graph: bool = True,
    indices: list[int] | None = None,
    name: str = "",
) -> Graph | None:
    """Resolve types, validate params, parse edges and check the graph, reporting each problem
    through ``issue``; ``indices`` are the nodes' positions in the file when some were left out."""
    nodes: list[Node] = []
    ok = True
    for i, nc in enumerate(pipe.nodes):
        at: Path_ = ("pipeline", "nodes", indices[i] if indices is not None else i)
        try:
            cls = registry.resolve(nc.type)
        except RegistryError as exc:
            issue((*at, "type"), str(exc))
            ok = False
            continue
        try:
            params = registry.params(cls, nc.params)
        except ParamsError as exc:
            for key, message in exc.problems:
                sub = tuple(int(p) if p.isdigit() else p for p in key.split(".") if p)
                issue((*at, "params", *sub), message)
            ok = False
            continue
        inbox = nc.inbox or pipe.inbox
        supervision = Supervision(Policy(nc.on_error), max_restarts=nc.max_restarts)
        nodes.append(
            Node.of(
                nc.name,
                cls,
                params,
                fuse=nc.fuse,
                supervision=supervision,
                inbox_capacity=inbox.capacity,
                overflow=inbox.overflow,
            )
        )
    edges: list[Edge] = []
    if pipe.edges is None:
        # Each name once: a duplicate is reported as such, not also as a cycle name -> name.
        edges = linear_edges(list(dict.fromkeys(n.name for n in pipe.nodes)))
    else:
        for i, text in enumerate(pipe.edges):
            try:
                edges.append(Edge.parse(text))
            except ValueError as exc:
                issue(("pipeline", "edges", i), str(exc))
                ok = False
    if not ok or not check_graph:
        return None
    problems = check(nodes, edges)
    if problems:
        names = [n.name for n in pipe.nodes]
        for p in problems:
            if p.edge is not None and pipe.edges is not None:
                issue(("pipeline", "edges", p.edge), p.message)
            elif p.index is not None:
                issue(("pipeline", "nodes", p.index), p.message)
            elif p.node in names:
                issue(("pipeline", "nodes", names.index(p.node)), p.message)
            else:
                issue(("pipeline",), p.message)
        return None
    return Graph(nodes, edges, name=name)
