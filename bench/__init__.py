"""Benchmarks: each `bench_*.py` module is runnable as `python -m bench.<name>` and writes its section of
`bench/RESULTS.md` through `bench.harness`."""
