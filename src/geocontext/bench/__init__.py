"""Benchmarks: each compares our path with a baseline on the same data and machine, in the same run."""
