"""Batch augmentation with torch ops only (no torchvision): random affine (rotation, scale,
translation) through one grid_sample, horizontal flip, brightness/contrast jitter; and MixUp /
CutMix of a batch with itself (mix_batch)."""

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


def mix_batch(x: torch.Tensor, y: torch.Tensor, mixup: float, cutmix: float, generator: torch.Generator):
    """MixUp (Zhang et al. 2018: a blend of two images) or CutMix (Yun et al. 2019: a box of one
    pasted into the other) of each image with another of the batch, at a share λ ~ Beta(α, α) of
    the first; with both α > 0, one of the two per batch, evenly. Returns the mixed batch, the
    partner labels and λ (the loss is λ × CE(first labels) + (1 − λ) × CE(partner labels))."""
    import numpy as np

    use_cutmix = cutmix > 0 and (mixup <= 0 or bool(torch.rand(1, generator=generator) < 0.5))
    alpha = cutmix if use_cutmix else mixup
    # torch's Beta has no generator: a numpy one seeded from ours keeps runs and resumes exact
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(len(y), generator=generator)
    if not use_cutmix:
        return lam * x + (1 - lam) * x[perm], y[perm], lam
    h, w = x.shape[2:]
    bh, bw = round(h * math.sqrt(1 - lam)), round(w * math.sqrt(1 - lam))
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    top, bottom = max(0, cy - bh // 2), min(h, cy + bh - bh // 2)
    left, right = max(0, cx - bw // 2), min(w, cx + bw - bw // 2)
    x = x.clone()
    x[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]
    return x, y[perm], 1 - (bottom - top) * (right - left) / (h * w)  # λ of the box actually pasted
