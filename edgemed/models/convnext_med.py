"""Seed A: improved ConvNeXt-Tiny (Xia, Yin, Li; arXiv 2508.11532).

From the paper: ConvNeXt-Tiny backbone; dual global pooling (GAP ‖ GMP of the last map, 2C
values); SEVector (bottleneck MLP + sigmoid re-weighting the pooled vector); trained with the
feature-smoothing loss (see edgemed.train.losses).

Our choices (the paper gives no code):
- Blocks use 1×1 convolutions instead of Linear-on-NHWC and a permute-free channel LayerNorm,
  so exported graphs carry no layout transposes.
- SEVector reduction r=16 (hidden ≥ 8); a LayerNorm on the re-weighted vector before the
  classifier, as ConvNeXt's own head normalises its pooled vector.
- Small-input variant (`convnext_med_28`, MedMNIST 28×28): a 3×3 stride-1 stem instead of the
  4×4 patchify stem (which would leave 7×7 → 0 after three downsamples), ConvNeXt-Tiny's block
  design at half width and depths 2-2-6-2 so it trains on a CPU; stage maps 28→14→7→3.
- Stochastic depth 0.1 (Tiny) / 0.05 (small-input); layer scale init 1e-6 as in ConvNeXt.
"""

from __future__ import annotations

import torch
from torch import nn

from edgemed.models.layers import (
    ClassifierModel,
    DropPath,
    DualPool,
    LayerNorm2d,
    LayerScale,
    SEVector,
    linear_rates,
)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, drop_path: float = 0.0, layer_scale: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Conv2d(dim, 4 * dim, 1)
        self.act = nn.GELU()
        self.pwconv2 = nn.Conv2d(4 * dim, dim, 1)
        self.gamma = LayerScale(dim, layer_scale)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x)))))
        return x + self.drop_path(self.gamma(y))


class ConvNeXtMed(ClassifierModel):
    """ConvNeXt with dual pooling and SEVector head.

    Args: num_classes, in_channels, depths, dims, stem ("patchify4" | "conv3"), drop_path,
    se_reduction.
    """

    def __init__(self, num_classes: int, in_channels: int = 3,
                 depths: tuple[int, ...] = (3, 3, 9, 3), dims: tuple[int, ...] = (96, 192, 384, 768),
                 stem: str = "patchify4", drop_path: float = 0.1, se_reduction: int = 16,
                 layer_scale: float = 1e-6):
        super().__init__()
        if stem == "patchify4":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], 4, stride=4),
                                      LayerNorm2d(dims[0], eps=1e-6))
            stride = 4
        elif stem == "conv3":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], 3, padding=1),
                                      LayerNorm2d(dims[0], eps=1e-6))
            stride = 1
        else:
            raise ValueError(f"stem must be 'patchify4' or 'conv3', got {stem!r}")
        self.min_image_size = stride * 2 ** (len(dims) - 1)
        rates = linear_rates(drop_path, sum(depths))
        self.downsamples = nn.ModuleList()
        self.stages = nn.ModuleList()
        k = 0
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            if i > 0:
                self.downsamples.append(nn.Sequential(LayerNorm2d(dims[i - 1], eps=1e-6),
                                                      nn.Conv2d(dims[i - 1], dim, 2, stride=2)))
            self.stages.append(nn.Sequential(*[ConvNeXtBlock(dim, rates[k + j], layer_scale)
                                               for j in range(depth)]))
            k += depth
        self.pool = DualPool()
        self.se = SEVector(2 * dims[-1], se_reduction)
        self.norm = nn.LayerNorm(2 * dims[-1], eps=1e-6)
        self.classifier = nn.Linear(2 * dims[-1], num_classes)
        self.apply(_init)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages[0](self.stem(x))
        for down, stage in zip(self.downsamples, self.stages[1:]):
            x = stage(down(x))
        return self.norm(self.se(self.pool(x)))

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier(f)


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
