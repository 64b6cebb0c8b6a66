import pytest

from application.config import AppConfig, ConfigError

DESIGN_VARIABLES = {
    "DATABASE_URL",
    "DATABASE_POOL_SIZE",
    "DATABASE_MAX_OVERFLOW",
    "REDIS_URL",
    "CACHE_ENABLED",
    "CACHE_TTL_SECONDS",
    "MODEL_CACHE_DIR",
    "DEVICE",
    "MIXED_PRECISION",
    "MAX_WORKERS",
    "REQUEST_TIMEOUT",
    "ENABLE_METRICS",
    "ENABLE_HEALTH_CHECKS",
    "HEALTH_CHECK_INTERVAL",
    "MEDIA_DIR",
    "MAX_UPLOAD_BYTES",
    "MAX_VIDEO_SECONDS",
    "LOG_LEVEL",
    "LOG_FORMAT",
}


def test_every_design_setting_is_read() -> None:
    variables = AppConfig.variables()
    assert variables >= DESIGN_VARIABLES
    assert any(v.startswith("JWT_") for v in variables)
    assert any(v.startswith("RATE_LIMIT_") for v in variables)


def test_defaults_need_no_environment() -> None:
    config = AppConfig.from_env({})
    assert config.device == "auto"
    assert config.database_pool_size >= 1


def test_values_are_typed() -> None:
    config = AppConfig.from_env(
        {
            "DATABASE_POOL_SIZE": "3",
            "CACHE_ENABLED": "false",
            "HEALTH_CHECK_INTERVAL": "2.5",
            "DEVICE": "CPU",
            "LOG_FORMAT": "console",
            "MEDIA_DIR": "/tmp/media",
        }
    )
    assert config.database_pool_size == 3
    assert config.cache_enabled is False
    assert config.health_check_interval == 2.5
    assert config.device == "cpu"
    assert config.log_format == "console"
    assert str(config.media_dir) == "/tmp/media"


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("DATABASE_POOL_SIZE", "abc", "integer"),
        ("DATABASE_POOL_SIZE", "0", "integer >= 1"),
        ("DEVICE", "tpu", "auto, cpu, cuda, mps"),
        ("CACHE_ENABLED", "maybe", "true, false"),
        ("HEALTH_CHECK_INTERVAL", "nan", "number"),
        ("DATABASE_URL", "mysql://x", "postgresql://"),
        ("LOG_FORMAT", "xml", "json, console"),
    ],
)
def test_bad_value_names_the_variable_and_what_it_accepts(variable: str, value: str, accepted: str) -> None:
    with pytest.raises(ConfigError) as raised:
        AppConfig.from_env({variable: value})
    message = str(raised.value)
    assert message.startswith(f"{variable}=")
    assert accepted in message
    assert "\n" not in message
