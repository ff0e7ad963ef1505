"""Benchmarks for callweaver (not part of the installed package)."""
