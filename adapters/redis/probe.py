"""``RedisProbe``: PING; optional by default (without Redis the service is slower, not down)."""

from __future__ import annotations

import attrs
import redis.asyncio as aioredis


@attrs.define
class RedisProbe:
    """A DependencyProbe that raises whatever redis-py raises when PING does not answer PONG."""

    client: aioredis.Redis
    name: str = "redis"
    required: bool = False

    async def check(self) -> None:
        if not await self.client.ping():
            raise ConnectionError("redis did not answer PING")
