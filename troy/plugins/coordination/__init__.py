"""Coordination: the durable channel between managers and agents (troy.coordination)."""
