"""JwtTokenAuthority: what it signs, and every way a token fails to verify (always ``Unauthenticated``)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hmac, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.hashes import SHA256

from adapters.auth.jwt_authority import JwtTokenAuthority
from domain.auth import Scope
from domain.errors import Unauthenticated

SECRET = "s3cret-" * 6  # 42 bytes
ISSUER, AUDIENCE = "video-opusclip", "video-opusclip"


def authority(**overrides: Any) -> JwtTokenAuthority:
    settings: dict[str, Any] = {
        "algorithm": "HS256",
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "ttl_seconds": 600,
        "leeway_seconds": 30,
        "secret": SECRET,
    }
    return JwtTokenAuthority(**(settings | overrides))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {"sub": "alice", "scope": "videos:read", "iat": now, "exp": now + 600}
    return {"iss": ISSUER, "aud": AUDIENCE, **values, **overrides}


def without(name: str) -> dict[str, Any]:
    return {key: value for key, value in claims().items() if key != name}


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def forge(alg: str, payload: str, key: bytes | None) -> str:
    """A token built by hand, as an attacker would: any header, any payload, HMAC-SHA256 or no signature."""
    signing_input = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + b"." + _b64(payload.encode())
    signature = b""
    if key is not None:
        mac = hmac.HMAC(key, SHA256())
        mac.update(signing_input)
        signature = _b64(mac.finalize())
    return (signing_input + b"." + signature).decode()


def refused(token: str, by: JwtTokenAuthority | None = None) -> str:
    with pytest.raises(Unauthenticated) as caught:
        (by or authority()).verify(token)
    return caught.value.message


@pytest.fixture(scope="module")
def rsa_pems() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


def test_round_trip_carries_subject_scopes_and_standard_claims() -> None:
    tokens = authority()
    scopes = frozenset({Scope.VIDEOS_READ, Scope.MODELS_TRAIN})
    token = tokens.issue("alice", scopes)
    principal = tokens.verify(token)
    assert (principal.subject, principal.scopes) == ("alice", scopes)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["scope"] == "models:train videos:read"  # space-separated, the OAuth 2 way
    assert (payload["iss"], payload["aud"]) == (ISSUER, AUDIENCE)
    assert payload["exp"] - payload["iat"] == 600
    assert (
        payload["jti"]
        != jwt.decode(tokens.issue("alice", scopes), options={"verify_signature": False})["jti"]
    )
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_ttl_argument_overrides_the_default() -> None:
    payload = jwt.decode(
        authority().issue("bob", frozenset(), ttl_seconds=5), options={"verify_signature": False}
    )
    assert payload["exp"] - payload["iat"] == 5


def test_expired_beyond_leeway_is_refused() -> None:
    now = int(time.time())
    token = jwt.encode(claims(iat=now - 700, exp=now - 31), SECRET, algorithm="HS256")
    assert refused(token) == "token expired"


def test_expired_within_leeway_is_accepted() -> None:
    now = int(time.time())
    token = jwt.encode(claims(iat=now - 700, exp=now - 20), SECRET, algorithm="HS256")
    assert authority().verify(token).subject == "alice"


def test_wrong_audience_is_refused() -> None:
    assert refused(jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256")) == "wrong audience"


def test_wrong_issuer_is_refused() -> None:
    assert refused(jwt.encode(claims(iss="evil-issuer"), SECRET, algorithm="HS256")) == "wrong issuer"


def test_wrong_secret_is_refused() -> None:
    token = authority(secret="another-secret-" * 3).issue("alice", frozenset({Scope.VIDEOS_READ}))
    assert refused(token) == "bad signature"


def test_tampered_payload_is_refused() -> None:
    header, _, signature = authority().issue("alice", frozenset({Scope.VIDEOS_READ})).split(".")
    payload = _b64(json.dumps(claims(sub="mallory", scope="models:admin")).encode()).decode()
    assert refused(f"{header}.{payload}.{signature}") == "bad signature"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(alg: str) -> None:
    assert refused(forge(alg, json.dumps(claims()), key=None)) == "algorithm not allowed"


@pytest.mark.parametrize("claim", ["sub", "exp", "iat"])
def test_missing_required_claim_is_refused(claim: str) -> None:
    assert refused(jwt.encode(without(claim), SECRET, algorithm="HS256")) == f"missing claim {claim}"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-token",
        "a.b.c",
        jwt.encode(claims(sub=""), SECRET, algorithm="HS256"),
        jwt.encode(claims(scope=["videos:read"]), SECRET, algorithm="HS256"),
    ],
)
def test_garbage_is_refused_as_malformed(token: str) -> None:
    assert refused(token) == "malformed token"


def test_absurd_numbers_are_refused_not_crashed_on() -> None:
    body = json.dumps(claims()).replace(f'"exp": {claims()["exp"]}', '"exp": 1e400')
    assert "1e400" in body
    assert refused(forge("HS256", body, SECRET.encode())) == "malformed token"


def test_anything_else_that_goes_wrong_reads_as_unauthenticated(monkeypatch: pytest.MonkeyPatch) -> None:
    def trips(*args: object, **kwargs: object) -> None:
        raise RecursionError("a parser ran out of stack")

    monkeypatch.setattr(jwt, "decode", trips)
    assert refused(authority().issue("alice", frozenset())) == "malformed token"


def test_rs256_round_trip(rsa_pems: tuple[str, str]) -> None:
    private, public = rsa_pems
    issuer = authority(algorithm="RS256", secret="", private_key=private, public_key=public)
    verifier = authority(algorithm="RS256", secret="", public_key=public)
    token = issuer.issue("carol", frozenset({Scope.MODELS_ADMIN}))
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert verifier.verify(token).scopes == {Scope.MODELS_ADMIN}
    assert authority(algorithm="RS256", secret="", private_key=private).verify(token).subject == "carol"


def test_rs256_without_a_private_key_verifies_but_cannot_issue(rsa_pems: tuple[str, str]) -> None:
    verifier = authority(algorithm="RS256", secret="", public_key=rsa_pems[1])
    with pytest.raises(ValueError, match="JWT_PRIVATE_KEY_FILE"):
        verifier.issue("carol", frozenset())


def test_hs256_token_signed_with_the_rs256_public_key_is_refused(rsa_pems: tuple[str, str]) -> None:
    public = rsa_pems[1]
    # PyJWT will not use a PEM as an HMAC key, so sign by hand as an attacker would.
    forged = forge("HS256", json.dumps(claims(scope="models:admin")), public.encode())
    rs256 = authority(algorithm="RS256", secret="", public_key=public)
    assert refused(forged, rs256) == "algorithm not allowed"


def test_rs256_token_is_refused_by_an_hs256_authority(rsa_pems: tuple[str, str]) -> None:
    token = authority(algorithm="RS256", secret="", private_key=rsa_pems[0]).issue("carol", frozenset())
    assert refused(token) == "algorithm not allowed"


@pytest.mark.parametrize("secret", ["", "x" * 31])
def test_short_secret_is_refused_at_construction(secret: str) -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        authority(secret=secret)
    authority(secret="x" * 32)  # exactly 32 bytes is enough


def test_rs256_with_mismatched_or_missing_keys_is_refused(rsa_pems: tuple[str, str]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    other_pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY_FILE"):
        authority(algorithm="RS256", private_key=rsa_pems[0], public_key=other_pem)
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY_FILE"):
        authority(algorithm="RS256")
    with pytest.raises(ValueError, match="JWT_PRIVATE_KEY_FILE"):
        authority(
            algorithm="RS256", private_key="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"
        )


def test_unknown_scopes_are_ignored() -> None:
    token = jwt.encode(claims(scope="videos:read videos:delete admin:everything"), SECRET, algorithm="HS256")
    assert authority().verify(token).scopes == {Scope.VIDEOS_READ}


def test_a_remembered_token_still_expires(monkeypatch: Any) -> None:
    verifier = authority(leeway_seconds=0)
    token = verifier.issue("alice", frozenset({Scope.VIDEOS_READ}), ttl_seconds=60)
    assert verifier.verify(token).subject == "alice"  # verified, and now remembered
    real = time.time
    monkeypatch.setattr("adapters.auth.jwt_authority.time.time", lambda: real() + 61)
    monkeypatch.setattr("jwt.api_jwt.datetime", _Later(61))
    assert refused(token, verifier) == "token expired"


def test_a_remembered_token_is_not_another_token() -> None:
    verifier = authority()
    good = verifier.issue("alice", frozenset({Scope.VIDEOS_READ}))
    verifier.verify(good)
    tampered = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    assert refused(tampered, verifier) in {"bad signature", "malformed token"}


class _Later:
    """Stands in for datetime inside PyJWT so its notion of now moves forward."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def now(self, tz: Any = None) -> Any:
        import datetime as dt

        return dt.datetime.now(tz) + dt.timedelta(seconds=self.seconds)
