"""Benchmarks: cold start and throughput of a kshop function against two baselines."""
