"""``opusclip token`` as an operator runs it: a real process, a token the service accepts, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.auth.jwt_authority import JwtTokenAuthority
from domain.auth import Scope

OPUSCLIP = [sys.executable, "-m", "entrypoints.cli"]
SECRET = "an-operator-secret-of-forty-bytes-or-so!"
SERVICE = "video-opusclip"  # JWT_ISSUER and JWT_AUDIENCE defaults


def opusclip(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Whatever JWT_* the developer's shell holds must not change what the test means.
    environ = {name: value for name, value in os.environ.items() if not name.startswith("JWT_")}
    return subprocess.run(
        [*OPUSCLIP, *args], env={**environ, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def service(public_key: str | None = None) -> JwtTokenAuthority:
    """The authority the service would build from the same settings."""
    if public_key is None:
        return JwtTokenAuthority(algorithm="HS256", issuer=SERVICE, audience=SERVICE, secret=SECRET)
    return JwtTokenAuthority(algorithm="RS256", issuer=SERVICE, audience=SERVICE, public_key=public_key)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("opusclip: ")
    for word in words:
        assert word in lines[0]


def test_prints_one_token_the_service_accepts() -> None:
    result = opusclip("token", "--sub", "alice", "--scope", "videos:read", JWT_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (token,) = result.stdout.splitlines()
    principal = service().verify(token)
    assert (principal.subject, principal.scopes) == ("alice", {Scope.VIDEOS_READ})


def test_scopes_repeat_and_split_on_commas_and_ttl_is_honoured() -> None:
    args = ["--scope", "videos:read,models:train", "--scope", "videos:write", "--ttl", "120"]
    result = opusclip("token", "--sub", "bob", *args, JWT_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert service().verify(token).scopes == {Scope.VIDEOS_READ, Scope.VIDEOS_WRITE, Scope.MODELS_TRAIN}
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["exp"] - payload["iat"] == 120


def test_default_scopes_read_and_write_videos() -> None:
    result = opusclip("token", "--sub", "carol", JWT_SECRET=SECRET)
    assert service().verify(result.stdout.strip()).scopes == {Scope.VIDEOS_READ, Scope.VIDEOS_WRITE}


def test_unknown_scope_is_one_line_and_exit_2() -> None:
    result = opusclip("token", "--sub", "alice", "--scope", "videos:read,videos:delete", JWT_SECRET=SECRET)
    assert_one_line_error(result, "videos:delete")


@pytest.mark.parametrize("secret", ["", "too-short"])
def test_missing_or_short_secret_is_one_line_and_exit_2(secret: str) -> None:
    assert_one_line_error(opusclip("token", "--sub", "alice", JWT_SECRET=secret), "JWT_SECRET")


@pytest.mark.parametrize(
    ("args", "word"), [(["--sub", " "], "--sub"), (["--sub", "a", "--ttl", "0"], "--ttl")]
)
def test_empty_subject_or_ttl_below_one_is_one_line_and_exit_2(args: list[str], word: str) -> None:
    assert_one_line_error(opusclip("token", *args, JWT_SECRET=SECRET), word)


def test_rs256_signs_with_the_private_key_file_and_needs_it(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = tmp_path / "jwt.key", tmp_path / "jwt.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    env = {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": str(public)}
    result = opusclip("token", "--sub", "dave", JWT_PRIVATE_KEY_FILE=str(private), **env)
    assert result.returncode == 0, result.stderr
    assert service(public_key=public.read_text()).verify(result.stdout.strip()).subject == "dave"
    assert_one_line_error(opusclip("token", "--sub", "dave", **env), "JWT_PRIVATE_KEY_FILE")
