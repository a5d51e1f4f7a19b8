"""Conformance runs: each plugin against its kind's suite from troy.testing.

A package so its test modules may share basenames with plugin-specific tests in
tests/unit/ and tests/integration/.
"""
