"""The depth of aiortc's inbound audio jitter buffer.

aiortc releases an audio frame only once ``prefetch`` later frames have arrived behind it,
and fixes ``prefetch`` at 4 (80 ms of opus frames). A player needs that cushion to play
evenly; callweaver does not play the caller's audio, it feeds it to the VAD and STT as it
arrives, and a late packet only delays what follows it (frames are released in order, never
dropped for lateness). So the extra depth is pure delay on every turn: the end of the
caller's speech reaches the VAD 60 ms later than it could. :func:`shallow_jitter_buffers`
sets the depth to one frame, the least aiortc can do (a frame is complete when the next one
arrives).

aiortc offers no setting for this; the buffer is a private attribute of each
``RTCRtpReceiver``, so this module is pinned to aiortc's layout (aiortc==1.16.0, the
``webrtc`` extra) and a test checks it still applies.
"""

from __future__ import annotations

import logging

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer

log = logging.getLogger("callweaver.transports.webrtc")

_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"
_CAPACITY = 16  # aiortc's own for audio: 320 ms of reordering room


def shallow_jitter_buffers(pc: RTCPeerConnection) -> int:
    """Give every audio receiver of ``pc`` a one-frame-deep buffer; returns how many were
    changed. Call it after the remote description is set, before media flows."""
    changed = 0
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if transceiver.kind != "audio":
            continue
        current = getattr(receiver, _ATTRIBUTE, None)
        if not isinstance(current, JitterBuffer):
            log.warning("aiortc's receiver layout changed: the jitter buffer keeps its depth")
            continue
        setattr(receiver, _ATTRIBUTE, JitterBuffer(capacity=_CAPACITY, prefetch=1))
        changed += 1
    return changed
