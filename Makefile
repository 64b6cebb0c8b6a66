# Two commands matter: `make demo` (the main job) and `make test` (every test).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

# Integration tests prefer testcontainers when a Docker engine answers; otherwise these.
export TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install demo test lint unit integration e2e bench serve clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: a loose requirement would pull a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test,dev]'
	@command -v espeak-ng >/dev/null || { apt-get update -q && apt-get install -y -q espeak-ng; } \
		|| echo "warning: espeak-ng could not be installed; speech tests and the demo need it" >&2
	@command -v tesseract >/dev/null || { apt-get update -q && apt-get install -y -q tesseract-ocr; } \
		|| echo "warning: tesseract-ocr could not be installed; the burned-in caption tests need it" >&2
	@command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; } \
		|| echo "warning: chromium could not be installed; the studio's browser tests need it" >&2
	@touch $(STAMP)

demo: install
	$(PY) -m entrypoints.demo

lint: install
	$(VENV)/bin/ruff check domain application adapters entrypoints tests bench
	$(VENV)/bin/ruff format --check domain application adapters entrypoints tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: install
	$(PY) -m pytest -q tests/unit

integration: install
	$(PY) -m pytest -q tests/integration

e2e: install
	$(PY) -m pytest -q tests/e2e

test: lint
	$(PY) -m pytest -q tests/unit tests/integration tests/e2e

bench: install
	# PySceneDetect is only a reference to compare against; --no-deps keeps its GUI OpenCV off the venv.
	$(PIP) install -q -e '.[bench]' && $(PIP) install -q --no-deps scenedetect
	@command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; } \
		|| echo "warning: wrk could not be installed; bench/api.py falls back to its httpx generator" >&2
	$(PY) bench/analyze.py
	$(PY) bench/transcribe.py
	$(PY) bench/clip.py
	$(PY) bench/train.py
	$(PY) bench/api.py

serve: install
	$(VENV)/bin/opusclip serve

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
