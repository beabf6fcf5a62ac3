"""Benchmarks for onnxc (see README.md)."""
