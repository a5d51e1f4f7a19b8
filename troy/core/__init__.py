"""The manager side: plugin registry, pilot and unit managers, event hooks, journal."""
