"""ListJobs: the caller's jobs, newest first, a page at a time."""

from __future__ import annotations

import attrs

from domain.errors import InvalidInput
from domain.paging import MAX_PAGE_SIZE
from domain.ports import JobPage, UnitOfWorkFactory


@attrs.frozen
class ListJobs:
    uow: UnitOfWorkFactory

    async def __call__(self, owner: str, limit: int = 20, cursor: str | None = None) -> JobPage:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        async with self.uow(read_only=True) as uow:
            return await uow.jobs.page_for_owner(owner, limit, cursor)
