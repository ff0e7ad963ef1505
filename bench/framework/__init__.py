"""Framework benchmark: the same drivers run callweaver and other frameworks.

See ``measure.py`` for the adapter protocol and ``__main__.py`` for the CLI.
"""
