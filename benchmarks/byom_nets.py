"""Two users' own architectures for benchmarks/byom.py: plain PyTorch, nothing from edgemed.

`build` is what a user would pass to `edgemed import benchmarks/byom_nets.py:build`;
`build_vgg` is the other user's model, which reaches edgemed only as an ONNX file."""

from __future__ import annotations

from torch import nn


def build(num_classes: int, in_channels: int = 1, width: int = 32) -> nn.Module:
    """A small CNN: three conv-BN-ReLU stages and a linear head."""
    def stage(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(*stage(in_channels, width), nn.MaxPool2d(2), *stage(width, 2 * width), nn.MaxPool2d(2),
                         *stage(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(4 * width, num_classes))


def build_vgg(num_classes: int, in_channels: int = 3) -> nn.Module:
    """A VGG-style net with two convs per stage."""
    layers, cin = [], in_channels
    for cout in (32, 64, 128):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                   nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))
