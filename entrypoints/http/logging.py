"""structlog set-up: one JSON object per line in production, coloured key=value lines on a terminal.

The standard library's loggers (uvicorn, SQLAlchemy, our application layer) are routed through the same
renderer, so every line on stdout has one shape and carries the request id bound by the middleware.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor


def _add_pid(_logger: object, _method: str, event: EventDict) -> EventDict:
    # `serve --workers N` and workers on one host write to one stream: the pid tells them apart.
    event.setdefault("pid", os.getpid())
    return event


_SHARED: list[Processor] = [
    _add_pid,
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger; ``fmt`` is ``json`` or ``console``.

    The CLI passes stderr, keeping stdout for its summary table.
    """
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    # Tracebacks become a "exception" string field in JSON; the console renderer prints them itself.
    tail: list[Processor] = [] if fmt == "console" else [structlog.processors.format_exc_info]

    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stdout)  # looked up now: tests swap sys.stdout
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],  # stdlib `extra=` fields
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # uvicorn installs its own handlers; let its records reach ours instead of printing twice.
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Our access-log middleware already logs every request, with its route template and request id.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
