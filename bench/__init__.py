"""Lamina's benchmarks: `bench/run.py` (Lamina against its peers), `core.py`, `sandbox.py`.

A package so that the tests can import the pure parts (`bench.wrk`, `bench.report`); the
scripts still run on their own.
"""
