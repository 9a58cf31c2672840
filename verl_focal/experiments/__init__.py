"""Experiments built on the package: apps, never imported by the algorithm."""
