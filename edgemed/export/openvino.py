"""OpenVINO IR via `openvino.convert_model` + `save_model`: FP32, or FP16-compressed weights."""

from __future__ import annotations

from pathlib import Path

from edgemed.errors import missing_extra
from edgemed.export.base import ExportedFiles

PRECISIONS = ("fp32", "fp16")


def export(model, example, folder: Path, precision: str, *, static_batch: bool = False,
           layout: str = "NCHW") -> ExportedFiles:
    try:
        import openvino as ov
    except ImportError:
        raise missing_extra("OpenVINO", "openvino") from None
    sub = folder / f"openvino_{precision}"
    sub.mkdir(parents=True, exist_ok=True)
    shape = list(example.shape)
    shape[0] = 1 if static_batch else -1
    ov_model = ov.convert_model(model, example_input=example[:1], input=[ov.PartialShape(shape)])
    xml = sub / "model.xml"
    # save_model compresses to FP16 by default; FP32 artifacts must stay FP32
    ov.save_model(ov_model, str(xml), compress_to_fp16=(precision == "fp16"))
    return ExportedFiles(files=[xml, xml.with_suffix(".bin")], static_batch=1 if static_batch else None,
                         details={"converter": "openvino.convert_model", "openvino": ov.__version__,
                                  "dynamic_batch": not static_batch,
                                  "weights": "fp16-compressed" if precision == "fp16" else "fp32"})
