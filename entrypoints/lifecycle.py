"""Start and stop long-lived resources (engine, Redis pool, HTTP client, models) in a fixed order.

One Lifecycle is shared by the Starlette lifespan, the worker and the CLI. Start is idempotent under a lock;
resources close in reverse order; a failure half-way closes what was already opened and re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger(__name__)

Opener = Callable[[], "T | Awaitable[T]"]
Closer = Callable[[T], "Any | Awaitable[Any]"]


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class Resource(Generic[T]):
    """A handle to something the lifecycle opens; ``get()`` fails loudly before start or after close."""

    def __init__(self, name: str, opener: Opener[T], closer: Closer[T]) -> None:
        self.name = name
        self._opener = opener
        self._closer = closer
        self._value: T | None = None
        self._open = False

    def get(self) -> T:
        if not self._open:
            raise RuntimeError(f"resource {self.name!r} is not started")
        return self._value  # type: ignore[return-value]  # set together with _open

    async def _start(self) -> None:
        self._value = await _maybe_await(self._opener())
        self._open = True

    async def _close(self) -> None:
        value, self._value, self._open = self._value, None, False
        await _maybe_await(self._closer(value))  # type: ignore[arg-type]  # only pushed once opened


class Lifecycle:
    def __init__(self) -> None:
        self._resources: list[Resource[Any]] = []
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    def add(self, name: str, opener: Opener[T], closer: Closer[T]) -> Resource[T]:
        if self._stack is not None:
            raise RuntimeError("resources must be added before start")
        resource: Resource[T] = Resource(name, opener, closer)
        self._resources.append(resource)
        return resource

    @property
    def started(self) -> bool:
        return self._stack is not None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(resource.name for resource in self._resources)

    async def start(self) -> None:
        async with self._lock:
            if self._stack is not None:
                return
            stack = contextlib.AsyncExitStack()
            try:
                for resource in self._resources:
                    await resource._start()
                    stack.push_async_callback(self._closing, resource)
                    log.debug("resource.started", resource=resource.name)
            except BaseException:
                await stack.aclose()
                raise
            self._stack = stack

    async def close(self) -> None:
        async with self._lock:
            stack, self._stack = self._stack, None
            if stack is not None:
                await stack.aclose()

    @staticmethod
    async def _closing(resource: Resource[Any]) -> None:
        try:
            await resource._close()
            log.debug("resource.closed", resource=resource.name)
        except Exception:
            # One resource failing to close must not keep the others open.
            log.exception("resource.close_failed", resource=resource.name)


def settle_heap() -> None:
    """Move everything allocated at start-up (modules, the app, pools) out of the garbage collector's way:
    a full collection then walks only what requests allocate, instead of pausing a busy process for as
    long as walking every import takes (the long tail of request latencies)."""
    gc.collect()
    gc.freeze()
