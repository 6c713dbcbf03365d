"""`edgemed train --teacher`: knowledge distillation from a trained checkpoint (Hinton et al. 2015).

The student's loss mixes cross-entropy on the labels with the KL divergence to the teacher's
temperature-softened outputs (`fit`). A teacher may be any checkpoint of the same classes and
channels, of another architecture or input size: a large model distilled into an edge-sized one,
or a model into a fresh copy of itself ("born-again" networks, Furlanello et al. 2018). It sees
each augmented training batch (or crop, under --train-crop) as its own preprocessing would have
made it: renormalised with its mean/std and rescaled by its input size over the student's. A
teacher with a larger input than the student's sees the student's images upscaled, not the detail
of its own size.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from edgemed.data.preprocess import PreprocessSpec
from edgemed.errors import ModelError


class TeacherView(torch.nn.Module):
    """A teacher model fed batches normalised for the student (`student`): converts them to the
    teacher's normalisation and scale first."""

    def __init__(self, net: torch.nn.Module, student: PreprocessSpec, t: PreprocessSpec):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        s_mean, s_std = (torch.tensor(v).view(1, -1, 1, 1) for v in (student.mean, student.std))
        t_mean, t_std = (torch.tensor(v).view(1, -1, 1, 1) for v in (t.mean, t.std))
        # x_teacher = (x * s_std + s_mean - t_mean) / t_std, folded into one scale and shift
        self.register_buffer("scale", s_std / t_std)
        self.register_buffer("shift", (s_mean - t_mean) / t_std)
        self.same_norm = student.mean == t.mean and student.std == t.std
        # the teacher's pixels per student pixel, per axis (a crop is rescaled like the whole image)
        self.ratio = (t.size[0] / student.size[0], t.size[1] / student.size[1])

    def train(self, mode: bool = True):  # the teacher stays in eval mode (no dropout, frozen norms)
        super().train(False)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.same_norm:
            x = x * self.scale + self.shift
        h, w = x.shape[2:]
        size = (max(1, round(h * self.ratio[0])), max(1, round(w * self.ratio[1])))
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=size[0] < h)
        return self.net(x)


def load_teacher(path: str | Path):
    """(checkpoint, model) of a teacher file. It loads like any checkpoint: safetensors only, a
    user factory only when trusted (edgemed.trust), finite weights."""
    from edgemed.checkpoint import build_model, read_checkpoint
    from edgemed.onnx_source import is_onnx_source, refuse_torch_only

    if is_onnx_source(path):
        raise refuse_torch_only("--teacher")
    ckpt = read_checkpoint(path)
    return ckpt, build_model(ckpt).float()


def check_teacher(ckpt, channels: int, class_names: list[str], resize: str | None = None) -> None:
    """A teacher must know the student's classes, on images of the student's channels, resized by
    the student's rule (`resize`, where the student's is already fixed by --init)."""
    if ckpt.class_names != class_names or ckpt.in_channels != channels:
        raise ModelError(f"--teacher {ckpt.path} was trained for {ckpt.in_channels} channel(s) and classes "
                         f"{ckpt.class_names}; the data set has {channels} and {class_names}: distil from a "
                         "model of this data set's task")
    if resize is not None and ckpt.preprocess.resize != resize:
        raise ModelError(f"--teacher {ckpt.path} resizes images by {ckpt.preprocess.resize!r}, the --init checkpoint "
                         f"by {resize!r}: the teacher would see other crops than it learned from; use a teacher and "
                         "a starting checkpoint with the same resize rule")
