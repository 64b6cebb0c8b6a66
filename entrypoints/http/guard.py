"""Who may call a route: a verified bearer token with the route's scope, within the caller's rate limit."""

from __future__ import annotations

import attrs
import structlog
from starlette.requests import Request

from domain.auth import Principal, RouteClass, Scope
from domain.errors import CredentialsMissing, DependencyUnavailable, PermissionDenied, RateLimited
from domain.ports import RateLimiter, TokenAuthority

log = structlog.get_logger("opusclip.http")


@attrs.frozen
class Guard:
    authority: TokenAuthority
    limiter: RateLimiter

    async def __call__(self, request: Request, scope: Scope, route_class: RouteClass) -> Principal:
        principal = self.authority.verify(_bearer(request))
        if not principal.allows(scope):
            raise PermissionDenied(f"this route needs the {scope.value} scope")
        try:
            decision = await self.limiter.hit(principal.subject, route_class)
        except DependencyUnavailable:
            # Without the limiter, reads go on (they are cheap and idempotent) and new work waits: a flood of
            # submissions is the expensive thing limits exist to stop.
            log.warning("rate_limit.unavailable", route_class=route_class.value)
            if route_class is RouteClass.SUBMIT:
                raise DependencyUnavailable(
                    "submissions are paused: the rate limiter cannot be reached; try again shortly"
                ) from None
            return principal
        if not decision.allowed:
            raise RateLimited(
                f"too many {route_class.value} requests; try again in {decision.retry_after} s",
                decision.retry_after,
            )
        return principal


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CredentialsMissing("a bearer token is required (Authorization: Bearer <token>)")
    return token.strip()
