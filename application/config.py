"""Every setting the service reads, parsed once from the environment into a typed, frozen AppConfig.

A bad value stops start-up with one line naming the variable and what it accepts (``ConfigError``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """One bad setting; ``str()`` is the single line to show the operator."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        super().__init__(f"{variable}={value!r} is not valid: expected {accepted}")
        self.variable = variable


def _int(minimum: int, maximum: int | None = None) -> tuple[Callable[[str], Any], str]:
    accepted = f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")

    def parse(raw: str) -> int:
        value = int(raw.strip())
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(raw)
        return value

    return parse, accepted


def _float(minimum: float) -> tuple[Callable[[str], Any], str]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not value >= minimum:  # also rejects nan
            raise ValueError(raw)
        return value

    return parse, f"a number >= {minimum:g}"


def _bool() -> tuple[Callable[[str], Any], str]:
    def parse(raw: str) -> bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(raw)

    return parse, "one of true, false, 1, 0, yes, no, on, off"


def _choice(*choices: str) -> tuple[Callable[[str], Any], str]:
    canonical = {choice.lower(): choice for choice in choices}

    def parse(raw: str) -> str:
        return canonical[raw.strip().lower()]  # KeyError -> ConfigError

    return parse, "one of " + ", ".join(choices)


def _url(*schemes: str) -> tuple[Callable[[str], Any], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if not any(value.startswith(f"{scheme}://") for scheme in schemes):
            raise ValueError(raw)
        return value

    return parse, "a URL starting with " + " or ".join(f"{s}://" for s in schemes)


def _text(nonempty: bool = True) -> tuple[Callable[[str], Any], str]:
    def parse(raw: str) -> str:
        if nonempty and not raw.strip():
            raise ValueError(raw)
        return raw.strip()

    return parse, "a non-empty string"


def _path() -> tuple[Callable[[str], Any], str]:
    def parse(raw: str) -> Path:
        if not raw.strip():
            raise ValueError(raw)
        return Path(raw.strip()).expanduser()

    return parse, "a filesystem path"


def _rate() -> tuple[Callable[[str], Any], str]:
    pattern = re.compile(r"\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*", re.I)

    def parse(raw: str) -> str:
        if not pattern.fullmatch(raw):
            raise ValueError(raw)
        return raw.strip()

    return parse, "a rate such as 10/minute or 1000 per hour"


def _networks() -> tuple[Callable[[str], Any], str]:
    def parse(raw: str) -> tuple[str, ...]:
        return tuple(str(ipaddress.ip_network(part.strip())) for part in raw.split(",") if part.strip())

    return parse, "comma-separated networks (CIDR), such as 127.0.0.1/32,10.0.0.0/8"


def _setting(env: str, default: Any, kind: tuple[Callable[[str], Any], str]) -> Any:
    parse, accepted = kind
    return attrs.field(default=default, metadata={"env": env, "parse": parse, "accepted": accepted})


@attrs.frozen
class AppConfig:
    """Typed settings; field metadata names the environment variable behind each one."""

    database_url: str = _setting(
        "DATABASE_URL",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/opusclip",
        _url("postgresql", "postgresql+asyncpg", "postgres"),
    )
    database_pool_size: int = _setting("DATABASE_POOL_SIZE", 10, _int(1, 1000))
    database_max_overflow: int = _setting("DATABASE_MAX_OVERFLOW", 10, _int(0, 1000))
    database_connect_timeout: float = _setting("DATABASE_CONNECT_TIMEOUT", 3.0, _float(0.1))
    database_command_timeout: float = _setting("DATABASE_COMMAND_TIMEOUT", 30.0, _float(0.1))
    database_pool_timeout: float = _setting("DATABASE_POOL_TIMEOUT", 5.0, _float(0.1))
    redis_url: str = _setting("REDIS_URL", "redis://127.0.0.1:6379/0", _url("redis", "rediss", "unix"))
    cache_enabled: bool = _setting("CACHE_ENABLED", True, _bool())
    cache_ttl_seconds: int = _setting("CACHE_TTL_SECONDS", 7 * 24 * 3600, _int(1))
    cache_dir: Path = _setting("CACHE_DIR", Path("~/.cache/opusclip").expanduser(), _path())
    model_cache_dir: Path = _setting("MODEL_CACHE_DIR", Path("models"), _path())
    model_version: str = _setting("MODEL_VERSION", "", _text(nonempty=False))
    device: str = _setting("DEVICE", "auto", _choice("auto", "cpu", "cuda", "mps"))
    mixed_precision: bool = _setting("MIXED_PRECISION", True, _bool())
    max_workers: int = _setting("MAX_WORKERS", max(1, os.cpu_count() or 1), _int(1, 256))
    request_timeout: float = _setting("REQUEST_TIMEOUT", 30.0, _float(0.1))
    enable_metrics: bool = _setting("ENABLE_METRICS", True, _bool())
    enable_health_checks: bool = _setting("ENABLE_HEALTH_CHECKS", True, _bool())
    health_check_interval: float = _setting("HEALTH_CHECK_INTERVAL", 10.0, _float(0.1))
    media_dir: Path = _setting("MEDIA_DIR", Path("media"), _path())
    max_upload_bytes: int = _setting("MAX_UPLOAD_BYTES", 2 * 1024**3, _int(1))
    max_video_seconds: float = _setting("MAX_VIDEO_SECONDS", 4 * 3600.0, _float(1.0))
    max_video_pixels: int = _setting("MAX_VIDEO_PIXELS", 3840 * 2160, _int(1))
    jwt_secret: str = _setting("JWT_SECRET", "", _text(nonempty=False))
    jwt_algorithm: str = _setting("JWT_ALGORITHM", "HS256", _choice("HS256", "HS384", "HS512", "RS256"))
    jwt_public_key_file: Path | None = _setting("JWT_PUBLIC_KEY_FILE", None, _path())
    jwt_private_key_file: Path | None = _setting("JWT_PRIVATE_KEY_FILE", None, _path())
    jwt_issuer: str = _setting("JWT_ISSUER", "video-opusclip", _text())
    jwt_audience: str = _setting("JWT_AUDIENCE", "video-opusclip", _text())
    jwt_ttl_seconds: int = _setting("JWT_TTL_SECONDS", 3600, _int(1))
    jwt_leeway_seconds: int = _setting("JWT_LEEWAY_SECONDS", 30, _int(0, 600))
    rate_limit_enabled: bool = _setting("RATE_LIMIT_ENABLED", True, _bool())
    rate_limit_default: str = _setting("RATE_LIMIT_DEFAULT", "120/minute", _rate())
    rate_limit_submit: str = _setting("RATE_LIMIT_SUBMIT", "10/minute", _rate())
    fetch_timeout_seconds: float = _setting("FETCH_TIMEOUT_SECONDS", 600.0, _float(1.0))
    fetch_allowed_networks: tuple[str, ...] = _setting("FETCH_ALLOWED_NETWORKS", (), _networks())
    worker_concurrency: int = _setting("WORKER_CONCURRENCY", 1, _int(1, 64))
    job_max_attempts: int = _setting("JOB_MAX_ATTEMPTS", 3, _int(1, 100))
    job_retry_base_seconds: float = _setting("JOB_RETRY_BASE_SECONDS", 10.0, _float(0.0))
    job_retry_max_seconds: float = _setting("JOB_RETRY_MAX_SECONDS", 600.0, _float(0.0))
    job_lease_seconds: float = _setting("JOB_LEASE_SECONDS", 60.0, _float(1.0))
    worker_heartbeat_seconds: float = _setting("WORKER_HEARTBEAT_SECONDS", 10.0, _float(0.5))
    worker_stalled_seconds: float = _setting("WORKER_STALLED_SECONDS", 60.0, _float(1.0))
    worker_sweep_seconds: int = _setting("WORKER_SWEEP_SECONDS", 10, _int(1, 59))
    worker_shutdown_grace_seconds: float = _setting("WORKER_SHUTDOWN_GRACE_SECONDS", 60.0, _float(0.0))
    upload_retention_hours: float = _setting("UPLOAD_RETENTION_HOURS", 168.0, _float(0.0))
    media_memory_limit_bytes: int = _setting("MEDIA_MEMORY_LIMIT_BYTES", 6 * 1024**3, _int(256 * 1024**2))
    media_timeout_seconds: float = _setting("MEDIA_TIMEOUT_SECONDS", 300.0, _float(1.0))
    media_timeout_factor: float = _setting("MEDIA_TIMEOUT_FACTOR", 2.0, _float(0.0))
    train_min_new_ratings: int = _setting("TRAIN_MIN_NEW_RATINGS", 20, _int(0))
    train_promotion_margin: float = _setting("TRAIN_PROMOTION_MARGIN", 0.02, _float(0.0))
    train_epochs: int = _setting("TRAIN_EPOCHS", 30, _int(1, 10_000))
    train_processes: int = _setting("TRAIN_PROCESSES", 1, _int(1, 256))
    train_precision: str = _setting("TRAIN_PRECISION", "auto", _choice("auto", "fp32", "bf16", "fp16"))
    # Speech: tiny.en ships with the service; a folder or another faster-whisper name (base.en, small,
    # large-v3…) for hosts that have it. auto: int8 on the CPU, float16 on CUDA (DEVICE picks which);
    # MAX_WORKERS is how many CPU threads recognition uses.
    whisper_model: str = _setting("WHISPER_MODEL", "tiny.en", _text())
    whisper_compute_type: str = _setting(
        "WHISPER_COMPUTE_TYPE",
        "auto",
        _choice(
            "auto",
            "int8",
            "int8_float32",
            "int8_float16",
            "int8_bfloat16",
            "int16",
            "float16",
            "bfloat16",
            "float32",
        ),
    )
    log_level: str = _setting("LOG_LEVEL", "info", _choice("debug", "info", "warning", "error", "critical"))
    log_format: str = _setting("LOG_FORMAT", "json", _choice("json", "console"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppConfig:
        """Read every setting; unset or empty variables keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in attrs.fields(cls):
            name = field.metadata["env"]
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[field.name] = field.metadata["parse"](raw)
            except (ValueError, TypeError, KeyError):
                raise ConfigError(name, raw, field.metadata["accepted"]) from None
        return cls(**values)

    def __attrs_post_init__(self) -> None:
        if self.job_retry_max_seconds < self.job_retry_base_seconds:
            raise ConfigError(
                "JOB_RETRY_MAX_SECONDS",
                str(self.job_retry_max_seconds),
                f"a number >= JOB_RETRY_BASE_SECONDS ({self.job_retry_base_seconds:g})",
            )

    @classmethod
    def variables(cls) -> frozenset[str]:
        """The environment variables AppConfig reads (docker/ files are checked against this)."""
        return frozenset(field.metadata["env"] for field in attrs.fields(cls))
