"""Benchmarks of every hot path against its physical limit; run with `make bench`."""
