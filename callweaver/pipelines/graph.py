"""A call's topology: nodes (processor factories) joined by edges between named ports.

``input`` and ``output`` are reserved node names: the call's transport feeds ``input`` and
receives whatever reaches ``output``. Without explicit edges a graph is a linear chain
``input -> nodes[0] -> ... -> nodes[-1] -> output``.

A graph is checked once, when it is built, for everything that would stop a call from running
or from draining: edges to missing nodes or ports, unconnected ports, nodes that input cannot
reach (they would never see end of stream), cycles, and an output nobody reaches.

Fusion: a :class:`~callweaver.runtime.processor.Transform` node whose only input is one port
that leads nowhere else runs inside the actor upstream of it (no queue hop, no task).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from callweaver.errors import GraphError
from callweaver.runtime.actor import ProcessorFactory, Supervision
from callweaver.runtime.inbox import Overflow
from callweaver.runtime.processor import Processor, Transform

INPUT = "input"
OUTPUT = "output"
RESERVED = frozenset({INPUT, OUTPUT})


@dataclass(frozen=True, slots=True)
class Node:
    """One processor of the graph and how its actor runs."""

    name: str
    factory: ProcessorFactory
    ports: tuple[str, ...] = ("out",)
    fusible: bool = False
    supervision: Supervision = field(default_factory=Supervision)
    inbox_capacity: int = 256
    overflow: Overflow = "drop_oldest"

    @classmethod
    def of(
        cls,
        name: str,
        processor: type[Processor],
        params: Any = None,
        *,
        fuse: bool = True,
        **options: Any,
    ) -> Node:
        """A node from a processor class (and its params), reading ports and fusibility off
        the class."""
        factory: ProcessorFactory = functools.partial(processor, params)
        fusible = fuse and issubclass(processor, Transform) and processor.fusible
        return cls(name, factory, ports=processor.ports, fusible=fusible, **options)


@dataclass(frozen=True, slots=True)
class Edge:
    """``src.port -> dst``."""

    src: str
    port: str
    dst: str

    @classmethod
    def parse(cls, text: str) -> Edge:
        """Parse ``"a -> b"`` or ``"a.port -> b"``."""
        left, arrow, right = text.partition("->")
        if not arrow or not left.strip() or not right.strip():
            raise ValueError(f"edge must read 'node[.port] -> node', got {text!r}")
        src, _, port = left.strip().partition(".")
        return cls(src, port or "out", right.strip())

    def __str__(self) -> str:
        return f"{self.src}.{self.port} -> {self.dst}"


@dataclass(frozen=True, slots=True)
class GraphProblem:
    """Why a graph cannot run; ``edge`` is the index of the offending edge and ``index`` that of
    the offending node in the ``nodes`` given to :func:`check`, if any."""

    message: str
    node: str | None = None
    edge: int | None = None
    index: int | None = None


class Graph:
    """A validated topology; :class:`~callweaver.pipelines.call.Call` instantiates it per call."""

    __slots__ = ("edges", "fused", "name", "nodes")

    def __init__(
        self, nodes: Sequence[Node], edges: Sequence[Edge] | None = None, *, name: str = ""
    ) -> None:
        """``name``: the deployment's (a call's context carries it: cache keys use it)."""
        if edges is None:
            edges = linear_edges([n.name for n in nodes])
        problems = check(nodes, edges)
        if problems:
            raise GraphError("; ".join(p.message for p in problems))
        self.name = name
        self.nodes: dict[str, Node] = {n.name: n for n in nodes}
        self.edges: tuple[Edge, ...] = tuple(edges)
        self.fused: frozenset[str] = _fusion_plan(self.nodes, self.edges)

    def part(self, names: Sequence[str]) -> Graph:
        """The graph of the nodes ``names`` alone (ConversationRelay runs the part from the
        transcript to the reply text): input feeds the first, their edges are kept, and an
        edge that leads out of them leads to output (a cache's ``hit`` port too)."""
        edges = [Edge(INPUT, "out", names[0])]
        for e in self.edges:
            if e.src in names:
                edge = Edge(e.src, e.port, e.dst if e.dst in names else OUTPUT)
                if edge not in edges:
                    edges.append(edge)
        return Graph([self.nodes[n] for n in names], edges, name=self.name)

    def targets(self, src: str, port: str) -> list[str]:
        return [e.dst for e in self.edges if e.src == src and e.port == port]


def linear_edges(names: Sequence[str]) -> list[Edge]:
    chain = [INPUT, *names, OUTPUT]
    return [Edge(a, "out", b) for a, b in itertools.pairwise(chain)]


def check(nodes: Sequence[Node], edges: Sequence[Edge]) -> list[GraphProblem]:
    """Every reason the graph cannot run or drain, all at once."""
    problems: list[GraphProblem] = []
    by_name: dict[str, Node] = {}
    for i, node in enumerate(nodes):
        if node.name in RESERVED:
            problems.append(
                GraphProblem(f"node name {node.name!r} is reserved", node.name, index=i)
            )
        elif node.name in by_name:
            problems.append(GraphProblem(f"duplicate node name {node.name!r}", node.name, index=i))
        by_name[node.name] = node
    ports = {name: set(n.ports) for name, n in by_name.items()}
    ports[INPUT] = {"out"}
    succ: dict[str, set[str]] = {name: set() for name in [*by_name, INPUT, OUTPUT]}
    used: set[tuple[str, str]] = set()
    for i, e in enumerate(edges):
        ok = True
        if e.src == OUTPUT or (e.src not in by_name and e.src != INPUT):
            problems.append(GraphProblem(f"edge {e}: no node {e.src!r} to start from", edge=i))
            ok = False
        elif e.port not in ports[e.src]:
            have = ", ".join(sorted(ports[e.src])) or "none"
            problems.append(
                GraphProblem(
                    f"edge {e}: node {e.src!r} has no port {e.port!r} (ports: {have})",
                    e.src,
                    i,
                )
            )
            ok = False
        if e.dst == INPUT or (e.dst not in by_name and e.dst != OUTPUT):
            problems.append(GraphProblem(f"edge {e}: no node {e.dst!r} to lead to", edge=i))
            ok = False
        if ok:
            succ[e.src].add(e.dst)
            used.add((e.src, e.port))
    for name, node in by_name.items():
        for port in node.ports:
            if (name, port) not in used:
                problems.append(
                    GraphProblem(
                        f"port {port!r} of node {name!r} leads nowhere: its frames would be lost",
                        name,
                    )
                )
    reached = _reach(INPUT, succ)
    for name in by_name:
        if name not in reached:
            problems.append(
                GraphProblem(
                    f"node {name!r} is not reachable from input: it would never see the end "
                    "of the call, so the call could not drain",
                    name,
                )
            )
    if OUTPUT not in reached:
        problems.append(GraphProblem("no path from input to output"))
    cycle = _find_cycle(succ)
    if cycle:
        problems.append(
            GraphProblem(
                "cycle " + " -> ".join(cycle) + ": end of stream could never get through it",
                cycle[0],
            )
        )
    return problems


def _reach(start: str, succ: dict[str, set[str]]) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for nxt in succ[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _find_cycle(succ: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(succ[n]):
            if state.get(m) == 1:
                return [*path[path.index(m) :], m]
            if m not in state and (found := visit(m)):
                return found
        path.pop()
        state[n] = 2
        return None

    for n in sorted(succ):
        if n not in state and (found := visit(n)):
            return found
    return None


def _fusion_plan(nodes: dict[str, Node], edges: Iterable[Edge]) -> frozenset[str]:
    edges = list(edges)
    fused = set()
    for name, node in nodes.items():
        if not node.fusible:
            continue
        incoming = [e for e in edges if e.dst == name]
        if len(incoming) != 1:
            continue
        e = incoming[0]
        siblings = [x for x in edges if x.src == e.src and x.port == e.port]
        if len(siblings) == 1:
            fused.add(name)
    return frozenset(fused)
