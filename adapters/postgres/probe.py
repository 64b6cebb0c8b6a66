"""Health probe: can we get a pooled connection and run a trivial query, quickly?"""

from __future__ import annotations

import asyncio

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.errors import DependencyUnavailable


@attrs.define
class PostgresProbe:
    """``SELECT 1`` through the service's own pool, so a full pool shows up as unhealthy too."""

    engine: AsyncEngine
    name: str = "postgres"
    required: bool = True
    timeout: float = 2.0

    async def check(self) -> None:
        try:
            async with asyncio.timeout(self.timeout), self.engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except DependencyUnavailable:
            raise
        except TimeoutError as error:
            raise DependencyUnavailable(f"{self.name}: no answer within {self.timeout:g} s") from error
        except Exception as error:
            raise DependencyUnavailable(f"{self.name}: {type(error).__name__}: {error}") from error
