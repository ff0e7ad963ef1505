"""The actor runtime: clocks, inboxes, the processor contract and the actor loop (and child
processes started without fork(): :mod:`callweaver.runtime.processes`).

Imports only :mod:`callweaver.frames` (and :mod:`callweaver.errors`); kept light so that
importing it costs little.
"""

from callweaver.runtime.actor import Actor, Policy, Route, Supervision
from callweaver.runtime.clock import Clock, MonotonicClock, VirtualClock
from callweaver.runtime.context import CallContext
from callweaver.runtime.inbox import Inbox
from callweaver.runtime.latency import Stage, TurnLatency
from callweaver.runtime.processor import NoParams, Processor, Transform

__all__ = [
    "Actor",
    "CallContext",
    "Clock",
    "Inbox",
    "MonotonicClock",
    "NoParams",
    "Policy",
    "Processor",
    "Route",
    "Stage",
    "Supervision",
    "Transform",
    "TurnLatency",
    "VirtualClock",
]
