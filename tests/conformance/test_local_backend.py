"""The local backend runs the backend conformance suite, by scheme and by name."""

import pytest

from troy.testing.backends import BackendSuite


class TestLocalBackendByScheme(BackendSuite):
    @pytest.fixture
    def backend_rm(self) -> str:
        return "fork://localhost"


class TestLocalBackendByName(BackendSuite):
    @pytest.fixture
    def backend_rm(self) -> str:
        return "local://"

    @pytest.fixture
    def backend_pj_type(self) -> str:
        return "local"
