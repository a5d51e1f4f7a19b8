"""troy-lpt: the ``longest_first`` scheduler, a complete troy scheduler package."""
