"""The redis coordination plugin: the coordination conformance suite, on a real Redis server."""

import uuid

import pytest
from redis_fixtures import (  # noqa: F401 - fixtures
    TLS_PREFIX,
    RedisServer,
    TlsRedisServer,
    redis_server,
    redis_tls_server,
)

from troy.plugins.coordination.base import Coordination
from troy.plugins.coordination.redis import RedisCoordination
from troy.testing.coordination import ClaimedCount, CoordinationSuite

pytestmark = pytest.mark.redis


def _count_claimed(coordination: Coordination, queue: str, claimer: str) -> int:
    assert isinstance(coordination, RedisCoordination)
    key = f"{coordination.prefix}:claimed:{queue}:{claimer}"
    return sum(1 for item in coordination._client.lrange(key, 0, -1) if item)


class TestRedisCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, redis_server: RedisServer) -> str:  # noqa: F811
        # One server for the session; each test under a prefix of its own.
        return f"{redis_server.url}?prefix=conformance-{uuid.uuid4().hex[:12]}&retry=5"

    @pytest.fixture
    def claimed_count(self) -> ClaimedCount:
        return _count_claimed


class TestRedisCoordinationOverTlsWithAuth(CoordinationSuite):
    """The same over TLS (a client certificate too), as an ACL user whose keys are limited
    to a pattern and who may run no @dangerous command."""

    @pytest.fixture
    def coordination_url(self, redis_tls_server: TlsRedisServer) -> str:  # noqa: F811
        prefix = f"{TLS_PREFIX}conformance-{uuid.uuid4().hex[:12]}"
        return f"{redis_tls_server.url}&prefix={prefix}&retry=5"

    @pytest.fixture
    def claimed_count(self) -> ClaimedCount:
        return _count_claimed
