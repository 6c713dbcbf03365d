"""The models bench times to find a device's dense FP32 and INT8 throughput (its "roofline"):
two 256→256 1×1 convolutions (ReLU between, global pooling after) on a 256-channel 56×56 map, 411 million
multiply-accumulates per call, as ONNX (FP32, and INT8 QDQ from onnxruntime's static
quantization) and TFLite (FP32, and INT8 from ai-edge-quantizer), written into the package
(edgemed/bench/peak/) with the same exporters and INT8 routes edgemed uses for models.

    python -m benchmarks.peak_models

Re-run only to change the probe; bench reads the files and their MAC count from peak.json.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "edgemed" / "bench" / "peak"
CHANNELS, SIDE = 256, 56


def main() -> None:
    import torch

    from edgemed.compress.ort_quant import quantize_onnx
    from edgemed.compress.tflite_int8 import quantize_tflite
    from edgemed.export import onnx as onnx_export
    from edgemed.export import tflite as tflite_export

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(CHANNELS, CHANNELS, 1), torch.nn.ReLU(),
                                torch.nn.Conv2d(CHANNELS, CHANNELS, 1),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()  # (N, C): model-shaped output
    example = torch.randn(1, CHANNELS, SIDE, SIDE)
    calibration = np.random.default_rng(0).standard_normal((32, CHANNELS, SIDE, SIDE)).astype(np.float32)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        onnx_fp32 = onnx_export.export(model, example, tmp, "fp32", static_batch=True).files[0]
        shutil.copy(onnx_fp32, OUT / "conv_fp32.onnx")
        quantize_onnx(onnx_fp32, calibration, OUT / "conv_int8.onnx")
        tfl = tflite_export.export(model, example, tmp, "fp32").files[0]
        shutil.copy(tfl, OUT / "conv_fp32.tflite")
        quantize_tflite(model, calibration, OUT / "conv_int8.tflite", route="conv", fp32_path=tfl)
    macs = 2 * CHANNELS * CHANNELS * SIDE * SIDE
    (OUT / "peak.json").write_text(json.dumps({
        "macs_per_call": macs, "input_shape": [1, CHANNELS, SIDE, SIDE],
        "what": f"two {CHANNELS}→{CHANNELS} 1×1 convolutions on a {CHANNELS}-channel {SIDE}×{SIDE} map",
        "files": {"fp32": {"onnx": "conv_fp32.onnx", "tflite": "conv_fp32.tflite"},
                  "int8": {"onnx": "conv_int8.onnx", "tflite": "conv_int8.tflite"}},
        "made_by": "python -m benchmarks.peak_models"}, indent=1) + "\n")
    for p in sorted(OUT.iterdir()):
        print(p.name, p.stat().st_size)


if __name__ == "__main__":
    main()
