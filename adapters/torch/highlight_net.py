"""HighlightNet: an interpretable prior over per-second features plus a learned temporal residual.

score(t) = smooth(Σ_f PRIOR_WEIGHTS[f] · z_f(t)) + residual(z)(t)

Normalisation (z): each feature is first put on a common scale by fixed, documented constants
(``FEATURE_SCALING``: centre and spread of typical values), clamped to ±``CLAMP`` so a silent -90 dB
second or a burst of cuts cannot dominate, then centred on its per-video median. The fixed scale keeps
one noisy feature from being blown up in a video where it barely varies (a per-video z-score would);
the median centring makes scores indifferent to a video's overall level (a quiet recording scores
like a loud one), so scores from different videos are comparable for training.

The residual is a small 1-D conv net over time whose last layer starts at zero: an untrained model
is exactly the prior, and training on feedback only moves the residual.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from domain.jobs import PRIOR_MODEL_VERSION
from domain.media import MEDIA_FEATURES, TEXT_FEATURES

FEATURE_NAMES: tuple[str, ...] = MEDIA_FEATURES + TEXT_FEATURES

# (centre, spread) of typical values: z = (x - centre) / spread before clamping and median centring.
FEATURE_SCALING: dict[str, tuple[float, float]] = {
    "brightness": (0.5, 0.25),
    "colourfulness": (0.3, 0.2),
    "motion": (0.05, 0.05),
    "shot_change": (0.0, 1.0),
    "loudness": (-30.0, 10.0),  # dBFS
    "loudness_delta": (0.0, 6.0),  # dB
    "speech_prob": (0.5, 0.5),
    "speaking_rate": (2.5, 1.5),  # words per second
    "pause": (0.5, 0.5),
    "sentence_end": (0.0, 1.0),
}

PRIOR_WEIGHTS: dict[str, float] = {
    "brightness": 0.1,  # very dark footage is rarely a highlight
    "colourfulness": 0.2,  # vivid scenes hold attention a little better
    "motion": 0.5,  # action and gesture on screen
    "shot_change": 0.1,  # editors cut faster at key moments, but a cut alone is just a transition
    "loudness": 1.0,  # laughter, applause, raised voices: the strongest single cue
    "loudness_delta": 0.6,  # sudden changes in level mark reactions and punchlines
    "speech_prob": 0.4,  # in talks and podcasts the content is in the speech
    "speaking_rate": 0.4,  # animated, fast speech signals energy
    "pause": -0.5,  # dead air is the opposite of a highlight
    "sentence_end": 0.05,  # a completed thought; where to cut is selection's job, so barely weighted
}

SMOOTHING_KERNEL = (1.0, 2.0, 3.0, 2.0, 1.0)  # triangular, 5 s: a highlight is a moment, not a frame
CLAMP = 5.0


class HighlightNet(nn.Module):
    """Per-second highlight scores from a (batch, seconds, len(FEATURE_NAMES)) feature tensor."""

    centre: torch.Tensor
    spread: torch.Tensor
    prior_weights: torch.Tensor
    smoothing: torch.Tensor

    def __init__(self, hidden: int = 32, kernel: int = 7, version: str = PRIOR_MODEL_VERSION) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError("kernel must be odd so the residual stays aligned in time")
        self.version = version
        self.hidden = hidden
        self.kernel = kernel
        n = len(FEATURE_NAMES)
        self.register_buffer("centre", torch.tensor([FEATURE_SCALING[f][0] for f in FEATURE_NAMES]))
        self.register_buffer("spread", torch.tensor([FEATURE_SCALING[f][1] for f in FEATURE_NAMES]))
        self.register_buffer("prior_weights", torch.tensor([PRIOR_WEIGHTS[f] for f in FEATURE_NAMES]))
        smoothing = torch.tensor(SMOOTHING_KERNEL)
        self.register_buffer("smoothing", (smoothing / smoothing.sum()).view(1, 1, -1))
        self.residual = nn.Sequential(
            nn.Conv1d(n, hidden, kernel, padding=kernel // 2),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel, padding=(kernel // 2) * 2, dilation=2),
            nn.GELU(),
            nn.Conv1d(hidden, 1, 1),
        )
        last = self.residual[-1]
        assert isinstance(last, nn.Conv1d) and last.bias is not None
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def normalise(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Fixed scaling, clamping and per-video median centring; padded seconds (mask False) become 0."""
        x = x.float()
        centre = self.centre.to(x.dtype)
        # A missing reading is neutral; -inf dB (digital silence) is simply very quiet.
        x = torch.where(torch.isnan(x), centre.expand_as(x), x)
        z = ((x - centre) / self.spread).clamp(-CLAMP, CLAMP)
        if mask is None:
            median = z.median(dim=1, keepdim=True).values
        else:
            median = z.masked_fill(~mask[..., None], float("nan")).nanmedian(dim=1, keepdim=True).values
            median = torch.nan_to_num(median, nan=0.0)
        z = z - median
        return z if mask is None else z.masked_fill(~mask[..., None], 0.0)

    def prior(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The fixed linear combination of normalised features, smoothed over time: (batch, seconds).

        With a mask (each video's real seconds first, then padding), the padding repeats the video's last
        real second, so a padded video's scores equal its scores alone.
        """
        raw = (z * self.prior_weights).sum(dim=-1)
        if mask is not None:
            last = (mask.sum(dim=1, keepdim=True) - 1).clamp(min=0)
            steps = torch.arange(raw.shape[1], device=raw.device).expand_as(raw)
            raw = raw.gather(1, torch.minimum(steps, last))
        raw = raw.unsqueeze(1)
        pad = int(self.smoothing.shape[-1]) // 2
        # Replicate padding keeps the first and last seconds from being dragged towards zero.
        return F.conv1d(F.pad(raw, (pad, pad), mode="replicate"), self.smoothing).squeeze(1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Scores; ``mask`` (batch, seconds) marks real seconds in a padded batch (they come first)."""
        if x.ndim != 3 or x.shape[-1] != len(FEATURE_NAMES):
            want = len(FEATURE_NAMES)
            raise ValueError(f"expected (batch, seconds, {want}) features, got {tuple(x.shape)}")
        z = self.normalise(x, mask)
        return self.prior(z, mask) + self._residual(z, mask)

    def _residual(self, z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        h = z.transpose(1, 2)
        if mask is None:
            return self.residual(h).squeeze(1)
        # Zeroing padded seconds after every convolution makes them look like the zero padding an unpadded
        # video sees, so a batched forward equals one video at a time.
        keep = mask.unsqueeze(1).to(h.dtype)
        for layer in self.residual:
            h = layer(h)
            if isinstance(layer, nn.Conv1d):
                h = h * keep.to(h.dtype)
        return h.squeeze(1)
