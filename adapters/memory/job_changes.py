"""``JobChangeHub``: wakes the readers watching a job when told that it changed.

It is the in-process half of every ``JobChanges``: the Postgres adapter feeds it the notifications it hears,
and tests feed it by hand. While ``listening`` is False (the source of changes is down, or there is none)
every wait ends within ``poll_seconds``, so readers fall back to polling instead of waiting on silence.
"""

from __future__ import annotations

import asyncio
import contextlib

import attrs

from domain.ports import JobWatch


@attrs.define(eq=False)
class _Watch:
    """Registered with its hub while the ``async with`` block runs (a class, not a generator: closing it
    never depends on the order in which a stopping event loop finalizes generators)."""

    hub: JobChangeHub
    job_id: str
    heard: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def __aenter__(self) -> JobWatch:
        self.hub._watchers.setdefault(self.job_id, set()).add(self)
        return self

    async def __aexit__(self, *_: object) -> None:
        watches = self.hub._watchers.get(self.job_id, set())
        watches.discard(self)
        if not watches:
            self.hub._watchers.pop(self.job_id, None)

    async def changed(self) -> bool:
        if self.hub.listening:
            await self.heard.wait()
        else:
            try:
                async with asyncio.timeout(self.hub.poll_seconds):
                    await self.heard.wait()
            except TimeoutError:
                return False
        self.heard.clear()
        return True


@attrs.define
class JobChangeHub:
    poll_seconds: float = 1.0
    listening: bool = True
    _watchers: dict[str, set[_Watch]] = attrs.field(factory=dict, init=False)

    def notify(self, job_id: str) -> None:
        for watch in self._watchers.get(job_id, ()):
            watch.heard.set()

    def notify_all(self) -> None:
        """Wake every watcher: changes may have gone unheard (the source was down), so everyone looks."""
        for watches in self._watchers.values():
            for watch in watches:
                watch.heard.set()

    def watching(self) -> int:
        return sum(len(watches) for watches in self._watchers.values())

    def watch(self, job_id: str) -> contextlib.AbstractAsyncContextManager[JobWatch]:
        return _Watch(self, job_id)
