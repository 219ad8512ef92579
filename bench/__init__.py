"""Benchmarks (measurements, never assertions): ``python -m bench`` or ``make bench``."""
