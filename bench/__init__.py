"""Benchmarks (speed, quality, latency); each writes its own section of bench/RESULTS.md."""
