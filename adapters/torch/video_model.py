"""TorchVideoModel: the VideoModel port backed by a HighlightNet version from the ModelManager."""

from __future__ import annotations

import numpy as np
import torch

from adapters.torch.highlight_net import FEATURE_NAMES
from adapters.torch.model_manager import ModelManager
from domain.features import FEATURE_NAMES as DOMAIN_FEATURES
from domain.features import feature_matrix
from domain.media import Analysis, Transcript

if FEATURE_NAMES != DOMAIN_FEATURES:  # the model reads the columns in the order the domain builds them
    raise ImportError(f"HighlightNet's features {FEATURE_NAMES} differ from the domain's {DOMAIN_FEATURES}")
__all__ = ["TorchVideoModel", "feature_matrix"]


class TorchVideoModel:
    """Scores each second with HighlightNet; ``version`` names the model actually used."""

    def __init__(self, manager: ModelManager, version: str | None = None) -> None:
        self.manager = manager
        self.requested_version = version

    @property
    def version(self) -> str:
        return self.manager.load(self.requested_version).version

    def using(self, version: str | None) -> TorchVideoModel:
        return TorchVideoModel(self.manager, version)

    def score(self, analysis: Analysis, transcript: Transcript) -> np.ndarray:
        if analysis.seconds == 0:
            return np.zeros(0, dtype=np.float32)
        return self.score_features(feature_matrix(analysis, transcript))

    def score_features(self, features: np.ndarray) -> np.ndarray:
        if features.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        model = self.manager.load(self.requested_version)
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).unsqueeze(0)
        x = x.to(self.manager.torch_device)
        with torch.inference_mode(), self.manager.autocast():
            scores = model(x)
        return scores.float().squeeze(0).cpu().numpy().astype(np.float32, copy=False)
