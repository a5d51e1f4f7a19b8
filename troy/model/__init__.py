"""troy's shared vocabulary: states, errors, descriptions, the coordination layout.

The leaf of troy's layers: it imports nothing else of troy, and everything
else (plugins, agent, core, api, cli) may import it.  See docs/architecture.md.
"""
