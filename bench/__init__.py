"""Benchmarks: `python -m bench.run` (or `make bench`). See bench/run.py for what one run measures."""
