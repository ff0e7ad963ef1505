"""Audio codecs: pure functions and small stateful objects on PCM bytes, no I/O, no frames.

``mulaw`` is G.711 mu-law <-> PCM16, ``resample`` converts sample rates stream by stream,
``levels`` measures loudness. Audio is mono PCM16 little-endian ``bytes`` throughout. This
package sits beside ``frames`` at the bottom of the layering: it imports nothing of callweaver
but ``callweaver.errors``, so every layer above may use it.
"""

from callweaver.audio.levels import level_dbfs
from callweaver.audio.mulaw import pcm16_to_ulaw, ulaw_to_pcm16
from callweaver.audio.resample import Resampler, resample

__all__ = [
    "Resampler",
    "level_dbfs",
    "pcm16_to_ulaw",
    "resample",
    "ulaw_to_pcm16",
]
