"""Scheduling research: workloads, a discrete-event simulation that drives troy's scheduler plugins.

The same scheduler plugin class places units in a real run and in a
simulation: it sees only plain values (troy.plugins.schedulers.base), so the
simulation hands it the same `UnitRequest`s and `PilotOffer`s on the same
events (units arrive, a unit ends, a pilot changes, a timer it asked for).
"""
