"""The one table of model formats and the runtimes that read them.

Export, runtime selection, predict, bench's cold-start probe, quantize, optimize, the recipe runner,
doctor, the CLI help and the tests read these two tables; nothing else lists formats. A new format
is one `Format` row plus its own files: an exporter (`export(model, example, folder, precision, *,
static_batch, layout) -> ExportedFiles`), a runtime (`load_library()`, `devices()` and a `Session`), and INT8 routes
(`quantize(job: Int8Job) -> Int8Files`, edgemed/compress/int8.py). No torch here: devices read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgemed.errors import EdgemedError


@dataclass(frozen=True)
class Runtime:
    name: str
    module: str  # edgemed.runtime.X: devices() (imports the library) and the Session class
    session: str
    package: str  # the distribution whose version is reported
    extra: str  # `pip install "edgemed[EXTRA]"` installs it


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str  # the primary model file's suffix
    runtimes: tuple[str, ...]  # first: the default runtime
    exporter: str | None = None  # module with export(...); None: not exported (the torch reference)
    extra: str = "train"  # the extra that exports and quantizes it
    precisions: tuple[str, ...] = ("fp32",)  # float precisions the exporter makes
    routes: dict[str, str] = field(default_factory=dict)  # INT8 route → "module:function"; first: default
    default: bool = False  # in export's and quantize's default set
    layouts: tuple[str, ...] = ("NCHW",)  # input layouts the exporter can make; first: default
    preference: int = 99  # predict's order when nothing is chosen: small on-device runtimes first
    needs: tuple[str, ...] = ()  # top-level modules its exporter imports (is it exportable here?)


RUNTIMES = {r.name: r for r in (
    Runtime("onnxruntime", "edgemed.runtime.onnx", "OnnxSession", "onnxruntime", "runtime-onnx"),
    Runtime("openvino", "edgemed.runtime.openvino", "OpenVINOSession", "openvino", "openvino"),
    Runtime("litert", "edgemed.runtime.litert", "LiteRTSession", "ai-edge-litert", "runtime-litert"),
    Runtime("executorch", "edgemed.runtime.executorch", "ExecuTorchSession", "executorch", "executorch"),
    Runtime("torch", "edgemed.runtime.torch", "TorchSession", "torch", "train"),
)}

_TFLITE_ROUTE = "edgemed.compress.tflite_int8:quantize"
FORMATS = {f.name: f for f in (
    # ONNX route `ort` first: measured fastest on onnxruntime and as accurate (benchmarks/quantize_routes.py)
    Format("onnx", ".onnx", ("onnxruntime", "openvino"), "edgemed.export.onnx", "onnx", ("fp32", "fp16"),
           {"ort": "edgemed.compress.ort_quant:quantize", "nncf": "edgemed.compress.nncf_quant:quantize_onnx_route",
            "pt2e": "edgemed.compress.pt2e:quantize"}, default=True, preference=1, needs=("onnx", "onnxscript")),
    Format("openvino", ".xml", ("openvino",), "edgemed.export.openvino", "openvino", ("fp32", "fp16"),
           {"nncf": "edgemed.compress.nncf_quant:quantize_openvino_route"}, default=True, preference=2,
           needs=("openvino",)),
    Format("tflite", ".tflite", ("litert",), "edgemed.export.tflite", "tflite", ("fp32", "fp16"),
           {"conv": _TFLITE_ROUTE, "conv_fc": _TFLITE_ROUTE, "all": _TFLITE_ROUTE}, default=True,
           layouts=("NCHW", "NHWC"), preference=0, needs=("litert_torch",)),
    # PyTorch's on-device runtime with the XNNPACK delegate (ARM boards); its runtime needs torch
    Format("executorch", ".pte", ("executorch",), "edgemed.export.executorch", "executorch", ("fp32",),
           {"xnnpack": "edgemed.compress.executorch_int8:quantize"}, preference=3, needs=("executorch",)),
    Format("torch", ".safetensors", ("torch",), preference=4),
)}

EXPORTABLE = tuple(f for f in FORMATS if FORMATS[f].exporter)
DEFAULT_FORMATS = tuple(f for f in FORMATS if FORMATS[f].default)
QUANTIZABLE = tuple(f for f in FORMATS if FORMATS[f].routes)
# quantize's default order: OpenVINO first, its NNCF accuracy control teaches the other formats
# which layers to keep float
QUANTIZE_DEFAULT = ("openvino", *(f for f in DEFAULT_FORMATS if f != "openvino"))


def exportable_here() -> list[str]:
    """The exportable formats whose converters are installed here (nothing is imported)."""
    import importlib.util

    return [f for f in EXPORTABLE if all(importlib.util.find_spec(m) is not None for m in FORMATS[f].needs)]


def of_file(path) -> str:
    """The format of a model file, from its suffix."""
    suffix = Path(path).suffix.lower()
    for f in FORMATS.values():
        if f.suffix == suffix:
            return f.name
    raise EdgemedError(f"{path}: unknown model file type {suffix!r} "
                       f"({', '.join(f.suffix for f in FORMATS.values())})")


def install_hint(runtime_name: str) -> str:
    """The command that installs a runtime edgemed can run bundles with."""
    from edgemed.errors import install_command

    return install_command(RUNTIMES[runtime_name].extra if runtime_name in RUNTIMES else "runtime")


def listing(names=None) -> str:
    """For CLI help: 'onnx, openvino, tflite, executorch'."""
    return ", ".join(names if names is not None else EXPORTABLE)
