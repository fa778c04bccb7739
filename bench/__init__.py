"""Latency and throughput benchmarks (`make bench`)."""
