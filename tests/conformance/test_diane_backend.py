"""The diane backend (late-binding workers) runs the backend conformance suite."""

import pytest

from troy.testing.backends import BackendSuite


class TestDianeBackend(BackendSuite):
    @pytest.fixture
    def backend_rm(self) -> str:
        return "fork://localhost"

    @pytest.fixture
    def backend_pj_type(self) -> str:
        return "diane"
