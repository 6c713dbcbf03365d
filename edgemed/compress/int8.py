"""The one interface every INT8 route implements: `quantize(job: Int8Job) -> Int8Files`.

A route is named in its format's row of edgemed/formats.py ("module:function"); quantize and
optimize call `run_route(job)` and never branch on the format.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgemed.errors import EdgemedError
from edgemed.formats import FORMATS


@dataclass
class Int8Job:
    format: str
    route: str
    model: object  # the torch module in deploy form (None for an ONNX source)
    example: object  # a (1, C, H, W) torch tensor
    calibration: np.ndarray  # float32 NCHW, preprocessed
    folder: Path  # the bundle's staging folder: the route writes its files here
    fp32_file: Path  # this format's FP32 artifact, parity-checked, to start from where the route can
    keep_float: list[str] = field(default_factory=list)  # module names that stay float
    accuracy: object | None = None  # an AccuracyTarget: routes with their own accuracy control use it
    preset: str = "performance"
    model_type: str = "cnn"


@dataclass
class Int8Files:
    files: list[Path]  # primary file first
    details: dict  # for the manifest: route, tool, ignored layers, calibration images, ...


def routes_of(fmt: str) -> tuple[str, ...]:
    return tuple(FORMATS[fmt].routes)


def _route_function(fmt: str, route: str):
    table = FORMATS[fmt].routes
    if route not in table:
        raise EdgemedError(f"unknown {fmt} route {route!r}: use {', '.join(table)}")
    module, function = table[route].split(":")
    return getattr(importlib.import_module(module), function)


def own_accuracy_control(fmt: str, route: str) -> bool:
    """Routes that search float layers themselves when `Int8Job.accuracy` is given (NNCF's
    `quantize_with_accuracy_control`): they say so with an `own_accuracy_control = True`
    attribute. The others get the shared search (edgemed/compress/accuracy_control.py)."""
    return bool(getattr(_route_function(fmt, route), "own_accuracy_control", False))


def run_route(job: Int8Job) -> Int8Files:
    return _route_function(job.format, job.route)(job)


def route_layers(fmt: str, route: str, model) -> list[str]:
    """The layers a route turns INT8 (what accuracy control may revert): the route module's own
    `route_layers(model, route)` where it has one (TFLite routes leave layer types float), else
    every quantizable layer."""
    module = importlib.import_module(FORMATS[fmt].routes[route].split(":")[0])
    if hasattr(module, "route_layers"):
        return module.route_layers(model, route)
    from edgemed.compress.scope import quantizable_layers

    return quantizable_layers(model)
