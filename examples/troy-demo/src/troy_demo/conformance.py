"""What troy's conformance suites need to reach troy-demo's plugins.

Declared under the entry-point group ``troy.conformance`` (see pyproject.toml),
so ``troy plugins --check store.memory --suite`` runs the store suite on
`MemoryStore`; ``tests/test_conformance.py`` uses the same classes.  The
scheduler and launcher suites need only the entry-point name, which troy
gives, so those two plugins declare nothing.
"""

from pathlib import Path

import pytest


class NiceBackendFixtures:
    # The pilots' agents are other processes: they coordinate through the
    # suite's default file:// directory, not through the memory plugin.
    @pytest.fixture
    def backend_rm(self) -> str:
        return "fork://localhost"

    @pytest.fixture
    def backend_pj_type(self) -> str | None:
        return "nice"


class MemoryStoreFixtures:
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"memory://{tmp_path.name}"


class MemoryCoordinationFixtures:
    @pytest.fixture
    def coordination_url(self, tmp_path: Path) -> str:
        return f"memory://{tmp_path.name}"
