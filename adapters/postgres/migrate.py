"""Apply or revert the Alembic migrations from code (``opusclip migrate``, test fixtures, start-up jobs).

The migration environment runs its own event loop with ``asyncio.run``; called from a thread that already
runs a loop, the work moves to a short-lived thread so it never nests loops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; a database already there is left untouched."""
    _outside_event_loop(lambda: command.upgrade(alembic_config(database_url), revision))


def downgrade(database_url: str, revision: str = "base") -> None:
    """Revert to ``revision`` (``base`` drops every table the migrations created)."""
    _outside_event_loop(lambda: command.downgrade(alembic_config(database_url), revision))


def _outside_event_loop(work: Callable[[], None]) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        work()
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as error:  # re-raised in the caller's thread below
            errors.append(error)

    thread = threading.Thread(target=target, name="alembic-migrate")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
