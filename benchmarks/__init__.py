"""Benchmarks on the local sandbox (``make bench`` runs them all: ``python -m benchmarks``).

Each module has ``main(argv) -> int`` and writes its figures to ``artifacts/benchmarks/<module>.json``;
``python -m benchmarks.<module> --help`` lists its parameters.
"""
