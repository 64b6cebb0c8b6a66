"""``PostgresJobChanges``: hears the jobs table's change notifications on a connection of its own.

Migration 0004 installs a trigger that runs ``pg_notify('opusclip_job_changed', id)`` whenever a job's
status, stage or progress changes. Postgres delivers a notification when its transaction commits, so a
reader that wakes on it and reads the job sees the change.

One connection per process, outside the pools, does ``LISTEN``. When it is lost (a restart, a network cut,
a ping that gets no answer) every watcher is woken, waits fall back to polling, and the adapter reconnects
with backoff; once it listens again every watcher is woken once more, for the changes it may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
import attrs

from adapters.memory.job_changes import JobChangeHub
from adapters.postgres.engine import libpq_url
from domain.ports import JobWatch

log = logging.getLogger(__name__)

CHANNEL = "opusclip_job_changed"  # the name migration 0004's trigger notifies on
APPLICATION_NAME = "opusclip-job-changes"  # how the connection shows in pg_stat_activity


@attrs.define
class PostgresJobChanges:
    dsn: str
    poll_seconds: float = 1.0  # how often readers look while nothing is listening
    connect_timeout: float = 3.0
    ping_seconds: float = 30.0  # a connection cut without a reset is found by a ping within this
    max_backoff_seconds: float = 30.0
    hub: JobChangeHub = attrs.field(init=False)
    _task: asyncio.Task[None] | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.hub = JobChangeHub(poll_seconds=self.poll_seconds, listening=False)

    @classmethod
    async def open(cls, url: str, **settings: Any) -> PostgresJobChanges:
        """Listening on return when the database answers; polling (and reconnecting) when it does not: a
        database that is down at start-up is the health check's business, not a reason to refuse to start."""
        changes = cls(libpq_url(url), **settings)
        connection = await changes._connect()
        changes._task = asyncio.create_task(changes._run(connection), name="job-changes")
        return changes

    def watch(self, job_id: str) -> contextlib.AbstractAsyncContextManager[JobWatch]:
        return self.hub.watch(job_id)

    @property
    def listening(self) -> bool:
        return self.hub.listening

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _connect(self) -> asyncpg.Connection | None:
        try:
            connection = await asyncpg.connect(
                self.dsn, timeout=self.connect_timeout, server_settings={"application_name": APPLICATION_NAME}
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            log.warning("job_changes.connect_failed", extra={"error": str(error)})
            return None
        try:
            await connection.add_listener(CHANNEL, self._heard)
        except BaseException:
            connection.terminate()
            raise
        self.hub.listening = True
        return connection

    def _heard(self, _connection: object, _pid: int, _channel: str, job_id: str) -> None:
        self.hub.notify(job_id)

    async def _run(self, connection: asyncpg.Connection | None) -> None:
        backoff = 0.5
        while True:
            if connection is None:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
                connection = await self._connect()
                continue
            backoff = 0.5
            try:
                await self._listen(connection)
            except Exception as error:  # a reset, a failed ping, a server shutting down: reconnect
                log.warning("job_changes.lost", extra={"error": str(error)})
            finally:
                # Cancelled (close) or lost: either way this connection is done, and readers poll meanwhile.
                self.hub.listening = False
                self.hub.notify_all()
                connection.terminate()
            connection = None

    async def _listen(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        self.hub.notify_all()  # whatever changed while nothing listened: every reader looks again
        log.info("job_changes.listening")
        while not connection.is_closed():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.ping_seconds):
                    await lost.wait()
            if lost.is_set():
                return
            await connection.fetchval("SELECT 1", timeout=self.connect_timeout)
