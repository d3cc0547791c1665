"""The servers the benchmarks start, one module per contender."""
