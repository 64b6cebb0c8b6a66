"""``JwtTokenAuthority``: the TokenAuthority port on signed JWTs (PyJWT).

A token is attacker-controlled input, so ``verify`` answers every failure with ``Unauthenticated`` and a short
reason, and the accepted algorithm is pinned to the configured one: the header's ``alg`` is never trusted
(no ``none``, no HS256 token "signed" with our RS256 public key).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import attrs
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from domain.auth import Principal, Scope
from domain.errors import Unauthenticated

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
RSA_ALGORITHMS = frozenset({"RS256"})
MIN_SECRET_BYTES = 32
MIN_RSA_BITS = 2048
_KNOWN_SCOPES = {scope.value: scope for scope in Scope}

# Most specific first: several of these subclass DecodeError or InvalidTokenError.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
)


# Verified tokens kept in memory (a few hundred bytes each); the table starts over when full.
_REMEMBERED_TOKENS = 4096


@attrs.define(kw_only=True)
class JwtTokenAuthority:
    """Signs with ``secret`` (HS*) or the PEM ``private_key`` (RS256); verifies with ``secret`` or the PEM
    ``public_key`` (derived from the private key when only that is given). Construction raises ValueError
    naming the JWT_* setting at fault, so a bad deployment stops at start-up, not at the first request."""

    algorithm: str
    issuer: str
    audience: str
    ttl_seconds: int = 3600
    leeway_seconds: int = 30
    secret: str = attrs.field(default="", repr=False)
    public_key: str | None = attrs.field(default=None, repr=False)
    private_key: str | None = attrs.field(default=None, repr=False)
    _signing_key: bytes | RSAPrivateKey | None = attrs.field(init=False, default=None, repr=False)
    _verifying_key: bytes | RSAPublicKey = attrs.field(init=False, default=b"", repr=False)
    _verified: dict[str, tuple[Principal, float]] = attrs.field(init=False, factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.ttl_seconds < 1 or self.leeway_seconds < 0:
            raise ValueError("JWT_TTL_SECONDS must be >= 1 and JWT_LEEWAY_SECONDS >= 0")
        if self.algorithm in HMAC_ALGORITHMS:
            self._signing_key = self._verifying_key = _hmac_secret(self.secret, self.algorithm)
        elif self.algorithm in RSA_ALGORITHMS:
            self._signing_key, self._verifying_key = _rsa_keys(self.private_key, self.public_key)
        else:
            raise ValueError(
                f"JWT_ALGORITHM {self.algorithm!r} is not supported: expected HS256, HS384, HS512 or RS256"
            )

    def issue(self, subject: str, scopes: frozenset[Scope], ttl_seconds: int | None = None) -> str:
        if self._signing_key is None:
            raise ValueError(
                f"JWT_PRIVATE_KEY_FILE is not set: this {self.algorithm} authority only verifies"
            )
        ttl = self.ttl_seconds if ttl_seconds is None else ttl_seconds
        if not subject.strip():
            raise ValueError("a token needs a non-empty subject")
        if ttl < 1:
            raise ValueError(f"a token's lifetime must be >= 1 second, not {ttl}")
        now = int(time.time())
        claims = {
            "sub": subject,
            "scope": " ".join(sorted(scope.value for scope in scopes)),  # space-separated, as in OAuth 2
            "iat": now,
            "exp": now + ttl,
            "iss": self.issuer,
            "aud": self.audience,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._signing_key, algorithm=self.algorithm)

    def verify(self, token: str) -> Principal:
        # A client sends the same token with every request: a verified one is remembered until it expires,
        # so the signature and claims are checked once per token, not once per request.
        remembered = self._verified.get(token)
        if remembered is not None and time.time() < remembered[1]:
            return remembered[0]
        principal, expires = self._decode(token)
        if len(self._verified) >= _REMEMBERED_TOKENS:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(_reason(error)) from None
        except Exception:  # hostile input must read as 401 whatever PyJWT trips on, never as a 500
            raise Unauthenticated("malformed token") from None
        return _principal(claims), float(claims["exp"]) + self.leeway_seconds


def _reason(error: jwt.PyJWTError) -> str:
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"missing claim {error.claim}"
    return next((reason for kind, reason in _REASONS if isinstance(error, kind)), "malformed token")


def _principal(claims: dict[str, Any]) -> Principal:
    subject, scope = claims.get("sub"), claims.get("scope", "")
    if not isinstance(subject, str) or not subject.strip() or not isinstance(scope, str):
        raise Unauthenticated("malformed token")
    # Unknown scopes are dropped, not refused: a token minted for a newer release still works here.
    scopes = frozenset(_KNOWN_SCOPES[name] for name in scope.split() if name in _KNOWN_SCOPES)
    return Principal(subject=subject, scopes=scopes)


def _hmac_secret(secret: str, algorithm: str) -> bytes:
    key = secret.encode()
    if len(key) < MIN_SECRET_BYTES:
        state = "is not set" if not key else f"has {len(key)} bytes"
        raise ValueError(
            f"JWT_SECRET {state}: {algorithm} needs a secret of at least {MIN_SECRET_BYTES} bytes"
        )
    return key


def _rsa_keys(private_pem: str | None, public_pem: str | None) -> tuple[RSAPrivateKey | None, RSAPublicKey]:
    private = _load_private(private_pem) if private_pem else None
    public = _load_public(public_pem) if public_pem else None
    if public is None:
        if private is None:
            raise ValueError(
                "JWT_PUBLIC_KEY_FILE is not set: RS256 needs a public key to verify tokens "
                "(or JWT_PRIVATE_KEY_FILE, which also issues them)"
            )
        return private, private.public_key()
    if private is not None and private.public_key().public_numbers() != public.public_numbers():
        raise ValueError("JWT_PUBLIC_KEY_FILE is not the public half of JWT_PRIVATE_KEY_FILE")
    return private, public


def _load_private(pem: str) -> RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"JWT_PRIVATE_KEY_FILE is not an unencrypted PEM private key ({error})") from None
    if not isinstance(key, RSAPrivateKey) or key.key_size < MIN_RSA_BITS:
        raise ValueError(f"JWT_PRIVATE_KEY_FILE must hold an RSA key of at least {MIN_RSA_BITS} bits")
    return key


def _load_public(pem: str) -> RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as error:
        raise ValueError(f"JWT_PUBLIC_KEY_FILE is not a PEM public key ({error})") from None
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise ValueError(f"JWT_PUBLIC_KEY_FILE must hold an RSA key of at least {MIN_RSA_BITS} bits")
    return key
