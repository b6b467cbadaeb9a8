"""Benchmarks for portalsite: `python -m bench` prints one table of figures (see bench/README.md)."""
