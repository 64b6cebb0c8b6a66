"""Saves HighlightNet versions as safetensors + a JSON model card, and loads each version once."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors.torch import load_file, save_file

from adapters.torch.device import choose_device
from adapters.torch.highlight_net import FEATURE_NAMES, PRIOR_WEIGHTS, HighlightNet
from domain.jobs import PRIOR_MODEL_VERSION

log = logging.getLogger(__name__)

DEFAULT_VERSION = PRIOR_MODEL_VERSION
# Versions become file names: no separators, no leading dot, nothing that could leave cache_dir.
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _check_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise ValueError(f"invalid model version {version!r}: use letters, digits, '.', '_' or '-'")
    return version


def _write_atomically(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@attrs.define
class ModelManager:
    """Model versions on disk (``<version>.safetensors`` + ``.json`` card), each loaded once, thread-safely.

    An unknown or missing version falls back to the untrained prior, ``prior-v1``, so scoring keeps
    working before the first training run. Mixed precision (fp16 autocast) applies on CUDA only.
    """

    cache_dir: Path = attrs.field(converter=Path)
    device: str = "auto"
    mixed_precision: bool = True
    torch_device: torch.device = attrs.field(init=False)
    _models: dict[str, HighlightNet] = attrs.field(init=False, factory=dict)
    _missing: set[str] = attrs.field(init=False, factory=set)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        self.torch_device = choose_device(self.device)

    def weights_path(self, version: str) -> Path:
        return self.cache_dir / f"{_check_version(version)}.safetensors"

    def card_path(self, version: str) -> Path:
        return self.cache_dir / f"{_check_version(version)}.json"

    def save(self, model: HighlightNet, version: str, card: dict[str, Any]) -> Path:
        """Write weights, then the card (a card on disk means the version is complete); return the weights."""
        if version == DEFAULT_VERSION:
            raise ValueError(f"{DEFAULT_VERSION} is the built-in prior and cannot be overwritten")
        weights, card_file = self.weights_path(version), self.card_path(version)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        meta = {"version": version, "features": ",".join(FEATURE_NAMES)}
        _write_atomically(weights, lambda p: save_file(tensors, str(p), metadata=meta))
        full_card = {
            **card,
            "version": version,
            "features": list(FEATURE_NAMES),
            "created_at": card.get("created_at") or dt.datetime.now(dt.UTC).isoformat(),
            "architecture": {"name": "HighlightNet", "hidden": model.hidden, "kernel": model.kernel},
            "prior_weights": PRIOR_WEIGHTS,
            "training_data": card.get("training_data", {}),
            "metrics": card.get("metrics", {}),
        }
        text = json.dumps(full_card, indent=2, sort_keys=True, default=str)
        _write_atomically(card_file, lambda p: p.write_text(text, encoding="utf-8"))
        return weights

    def card(self, version: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.card_path(version).read_text(encoding="utf-8"))
        return data

    def available(self) -> list[str]:
        """Complete versions on disk (weights and card), sorted by name."""
        if not self.cache_dir.is_dir():
            return []
        cards = self.cache_dir.glob("*.json")
        return sorted(p.stem for p in cards if p.with_suffix(".safetensors").is_file())

    def load(self, version: str | None = None) -> HighlightNet:
        """The model for ``version``, read from disk on first use; None or a missing version → the prior."""
        key = _check_version(version) if version else DEFAULT_VERSION
        with self._lock:
            if key in self._models:
                return self._models[key]
            if key != DEFAULT_VERSION and not (
                self.card_path(key).is_file() and self.weights_path(key).is_file()
            ):
                # Not cached under key: a version saved later (by a training run) is picked up then.
                if key not in self._missing:
                    self._missing.add(key)
                    log.warning("model %s not found in %s; using %s", key, self.cache_dir, DEFAULT_VERSION)
                key = DEFAULT_VERSION
                if key in self._models:
                    return self._models[key]
            model = self._read(key) if key != DEFAULT_VERSION else HighlightNet(version=DEFAULT_VERSION)
            model = model.to(self.torch_device).eval().requires_grad_(False)
            self._models[key] = model
            return model

    def trainable(self, version: str | None = None) -> HighlightNet:
        """An independent CPU copy of ``version`` (or the prior) to fine-tune; the served one stays frozen."""
        served = self.load(version)
        copy = HighlightNet(hidden=served.hidden, kernel=served.kernel, version=served.version)
        copy.load_state_dict({k: v.detach().to("cpu") for k, v in served.state_dict().items()})
        return copy.train()

    def _read(self, version: str) -> HighlightNet:
        card = self.card(version)
        if list(card.get("features", [])) != list(FEATURE_NAMES):
            got = card.get("features")
            raise ValueError(f"model {version} was trained on features {got}, not {FEATURE_NAMES}")
        arch = card.get("architecture", {})
        hidden, kernel = int(arch.get("hidden", 32)), int(arch.get("kernel", 7))
        model = HighlightNet(hidden=hidden, kernel=kernel, version=version)
        model.load_state_dict(load_file(str(self.weights_path(version)), device="cpu"), strict=True)
        return model

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """fp16 autocast on CUDA when mixed precision is on; plain float32 elsewhere."""
        if self.mixed_precision and self.torch_device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    async def start(self) -> None:
        """Warm up: create the cache folder and build the prior so the first job does not pay for it."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.load(None)

    async def close(self) -> None:
        with self._lock:
            self._models.clear()
        if self.torch_device.type == "cuda":
            torch.cuda.empty_cache()
