"""Shim for tools that still run setup.py; pyproject.toml is the source of truth."""

from setuptools import setup

setup()
