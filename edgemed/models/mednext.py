"""Seed B: MedNeXt, a lightweight transformer-style CNN for 2-D classification
(Xue, Pi, Liu, Zeng, Sun; PLoS One 21(1): e0340108, 2026). Not Roy et al.'s 3-D MedNeXt.

From the paper: convolutions and MLPs only, no self-attention; a Linear-Attention FFN, a
Spatial Encoding Module (parallel multi-scale depth-wise convolutions, merged) and a Smooth
DwConv FFN (depth-wise conv between the FFN's two 1×1 layers).

Our choices (the paper's exact widths/depths are not available to us):
- Block: x + SEM(BN(x)), then x + FFN(BN(x)); BatchNorm (folds into convs at export, fast and
  INT8-friendly on edge runtimes) and layer scale.
- SpatialEncodingModule: depth-wise 3×3, 5×5, 7×7 in parallel, summed, GELU, 1×1 merge. For
  deployment the three fuse into one 7×7 (`fused_for_deploy`; same outputs).
- SmoothDwConvFFN: 1×1 expand (×4) → depth-wise 3×3 → GELU → 1×1 project.
- LinearAttentionFFN: 1×1 expand → GELU → h · sigmoid(depth-wise 3×3 (h)) → 1×1 project: a
  gating path whose cost is linear in pixels and channels (no N² attention), emphasising
  salient (lesion) responses per pixel and channel.
- Stages 1–2 use the Smooth DwConv FFN (local texture), stages 3–4 the Linear-Attention FFN.
- Sizes: small = depths 2-2-4-2, widths 32-64-128-256; base = 2-2-6-2, 48-96-192-384.
- Stem: 3×3 conv stride 1 for inputs ≤ 64 px (MedMNIST), two stride-2 3×3 convs (stride 4)
  above; the head is global average pooling → BN-free LayerNorm → Linear.
"""

from __future__ import annotations

import torch
from torch import nn

from edgemed.models.layers import ClassifierModel, DropPath, LayerScale, linear_rates


class SpatialEncodingModule(nn.Module):
    def __init__(self, dim: int, kernels: tuple[int, ...] = (3, 5, 7)):
        super().__init__()
        self.branches = nn.ModuleList(
            [nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim) for k in kernels]
        )
        self.act = nn.GELU()
        self.merge = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branches[0](x)
        for branch in self.branches[1:]:
            y = y + branch(x)
        return self.merge(self.act(y))

    def fused_for_deploy(self) -> nn.Module:
        """The same function with one depth-wise conv: the branches are linear, stride 1,
        'same'-padded and read the same input, so their kernels, centred in the largest, add up.
        Exporters use it where ops cost more than MACs (TFLite/XNNPACK: 2 convs and 2 adds fewer
        per block)."""
        k = max(b.kernel_size[0] for b in self.branches)
        first = self.branches[0]
        dw = nn.Conv2d(first.in_channels, first.out_channels, k, padding=k // 2, groups=first.groups)
        weight, bias = torch.zeros_like(dw.weight), torch.zeros_like(dw.bias)
        for b in self.branches:
            o = (k - b.kernel_size[0]) // 2
            weight[:, :, o:o + b.kernel_size[0], o:o + b.kernel_size[1]] += b.weight.detach()
            bias += b.bias.detach()
        with torch.no_grad():
            dw.weight.copy_(weight)
            dw.bias.copy_(bias)
        return FusedSpatialEncoding(dw, self.act, self.merge)


class FusedSpatialEncoding(nn.Module):
    """SpatialEncodingModule with its branches fused into `dwconv` (deployment form)."""

    def __init__(self, dwconv: nn.Conv2d, act: nn.Module, merge: nn.Conv2d):
        super().__init__()
        self.dwconv, self.act, self.merge = dwconv, act, merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(self.act(self.dwconv(x)))


class SmoothDwConvFFN(nn.Module):
    def __init__(self, dim: int, ratio: int = 4):
        super().__init__()
        hidden = dim * ratio
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x))))


class LinearAttentionFFN(nn.Module):
    def __init__(self, dim: int, ratio: int = 4):
        super().__init__()
        hidden = dim * ratio
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.attn = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc1(x))
        return self.fc2(h * torch.sigmoid(self.attn(h)))


class MedNeXtBlock(nn.Module):
    def __init__(self, dim: int, ffn: str, drop_path: float = 0.0, layer_scale: float = 1e-2):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.sem = SpatialEncodingModule(dim)
        self.gamma1 = LayerScale(dim, layer_scale)
        self.norm2 = nn.BatchNorm2d(dim)
        self.ffn = SmoothDwConvFFN(dim) if ffn == "smooth" else LinearAttentionFFN(dim)
        self.gamma2 = LayerScale(dim, layer_scale)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.gamma1(self.sem(self.norm1(x))))
        return x + self.drop_path(self.gamma2(self.ffn(self.norm2(x))))


class MedNeXt(ClassifierModel):
    def __init__(self, num_classes: int, in_channels: int = 3,
                 depths: tuple[int, ...] = (2, 2, 4, 2), dims: tuple[int, ...] = (32, 64, 128, 256),
                 stem_stride: int = 4, drop_path: float = 0.05):
        super().__init__()
        if stem_stride == 1:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], 3, padding=1),
                                      nn.BatchNorm2d(dims[0]), nn.GELU())
        elif stem_stride == 4:
            mid = max(16, dims[0] // 2)
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, mid, 3, stride=2, padding=1), nn.BatchNorm2d(mid), nn.GELU(),
                nn.Conv2d(mid, dims[0], 3, stride=2, padding=1), nn.BatchNorm2d(dims[0]), nn.GELU())
        else:
            raise ValueError(f"stem_stride must be 1 or 4, got {stem_stride}")
        self.min_image_size = stem_stride * 2 ** (len(dims) - 1)
        rates = linear_rates(drop_path, sum(depths))
        self.downsamples = nn.ModuleList()
        self.stages = nn.ModuleList()
        k = 0
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            if i > 0:
                self.downsamples.append(nn.Sequential(nn.BatchNorm2d(dims[i - 1]),
                                                      nn.Conv2d(dims[i - 1], dim, 2, stride=2)))
            ffn = "smooth" if i < 2 else "attention"
            self.stages.append(nn.Sequential(*[MedNeXtBlock(dim, ffn, rates[k + j])
                                               for j in range(depth)]))
            k += depth
        self.norm = nn.LayerNorm(dims[-1])
        self.classifier = nn.Linear(dims[-1], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages[0](self.stem(x))
        for down, stage in zip(self.downsamples, self.stages[1:]):
            x = stage(down(x))
        return self.norm(x.mean((2, 3)))

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier(f)
