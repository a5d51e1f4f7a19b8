"""The redis coordination plugin: the coordination conformance suite, on a real Redis server."""

import uuid

import pytest
from redis_fixtures import RedisServer, redis_server  # noqa: F401 - a fixture

from troy.plugins.coordination.base import Coordination
from troy.plugins.coordination.redis import RedisCoordination
from troy.testing.coordination import ClaimedCount, CoordinationSuite

pytestmark = pytest.mark.redis


class TestRedisCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, redis_server: RedisServer) -> str:  # noqa: F811
        # One server for the session; each test under a prefix of its own.
        return f"{redis_server.url}?prefix=conformance-{uuid.uuid4().hex[:12]}&retry=5"

    @pytest.fixture
    def claimed_count(self) -> ClaimedCount:
        def count(coordination: Coordination, queue: str, claimer: str) -> int:
            assert isinstance(coordination, RedisCoordination)
            key = f"{coordination.prefix}:claimed:{queue}:{claimer}"
            return sum(1 for item in coordination._client.lrange(key, 0, -1) if item)

        return count
