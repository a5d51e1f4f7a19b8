"""troy's plugin kinds; each folder holds a contract (base.py) and the built-ins."""
