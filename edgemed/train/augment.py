"""Batch augmentation with torch ops only (no torchvision): random affine (rotation, scale,
translation) through one grid_sample, horizontal flip, brightness/contrast jitter."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PRESETS = {
    "none": None,
    "light": dict(rotate=10.0, scale=(0.9, 1.1), translate=0.08, flip=True, jitter=0.1, erase=0.0),
    "strong": dict(rotate=20.0, scale=(0.8, 1.2), translate=0.12, flip=True, jitter=0.2, erase=0.25),
}


def augment(x: torch.Tensor, preset: str, generator: torch.Generator) -> torch.Tensor:
    """x: normalised NCHW float batch. Returns an augmented copy."""
    cfg = PRESETS[preset]
    if cfg is None:
        return x
    n = x.shape[0]

    def uniform(lo, hi):
        return torch.rand(n, generator=generator) * (hi - lo) + lo

    angle = uniform(-cfg["rotate"], cfg["rotate"]) * math.pi / 180
    scale = uniform(*cfg["scale"])
    tx, ty = uniform(-cfg["translate"], cfg["translate"]), uniform(-cfg["translate"], cfg["translate"])
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if cfg["flip"] else torch.ones(n)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if cfg["jitter"]:
        contrast = uniform(1 - cfg["jitter"], 1 + cfg["jitter"]).view(n, 1, 1, 1)
        bright = uniform(-cfg["jitter"], cfg["jitter"]).view(n, 1, 1, 1)
        mean = x.mean((1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean + bright
    if cfg["erase"]:
        h, w = x.shape[2:]
        eh, ew = max(1, h // 4), max(1, w // 4)
        for i in torch.nonzero(torch.rand(n, generator=generator) < cfg["erase"]).flatten().tolist():
            top = int(torch.randint(0, h - eh + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - ew + 1, (1,), generator=generator))
            x[i, :, top:top + eh, left:left + ew] = 0.0
    return x
