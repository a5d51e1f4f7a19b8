"""Launchers wrap a unit's argv for parallel launch: srun, mpirun (entry points: troy.launchers)."""
