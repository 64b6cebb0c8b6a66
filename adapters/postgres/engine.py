"""The async SQLAlchemy engine on asyncpg, tuned so that an unreachable database is reported in seconds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from domain.errors import DependencyUnavailable

_POSTGRES_SCHEMES = {
    "postgres",
    "postgresql",
    "postgresql+asyncpg",
    "postgresql+psycopg2",
    "postgresql+psycopg",
}


def asyncpg_url(url: str) -> URL:
    """``postgres://`` / ``postgresql://`` (what operators and Heroku-style platforms hand out) -> asyncpg."""
    parsed = make_url(url)
    if parsed.drivername not in _POSTGRES_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    parsed = parsed.set(drivername="postgresql+asyncpg")
    # libpq spells it sslmode; asyncpg only knows ssl and would reject the unknown keyword.
    if "sslmode" in parsed.query:
        query = dict(parsed.query)
        query["ssl"] = query.pop("sslmode")
        parsed = parsed.set(query=query)
    return parsed


def libpq_url(url: str) -> str:
    """The URL as libpq-style clients read it (asyncpg's own ``connect``, psycopg for the queue):
    ``postgresql://…`` with ``sslmode`` kept as libpq spells it."""
    asyncpg_url(url)  # the same check the engine makes: a PostgreSQL URL, or ValueError
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(
    url: str,
    *,
    pool_size: int,
    max_overflow: int,
    connect_timeout: float = 3.0,
    command_timeout: float = 30.0,
    pool_timeout: float = 5.0,
    pre_ping: bool = True,
    autocommit: bool = False,
) -> AsyncEngine:
    """An engine whose every wait is bounded: connecting, checking out of the pool, and each statement.

    A failed connection attempt raises ``DependencyUnavailable`` naming the server (never the password), so
    callers see "PostgreSQL at host:port/db is unreachable" rather than a bare ``TimeoutError``.
    """
    target = asyncpg_url(url)
    engine = create_async_engine(
        target,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # With pre-ping a connection dropped by a restart is replaced before use, at one round trip per
        # checkout; without it, the first use of a dropped connection fails (the unit of work reports it as
        # DependencyUnavailable) and SQLAlchemy replaces the pool's stale connections.
        pool_pre_ping=pre_ping,
        connect_args={"timeout": connect_timeout, "command_timeout": command_timeout},
        # In autocommit there is no transaction to reset when a connection goes back to the pool.
        **({"isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None} if autocommit else {}),
    )
    where = f"{target.host or 'localhost'}:{target.port or 5432}/{target.database or ''}"

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect(dialect: Dialect, _record: object, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except TimeoutError as error:
            raise DependencyUnavailable(
                f"PostgreSQL at {where} is unreachable: no answer within {connect_timeout:g} s"
            ) from error
        except OSError as error:
            raise DependencyUnavailable(f"PostgreSQL at {where} is unreachable: {error}") from error

    return engine
