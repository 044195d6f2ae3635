"""Generated competitions and type-tag data for the demo, tests and benchmarks (never real results)."""
