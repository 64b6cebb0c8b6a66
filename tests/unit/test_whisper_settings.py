"""WHISPER_* settings: defaults, validation, and what the transcriber is built with."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.speech.whisper import MAX_WORKERS, WhisperTranscriber, whisper_device
from adapters.speech.whisper_model import BUNDLED_SHA256, WhisperModelFiles
from application.config import AppConfig, ConfigError

FILES = WhisperModelFiles("tiny.en", Path("/nowhere"), dict(BUNDLED_SHA256))  # never loaded here


def test_the_shipped_model_on_the_cpu_in_int8_needs_no_setting() -> None:
    config = AppConfig.from_env({})
    assert (config.whisper_model, config.whisper_compute_type) == ("tiny.en", "auto")
    assert {"WHISPER_MODEL", "WHISPER_COMPUTE_TYPE"} <= AppConfig.variables()
    transcriber = WhisperTranscriber(FILES, device=whisper_device("cpu"), compute_type="auto")
    assert transcriber.compute_type == "int8"
    assert WhisperTranscriber(FILES, device="cuda").compute_type == "float16"


def test_settings_are_read_and_bad_ones_name_their_variable() -> None:
    config = AppConfig.from_env(
        {"WHISPER_MODEL": " /models/large-v3 ", "WHISPER_COMPUTE_TYPE": "FLOAT16", "MAX_WORKERS": "3"}
    )
    assert (config.whisper_model, config.whisper_compute_type, config.max_workers) == (
        "/models/large-v3",
        "float16",
        3,
    )
    with pytest.raises(
        ConfigError, match="WHISPER_COMPUTE_TYPE='int4' is not valid: expected one of auto, int8"
    ):
        AppConfig.from_env({"WHISPER_COMPUTE_TYPE": "int4"})
    with pytest.raises(ConfigError, match="WHISPER_MODEL"):
        AppConfig.from_env({"WHISPER_MODEL": "   "})


def test_devices_map_to_what_ctranslate2_runs_on() -> None:
    assert whisper_device("cpu") == "cpu"
    assert whisper_device("mps") == "cpu"  # CTranslate2 has no Metal backend
    assert whisper_device("cuda") == "cuda"
    assert whisper_device("auto") in {"cpu", "cuda"}


def test_threads_become_one_thread_replicas_up_to_a_cap() -> None:
    assert WhisperTranscriber(FILES, threads=1).workers == 1
    assert WhisperTranscriber(FILES, threads=2).workers == 2
    assert WhisperTranscriber(FILES, threads=64).workers == MAX_WORKERS
    assert WhisperTranscriber(FILES, device="cuda", threads=8).workers == 1


def test_chunks_must_fit_one_whisper_window() -> None:
    with pytest.raises(ValueError, match="chunk_seconds"):
        WhisperTranscriber(FILES, chunk_seconds=31.0)
    with pytest.raises(ValueError, match="chunk_seconds"):
        WhisperTranscriber(FILES, chunk_seconds=0.0)
