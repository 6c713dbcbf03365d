"""A throwaway COPY of a bundle with INT8 artifacts added, to exercise the INT8 paths of
compare_arm.py before the real INT8 quantization stage exists. The source bundle is never
modified. Needs the x86 development install (ai-edge-quantizer, onnx, onnxruntime).

    python -m benchmarks.arm.int8_copy BUNDLE DEST [--calibration 64]

Adds, when their FP32 source artifact is in the bundle:
- `tflite-int8`: ai-edge-quantizer `static_wi8_ai8` (INT8 weights and activations, INT8 input
  and output tensors: the session quantizes the input and dequantizes the logits);
- `onnx-int8`: onnxruntime `quantize_static`, QDQ format, INT8 activations and weights.
Calibration uses real images of the bundle's data set (train split, stratified, through the
bundle's PreprocessSpec). Each artifact's `details.output_quantization` records the scale and
zero point of its output tensor (one quantization step of the logits).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgemed.export.bundle import BundleWriter, load_bundle
from edgemed.fileio import quiet_native

DEMO_NOTE = "throwaway INT8 copy made by benchmarks/arm/int8_copy.py to test the ARM comparison; not a product artifact"


def calibration_batch(bundle, n: int) -> np.ndarray:
    from edgemed.bench.accuracy import load_split

    fitted, _, _ = load_split(bundle, None, "train", None, n, seed=1)
    return bundle.preprocess.normalize(fitted)


def quantize_tflite(src: Path, dest: Path, calib: np.ndarray) -> dict:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    with quiet_native():
        it = Interpreter(model_path=str(src))
        signature, spec = next(iter(it.get_signature_list().items()))
        name = spec["inputs"][0]
        q = quantizer.Quantizer(str(src), recipe.static_wi8_ai8())
        samples = [{name: calib[i:i + 1]} for i in range(len(calib))]
        qsv = q.calibrate({signature: samples}, num_threads=1)
        result = q.quantize(qsv, enable_progress_report=False)
    dest.write_bytes(result.quantized_model)
    it = Interpreter(model_path=str(dest))
    out = it.get_output_details()[0]
    scale, zero = out["quantization"]
    return {"scale": float(scale), "zero_point": int(zero), "dtype": np.dtype(out["dtype"]).name,
            "source": "TFLite output tensor"}


def quantize_onnx(src: Path, dest: Path, calib: np.ndarray) -> dict:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from benchmarks.arm.output_quantization import onnx_output_quantization

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{"input": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self._it, None)

    with quiet_native():
        quantize_static(str(src), str(dest), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
    q = onnx_output_quantization(dest)
    return q or {}


def make_int8_copy(bundle_path: str | Path, dest: str | Path, calibration: int = 64) -> Path:
    """Copy the bundle to `dest` and add INT8 TFLite / ONNX artifacts to the copy's manifest."""
    bundle = load_bundle(bundle_path)
    dest = Path(dest)
    if dest.exists():
        raise SystemExit(f"{dest} exists: choose a new folder")
    shutil.copytree(bundle.root, dest)
    copy = load_bundle(dest)
    writer = BundleWriter(dest, class_names=copy.class_names, preprocess=copy.preprocess,
                          model=copy.manifest.get("model", {}), provenance=copy.manifest["provenance"],
                          input_name=copy.manifest["input"]["name"], base_manifest=copy.manifest)
    writer.manifest["created"] = copy.manifest.get("created")
    calib = calibration_batch(bundle, calibration)
    ids = {a.id for a in copy.artifacts}
    if "tflite-fp32" in ids:
        path = dest / "model_int8.tflite"
        q = quantize_tflite(copy.artifact("tflite-fp32").path, path, calib)
        writer.add("tflite-int8", "tflite", "int8", [path], input_layout=copy.artifact("tflite-fp32").input_layout,
                   static_batch=copy.artifact("tflite-fp32").static_batch,
                   details={"quantizer": "ai-edge-quantizer static_wi8_ai8", "calibration_images": len(calib),
                            "io": "int8 input and output tensors", "output_quantization": q, "note": DEMO_NOTE})
    if "onnx-fp32" in ids:
        path = dest / "model_int8.onnx"
        with tempfile.TemporaryDirectory() as tmp:
            # quantize_static writes helper files next to its output: work in a temp folder
            tmp_out = Path(tmp) / "model_int8.onnx"
            q = quantize_onnx(copy.artifact("onnx-fp32").path, tmp_out, calib)
            shutil.move(tmp_out, path)
        writer.add("onnx-int8", "onnx", "int8", [path],
                   details={"quantizer": "onnxruntime quantize_static (QDQ, s8s8, per-channel weights)",
                            "calibration_images": len(calib), "io": "float32 input and output",
                            "output_quantization": q, "dynamic_batch": True, "note": DEMO_NOTE})
    writer.set("note", DEMO_NOTE)
    writer.write()
    load_bundle(dest)  # verify the copy's hashes
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("dest")
    ap.add_argument("--calibration", type=int, default=64, help="calibration images (default 64)")
    args = ap.parse_args()
    out = make_int8_copy(args.bundle, args.dest, args.calibration)
    for a in load_bundle(out).artifacts:
        if a.precision == "int8":
            print(f"{a.id}: {a.file} ({a.size / 1e6:.1f} MB), output step {a.details['output_quantization'].get('scale')}")


if __name__ == "__main__":
    main()
