"""Backends launch a pilot's agent on a resource and track it (entry points: troy.backends)."""
