"""Integration tests: they start agents and pilots, or talk to real services (Redis,
sshd, SLURM, S3, ...); every test here is marked ``integration`` (tests/conftest.py).

A package so its test modules may share basenames with those in the other layers.
"""
