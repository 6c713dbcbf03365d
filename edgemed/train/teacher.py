"""`edgemed train --teacher`: knowledge distillation from a trained checkpoint (Hinton et al. 2015).

The student's loss mixes cross-entropy on the labels with the KL divergence to the teacher's
temperature-softened outputs (`fit`). A teacher may be any checkpoint of the same classes and
channels, of another architecture or input size: a large model distilled into an edge-sized one,
or a model into a fresh copy of itself ("born-again" networks, Furlanello et al. 2018). It sees
each augmented training batch as its own preprocessing would have made it: renormalised with its
mean/std and resized to its input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgemed.data.preprocess import PreprocessSpec
from edgemed.errors import ModelError


class TeacherView(torch.nn.Module):
    """A teacher model fed batches normalised for the student (`student`): converts them to the
    teacher's normalisation and input size first."""

    def __init__(self, net: torch.nn.Module, student: PreprocessSpec, teacher: PreprocessSpec):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        s_mean, s_std = (torch.tensor(v).view(1, -1, 1, 1) for v in (student.mean, student.std))
        t_mean, t_std = (torch.tensor(v).view(1, -1, 1, 1) for v in (teacher.mean, teacher.std))
        # x_teacher = (x * s_std + s_mean - t_mean) / t_std, folded into one scale and shift
        self.register_buffer("scale", s_std / t_std)
        self.register_buffer("shift", (s_mean - t_mean) / t_std)
        self.size = None if tuple(teacher.size) == tuple(student.size) else tuple(teacher.size)
        self.identity = self.size is None and student.mean == teacher.mean and student.std == teacher.std

    def train(self, mode: bool = True):  # the teacher stays in eval mode (no dropout, frozen norms)
        super().train(False)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.identity:
            x = x * self.scale + self.shift
            if self.size is not None:
                down = self.size[0] < x.shape[2]
                x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=down)
        return self.net(x)


def teacher_view(ckpt, student: PreprocessSpec, class_names: list[str]) -> TeacherView:
    """The teacher checkpoint `ckpt` (read by `read_checkpoint`: safetensors only; a user factory
    builds only when trusted, edgemed.trust) as a model of the student's batches."""
    from edgemed.checkpoint import build_model

    if ckpt.class_names != class_names or ckpt.in_channels != student.channels:
        raise ModelError(f"--teacher {ckpt.path} was trained for {ckpt.in_channels} channel(s) and classes "
                         f"{ckpt.class_names}; the student has {student.channels} and {class_names}: distil from a "
                         "model of this data set's task")
    if ckpt.preprocess.resize != student.resize:
        raise ModelError(f"--teacher {ckpt.path} resizes images by {ckpt.preprocess.resize!r}, the student by "
                         f"{student.resize!r}: the teacher would see other crops than it learned from; "
                         "use a teacher with the same resize rule")
    return TeacherView(build_model(ckpt).float(), student, ckpt.preprocess)
