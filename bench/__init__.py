"""Benchmarks: each script prints the figures an issue asks for (see docs/speed.md)."""
