"""troy-demo: one troy plugin of each kind, registered through entry points.

- backend ``nice`` (`troy_demo.backend.NiceBackend`)
- scheduler ``fewest_units`` (`troy_demo.scheduler.FewestUnitsScheduler`)
- store ``memory`` (`troy_demo.store.MemoryStore`)
- coordination ``memory`` (`troy_demo.coordination.MemoryCoordination`)
- launcher ``mpiexec`` (`troy_demo.launcher.MpiexecLauncher`)
- observer ``counter`` (the module `troy_demo.observer`)

Nothing is imported here: troy loads each plugin by its entry point.
"""

__version__ = "0.1.0"
