"""Unit tests: pure logic, no services, no agents or pilots started; fast.

A package so its test modules may share basenames with those in the other layers.
"""
