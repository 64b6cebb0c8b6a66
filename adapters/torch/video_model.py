"""TorchVideoModel: the VideoModel port backed by a HighlightNet version from the ModelManager."""

from __future__ import annotations

import numpy as np
import torch

from adapters.torch.highlight_net import FEATURE_NAMES
from adapters.torch.model_manager import ModelManager
from domain.media import MEDIA_FEATURES, Analysis, Transcript
from domain.text_features import text_features


def feature_matrix(analysis: Analysis, transcript: Transcript) -> np.ndarray:
    """(seconds × len(FEATURE_NAMES)) float32: the analyzer's columns by name, then the transcript's.

    A column the analyzer did not produce is left at 0; median centring in the model makes any
    constant column contribute nothing.
    """
    seconds = analysis.seconds
    x = np.zeros((seconds, len(FEATURE_NAMES)), dtype=np.float32)
    for i, name in enumerate(MEDIA_FEATURES):
        if name in analysis.columns:
            x[:, i] = analysis.column(name)
    x[:, len(MEDIA_FEATURES) :] = text_features(transcript, seconds)
    return x


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
        model = self.manager.load(self.requested_version)
        x = torch.from_numpy(feature_matrix(analysis, transcript)).unsqueeze(0).to(self.manager.torch_device)
        with torch.inference_mode(), self.manager.autocast():
            scores = model(x)
        return scores.float().squeeze(0).cpu().numpy().astype(np.float32, copy=False)
