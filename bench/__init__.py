"""Benchmarks: an IRC load generator (``bench.loadgen``) and scenarios (``bench.run``).

Importing this package does nothing; see bench/README.md for usage.
"""
