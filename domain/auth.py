"""Who is asking and what they may do: a verified principal and its scopes."""

from __future__ import annotations

import enum

import attrs


class Scope(enum.StrEnum):
    VIDEOS_READ = "videos:read"
    VIDEOS_WRITE = "videos:write"
    MODELS_TRAIN = "models:train"
    MODELS_ADMIN = "models:admin"


@attrs.frozen
class Principal:
    """The subject of a verified token; ``subject`` owns the jobs and clips it creates."""

    subject: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes


class RouteClass(enum.StrEnum):
    """Rate limits are kept per user and per class of route."""

    READ = "read"
    SUBMIT = "submit"


@attrs.frozen
class RateDecision:
    allowed: bool
    retry_after: int = 0  # seconds until the window lets the next request through
