"""Schedulers place work units on pilots (entry points: troy.schedulers)."""
