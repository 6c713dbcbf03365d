"""Errors a user can act on. The CLI prints one line for each and exits with code 2."""

from __future__ import annotations


class EdgemedError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""

    exit_code = 2


class DataError(EdgemedError):
    """A data set is missing, corrupt or inconsistent."""


class ModelError(EdgemedError):
    """Unknown model, wrong kwargs, or an input the model cannot take."""


class CheckpointError(EdgemedError):
    """A checkpoint that cannot be read or does not fit its architecture."""


class BundleError(EdgemedError):
    """A deployment bundle that is missing, tampered with or malformed."""


class ExportError(EdgemedError):
    """An export that failed (unsupported op, parity beyond tolerance)."""


class RuntimeUnavailable(EdgemedError):
    """A runtime, device or optional package that is not installed here."""


class TrainingDiverged(EdgemedError):
    """Loss became NaN or infinite."""


# extras that install torch (tests/test_doctor.py holds this to pyproject.toml)
TORCH_EXTRAS = frozenset({"train", "onnx", "openvino", "tflite", "prune", "quantize", "executorch", "monai",
                          "all", "dev"})


def install_command(extra: str, torch_missing: bool | None = None) -> str:
    """`pip install "edgemed[EXTRA]"`, after the CPU torch where the extra needs torch and it is
    missing: pip would otherwise resolve torch to several GB of CUDA packages."""
    cmd = f'pip install "edgemed[{extra}]"'
    if torch_missing is None:
        import importlib.util

        try:
            torch_missing = importlib.util.find_spec("torch") is None
        except (ImportError, ValueError):
            torch_missing = True
    return f"pip install torch==2.13.0 (the CPU build) first, then {cmd}" if extra in TORCH_EXTRAS and torch_missing else cmd


def missing_extra(package: str, extra: str) -> RuntimeUnavailable:
    """The standard message for an optional dependency that is not installed."""
    return RuntimeUnavailable(f"{package} is not installed: {install_command(extra)}")


# top-level module → (package to name, extra that installs it)
OPTIONAL_MODULES = {
    "torch": ("torch", "train"), "safetensors": ("safetensors", "train"),
    "onnx": ("onnx", "onnx"), "onnxscript": ("onnxscript", "onnx"),
    "onnxruntime": ("onnxruntime", "runtime"), "ai_edge_litert": ("ai-edge-litert", "runtime"),
    "openvino": ("OpenVINO", "openvino"), "litert_torch": ("litert-torch", "tflite"),
    "ai_edge_quantizer": ("ai-edge-quantizer", "tflite"), "nncf": ("NNCF", "quantize"),
    "torchao": ("torchao", "quantize"), "torch_pruning": ("torch-pruning", "prune"),
    "matplotlib": ("matplotlib", "report"), "pydicom": ("pydicom", "dicom"),
    "executorch": ("executorch", "executorch"),
}


def from_import_error(e: ImportError) -> RuntimeUnavailable | None:
    """The install hint for an optional package that failed to import, if it is one of ours."""
    name = (getattr(e, "name", None) or "").split(".")[0]
    if not name:
        import re

        m = re.search(r"No module named '([\w.]+)'", str(e))
        name = m.group(1).split(".")[0] if m else ""
    if name in OPTIONAL_MODULES:
        package, extra = OPTIONAL_MODULES[name]
        return missing_extra(package, extra)
    return None
