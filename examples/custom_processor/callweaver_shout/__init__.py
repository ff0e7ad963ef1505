"""Example callweaver processors, shipped as a plugin package.

Installing this package registers two node types through the ``callweaver.processors`` entry
point group (see ``pyproject.toml``):

- ``shout``: :class:`~callweaver_shout.processors.Shout` upper-cases the bot's reply text;
- ``gain``: :class:`~callweaver_shout.processors.Gain` scales the bot's reply audio by
  ``gain_db``.
"""

from callweaver_shout.processors import Gain, GainParams, Shout, scale_pcm16

__all__ = ["Gain", "GainParams", "Shout", "scale_pcm16"]
