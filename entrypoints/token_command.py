"""``opusclip token --sub NAME``: mint a bearer token with the service's own JWT_* settings.

The JWT adapter (PyJWT and cryptography) is imported only when a token is made or checked, so parsing the
command line stays quick for every other command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from application.config import AppConfig
from domain.auth import Scope
from entrypoints.console import fail

if TYPE_CHECKING:
    from adapters.auth.jwt_authority import JwtTokenAuthority

DEFAULT_SCOPES = (Scope.VIDEOS_READ, Scope.VIDEOS_WRITE)
_SCOPE_NAMES = frozenset(scope.value for scope in Scope)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = subparsers.add_parser("token", help="print a bearer token for a user (signed with JWT_*)")
    token.add_argument("--sub", required=True, help="the user the token speaks for")
    token.add_argument(
        "--scope",
        action="append",
        metavar="SCOPE",
        help=f"repeat or comma-separate: {', '.join(Scope)} (default: {','.join(DEFAULT_SCOPES)})",
    )
    token.add_argument(
        "--ttl", type=int, default=None, help="seconds it stays valid (default: JWT_TTL_SECONDS)"
    )


def run(config: AppConfig, args: argparse.Namespace) -> int:
    subject = args.sub.strip()
    if not subject:
        return fail("--sub must not be empty")
    if args.ttl is not None and args.ttl < 1:
        return fail(f"--ttl must be at least 1 second, not {args.ttl}")
    try:
        scopes = _scopes(args.scope)
    except ValueError as error:
        return fail(str(error))
    try:
        token = build_token_authority(config).issue(subject, scopes, args.ttl)
    except ValueError as error:
        return fail(f"configuration error: {error}")
    print(token)
    return 0


def build_token_authority(config: AppConfig) -> JwtTokenAuthority:
    """The TokenAuthority the settings describe, for this command and the composition root alike.

    Raises ValueError naming the JWT_* variable at fault (an unreadable key file, a short secret).
    """
    from adapters.auth.jwt_authority import RSA_ALGORITHMS, JwtTokenAuthority

    asymmetric = config.jwt_algorithm in RSA_ALGORITHMS
    return JwtTokenAuthority(
        algorithm=config.jwt_algorithm,
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
        ttl_seconds=config.jwt_ttl_seconds,
        leeway_seconds=config.jwt_leeway_seconds,
        secret="" if asymmetric else config.jwt_secret,
        public_key=_read_key("JWT_PUBLIC_KEY_FILE", config.jwt_public_key_file) if asymmetric else None,
        private_key=_read_key("JWT_PRIVATE_KEY_FILE", config.jwt_private_key_file) if asymmetric else None,
    )


def _scopes(requested: list[str] | None) -> frozenset[Scope]:
    if not requested:
        return frozenset(DEFAULT_SCOPES)
    names = [name.strip() for value in requested for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in _SCOPE_NAMES]
    if unknown or not names:
        raise ValueError(f"unknown scope {', '.join(unknown) or '(empty)'}: expected {', '.join(Scope)}")
    return frozenset(Scope(name) for name in names)


def _read_key(variable: str, path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not a text PEM file"
        raise ValueError(f"{variable}={path}: cannot read it ({reason})") from None
