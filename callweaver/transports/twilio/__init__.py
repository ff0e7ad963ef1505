"""Twilio Media Streams (TwiML ``<Connect><Stream>``): the wire codec (:mod:`.wire`, pure, no
dependencies) and the transport (:mod:`.media`: a call's ``CallIO`` over the WebSocket Twilio
opens; needs ``callweaver[server]``). The webhook and the WebSocket endpoint that use them
live in :mod:`callweaver.server.twilio`."""

from callweaver.transports.twilio.wire import WireError, parse

__all__ = ["WireError", "parse"]
