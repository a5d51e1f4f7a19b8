"""Stores hold Pilot-Data: the files of data units (entry points: troy.stores)."""
