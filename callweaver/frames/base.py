"""The base of every frame: an immutable value that flows through a call.

Urgency and handling are class attributes, not mixins, so the runtime reads them with one
attribute lookup per frame:

- ``system``: the frame overtakes queued data (it goes to the inbox's system lane).
- ``control``: the frame steers the actors themselves (start, end, cancel, interrupt); pure
  transforms pass it through untouched.
- ``interruptible``: the frame belongs to a bot reply and is dropped when its turn is interrupted.
- ``lossy``: the frame may be dropped when an inbox overflows (real-time caller audio).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """A value passed between processors.

    ``call_id`` and ``turn_id`` say which call and which conversational turn the frame belongs
    to; ``ts_ns`` is when it was made, on the call's monotonic clock. Derive changed copies with
    :func:`dataclasses.replace`.
    """

    system: ClassVar[bool] = False
    control: ClassVar[bool] = False
    interruptible: ClassVar[bool] = False
    lossy: ClassVar[bool] = False

    call_id: str = ""
    turn_id: int = 0
    ts_ns: int = 0
