"""Benchmarks behind `make bench` (figures in BENCHMARKS.md). Not part of the kit's data path."""
