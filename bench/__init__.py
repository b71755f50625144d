"""Benchmarks (not tests): `python -m bench <name>` prints its figures and writes them to bench/results/."""
