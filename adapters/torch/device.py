"""Which torch device runs the model, from the DEVICE setting (auto|cpu|cuda|cuda:N|mps)."""

from __future__ import annotations

import torch


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def choose_device(setting: str) -> torch.device:
    """auto prefers cuda, then mps, then cpu; asking for an accelerator that is absent is an error."""
    name = setting.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise ValueError("DEVICE=mps but no Apple MPS device is available; use DEVICE=auto or DEVICE=cpu")
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"DEVICE={setting} but no CUDA device is available; use DEVICE=auto or cpu")
        try:
            device = torch.device(name)
        except RuntimeError as exc:
            raise ValueError(f"DEVICE={setting!r} is not a valid CUDA device name") from exc
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"DEVICE={setting} but only {torch.cuda.device_count()} CUDA device(s) exist")
        return device
    raise ValueError(f"DEVICE must be auto, cpu, cuda, cuda:N or mps, not {setting!r}")
