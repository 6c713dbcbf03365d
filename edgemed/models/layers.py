"""Layers shared by the zoo. Everything here exports with torch.export (no data-dependent
control flow) and is understood by Torch-Pruning's dependency graph."""

from __future__ import annotations

import torch
from torch import nn


def linear_rates(last: float, n: int) -> list[float]:
    """Drop-path rates rising from 0 to `last` over n blocks; computed on the CPU explicitly so a
    model can also be built on the meta device (to size it before allocating it)."""
    return torch.linspace(0, last, n, device="cpu").tolist()


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW map, computed in place without permutes (permutes
    become transposes in TFLite/OpenVINO graphs). Subclassing nn.LayerNorm lets Torch-Pruning
    prune its weight and bias with the channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class DropPath(nn.Module):
    """Stochastic depth for residual branches; the identity at inference."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)


class DualPool(nn.Module):
    """Global average ‖ global max pooling: (N,C,H,W) → (N,2C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1)


class SEVector(nn.Module):
    """Squeeze-and-excitation on a pooled vector: a bottleneck MLP with a sigmoid gives one
    weight per entry, which rescales the vector."""

    def __init__(self, dim: int, reduction: int = 16):
        super().__init__()
        hidden = max(8, dim // reduction)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v * torch.sigmoid(self.fc2(self.act(self.fc1(v))))


class LayerScale(nn.Module):
    """Per-channel residual scale (ConvNeXt's gamma) as a module so pruning tools see it."""

    def __init__(self, dim: int, init: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None]


class ClassifierModel(nn.Module):
    """Base for zoo models: `forward` gives logits; `forward_features` the vector before the
    classifier (used by the feature-smoothing loss); `head` maps features to logits."""

    min_image_size: int = 8

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.forward_features(x)
        return self.head(f), f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
