"""Losses. FeatureSmoothingLoss is seed A's regulariser (arXiv 2508.11532): pull each sample's
feature vector toward its class centre (a running mean per class), shrinking intra-class
variance. Our choices: features are L2-normalised (so λ does not depend on feature scale) and
centres are an exponential moving average (momentum 0.9) of per-batch class means."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeatureSmoothingLoss(nn.Module):
    def __init__(self, num_classes: int, dim: int, weight: float = 0.1, momentum: float = 0.9):
        super().__init__()
        self.weight = weight
        self.momentum = momentum
        self.register_buffer("centers", torch.zeros(num_classes, dim))
        self.register_buffer("seen", torch.zeros(num_classes, dtype=torch.bool))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        f = F.normalize(features.float(), dim=1)
        with torch.no_grad():
            k = self.centers.shape[0]
            sums = torch.zeros_like(self.centers).index_add_(0, labels, f.detach())
            counts = torch.bincount(labels, minlength=k).float()
            present = counts > 0
            batch_means = sums[present] / counts[present, None]
            fresh = present & ~self.seen
            old = self.centers[present]
            m = torch.where(fresh[present, None], torch.zeros_like(old[:, :1]),
                            torch.full_like(old[:, :1], self.momentum))
            self.centers[present] = m * old + (1 - m) * batch_means
            self.seen |= present
        return self.weight * (f - self.centers[labels]).pow(2).sum(1).mean()
