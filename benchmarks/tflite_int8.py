"""Why static INT8 TFLite was slower than FP32 under XNNPACK, and the fix (edgemed.compress.tflite_int8).

For convnext_med at 224×224 (SARS-CoV-2 CT), convnext_med_28 at 28×28 and mednext_small at 28×28
(PneumoniaMNIST) it builds, from one torch model each:
  fp32             FP32 TFLite as edgemed exports it today (edgemed.export.tflite)
  fp32_split       FP32 with the > 25-tap depth-wise convs split (tflite_int8.split_large_depthwise)
  int8_all         ai-edge-quantizer `static_wi8_ai8` on every op: the baseline that was slow
  int8_all_split   the same recipe on the split model (separates the two causes)
  int8_conv        route `conv` (the default): split + INT8 CONV_2D only
  int8_conv_fc     route `conv_fc`: also FULLY_CONNECTED
  pt2e             litert-torch's PT2E route (PT2EQuantizer, symmetric per-channel static config)
and records per-op findings (op types by dtype, ops XNNPACK does not delegate), batch-1 latency of
all of them interleaved A B C … in one process (1 and 2 threads; medians with min/max), parity with
PyTorch on real test images (max |Δlogit|, top-1 agreement, accuracy, AUC) and a depth-wise kernel
micro-benchmark (7×7 vs 5×5 vs split 7×7, FP32 and INT8).

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.tflite_int8 [--only convnext_med_28 ...]

Trained checkpoints from benchmarks/train_seeds.py are used where present (accuracy then means
something); otherwise the model has random weights with trained-like layer scale (U(0.05, 0.5))
and LayerNorm affine (N(1, 0.2), N(0, 0.1)) — ConvNeXt's 1e-6 layer-scale init makes the residual
branches vanish, which would give the residual adds unrealistic INT8 scales.
Results: benchmarks/results/tflite_int8.{json,md}; work files in benchmarks/work/tflite_int8/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback
from pathlib import Path

from benchmarks.common import WORK, command_line, load_results, page, save_results
from edgemed.report.tables import Table

CONFIGS = [
    dict(key="convnext_med-224", model="convnext_med", size=224, dataset="sarscov2_ct_224",
         checkpoint="convnext_med-sarscov2_ct_224", rounds=60, eval_images=248),
    dict(key="convnext_med_28-28", model="convnext_med_28", size=28, dataset="pneumoniamnist",
         checkpoint="convnext_med_28-pneumoniamnist", rounds=400, eval_images=None),
    dict(key="mednext_small-28", model="mednext_small", size=28, dataset="pneumoniamnist",
         checkpoint="mednext_small-pneumoniamnist", rounds=400, eval_images=None),
]
VARIANTS = ("fp32", "fp32_split", "int8_all", "int8_all_split", "int8_conv", "int8_conv_fc", "pt2e")
CALIBRATION_IMAGES = 128
PT2E_CALIBRATION_IMAGES = 32  # its HistogramObserver is slow
THREADS = (1, 2)
TARGET = {"accuracy_drop_points": 0.5, "auc_drop": 0.005}


def load_model(cfg: dict):
    """(torch model, PreprocessSpec, where the weights come from)."""
    import torch

    from benchmarks.train_seeds import checkpoint_path
    from edgemed.data.preprocess import PreprocessSpec

    ck = checkpoint_path(cfg["checkpoint"])
    if ck.exists():
        from edgemed.checkpoint import load_checkpoint

        ckpt, model = load_checkpoint(ck)
        return model.eval(), ckpt.preprocess, f"trained checkpoint {ck.name}"
    from edgemed.models import create_model
    from edgemed.models.layers import LayerNorm2d, LayerScale

    torch.manual_seed(0)
    model = create_model(cfg["model"], num_classes=2, in_channels=1, image_size=cfg["size"]).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LayerScale):
                m.weight.uniform_(0.05, 0.5)
            elif isinstance(m, (LayerNorm2d, torch.nn.LayerNorm)):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.1)
    spec = PreprocessSpec((cfg["size"],) * 2, 1, (0.5,), (0.25,))
    return model, spec, "random weights (trained-like layer scale / LayerNorm affine; no checkpoint)"


def images(cfg: dict, spec, split: str, limit: int | None):
    from edgemed.data.datasets import load_dataset, prepare_split

    x, y = prepare_split(load_dataset(cfg["dataset"]), split, spec, limit=limit)
    return spec.normalize(x).astype("float32"), y


def pt2e_convert(model, calib, path: Path) -> None:
    """The PT2E route of litert-torch as documented: global symmetric per-channel static config."""
    import litert_torch
    import torch
    from litert_torch.quantize.pt2e_quantizer import (
        PT2EQuantizer,
        get_symmetric_quantization_config,
    )
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgemed.fileio import quiet_native

    args = (torch.from_numpy(calib[:1]),)
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    prepared = prepare_pt2e(torch.export.export(model, args).module(), quantizer)
    with torch.no_grad():
        for i in range(len(calib)):
            prepared(torch.from_numpy(calib[i:i + 1]))
    converted = convert_pt2e(prepared, fold_quantize=False)
    with quiet_native():
        litert_torch.convert(converted, args, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))


def build(cfg: dict, model, calib, folder: Path) -> dict:
    """Every variant's file (or the error that stopped it) and the quantizer's details."""
    import torch

    from edgemed.compress import tflite_int8 as t
    from edgemed.export import tflite
    from edgemed.fileio import quiet_native

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict] = {}

    def step(name, fn):
        t0 = time.perf_counter()
        try:
            details = fn(folder / f"{name}.tflite") or {}
            probe(folder / f"{name}.tflite")
            out[name] = {"path": folder / f"{name}.tflite", "seconds": round(time.perf_counter() - t0, 1),
                         "details": details}
        except Exception as e:  # noqa: BLE001 - a route that fails is a finding, not a crash
            first = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:400]
            out[name] = {"error": f"{e.__class__.__name__}: {first}",
                         "trace_tail": traceback.format_exc().strip().splitlines()[-3:]}
        print(f"  {name}: {out[name].get('error') or str(out[name]['seconds']) + ' s'}", flush=True)

    x1 = torch.from_numpy(calib[:1])

    def fp32(p):
        with quiet_native():
            tflite.convert(model, x1, p)

    step("fp32", fp32)
    step("fp32_split", lambda p: {"split": t.convert_fp32(model, calib[:1], p)})
    step("int8_all", lambda p: t.quantize_tflite(model, calib, p, route="all", split_depthwise=False,
                                                 fp32_path=out["fp32"]["path"]))
    step("int8_all_split", lambda p: t.quantize_tflite(model, calib, p, route="all", split_depthwise=True,
                                                       fp32_path=out["fp32_split"]["path"]))
    step("int8_conv", lambda p: t.quantize_tflite(model, calib, p, route="conv", fp32_path=out["fp32_split"]["path"]))
    step("int8_conv_fc", lambda p: t.quantize_tflite(model, calib, p, route="conv_fc",
                                                     fp32_path=out["fp32_split"]["path"]))
    step("pt2e", lambda p: pt2e_convert(model, calib[:PT2E_CALIBRATION_IMAGES], p))
    return out


PROBE = """
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
for threads in (1, 2):
    it = Interpreter(model_path=sys.argv[1], num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.random.default_rng(0).standard_normal(d["shape"]).astype(d["dtype"]))
    for _ in range(3):
        it.invoke()
"""


def probe(path: Path) -> None:
    """Load and run a file in a child process first: some INT8 graphs (dilated INT8 depth-wise
    convs) make XNNPACK fail to prepare or abort the process."""
    import subprocess

    r = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        lines = [ln for ln in (r.stderr or "").strip().splitlines() if ln.strip() and not ln.startswith(("W", "I0", "INFO"))]
        raise RuntimeError(f"LiteRT cannot run it (exit {r.returncode}): {(lines or ['no message'])[-1][:300]}")


def findings(path: Path) -> dict:
    from edgemed.compress import tflite_int8 as t

    summary = t.op_summary(path)
    return {"ops": sum(sum(v.values()) for v in summary.values()), "op_types": summary,
            "transposes": sum(summary.get("TRANSPOSE", {}).values()),
            "quantize_dequantize": sum(summary.get("QUANTIZE", {}).values()) + sum(summary.get("DEQUANTIZE", {}).values()),
            "large_depthwise": t._large_depthwise_ops(path), "xnnpack": t.xnnpack_delegation(path)}


def parity(model, path: Path, x, y) -> dict:
    import torch

    from edgemed.export.parity import compare
    from edgemed.metrics import auc_score, softmax
    from edgemed.runtime.litert import LiteRTSession

    with torch.inference_mode():
        ref = torch.cat([model(torch.from_numpy(x[i:i + 64])) for i in range(0, len(x), 64)]).numpy()
    got = LiteRTSession(str(path), threads=2).run(x)
    p = compare(ref, got)
    k = ref.shape[1]
    acc_ref, acc = float((ref.argmax(1) == y).mean()), float((got.argmax(1) == y).mean())
    auc_ref, auc = auc_score(y, softmax(ref), k), auc_score(y, softmax(got), k)
    return {"n": p["n"], "max_abs_diff": p["max_abs_diff"], "mean_abs_diff": p["mean_abs_diff"],
            "top1_agreement": p["top1_agreement"], "accuracy_fp32_torch": acc_ref, "accuracy": acc,
            "accuracy_drop_points": 100 * (acc_ref - acc), "auc_fp32_torch": auc_ref, "auc": auc,
            "auc_drop": (auc_ref - auc) if auc is not None and auc_ref is not None else None,
            "reference_max_abs_logit": p["reference_max_abs_logit"]}


def latency(paths: dict[str, Path], threads: int, rounds: int) -> dict:
    """Batch-1 model-call latency of every file, interleaved in one process."""
    import numpy as np

    from edgemed.bench.latency import interleaved
    from edgemed.fileio import quiet_native
    from edgemed.runtime.litert import LiteRTSession

    calls = {}
    for name, p in paths.items():
        with quiet_native():
            s = LiteRTSession(str(p), threads=threads)
        prepared = s.prepare(np.zeros((1, *s._in["shape"][1:]), np.float32))
        calls[name] = (lambda s=s, x=prepared: s.infer(x))
    samples = interleaved(calls, warmup=10, iterations=rounds)
    return {k: {"median_ms": statistics.median(v) * 1e3, "min_ms": min(v) * 1e3, "max_ms": max(v) * 1e3,
                "n": len(v)} for k, v in samples.items()}


def depthwise_micro(folder: Path, rounds: int = 300) -> dict:
    """One 56×56×96 depth-wise conv (convnext_med stage 1): 7×7, 5×5, 7×7 split; FP32 and INT8."""
    import numpy as np
    import torch
    from torch import nn

    from edgemed.compress import tflite_int8 as t

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    c, hw = 96, 56
    x = np.random.default_rng(0).standard_normal((32, c, hw, hw)).astype("float32")
    files = {}
    class Pool(nn.Module):
        def forward(self, v):
            return v.mean((2, 3))

    for name, k in (("dw7x7", 7), ("dw5x5", 5), ("dw7x7_split", 7)):
        m = nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, groups=c), nn.Conv2d(c, c, 1), Pool()).eval()
        split = name.endswith("split")
        p = folder / f"{name}_fp32.tflite"
        t.convert_fp32(m, x[:1], p, split_depthwise=split)
        files[f"{name} fp32"] = p
        q = folder / f"{name}_int8.tflite"
        try:
            t.quantize_tflite(m, x, q, route="all", fp32_path=p, split_depthwise=split)
            probe(q)
            files[f"{name} int8"] = q
        except Exception as e:  # noqa: BLE001
            print(f"  {name} int8: {e}", flush=True)
    # the 1×1 conv keeps the graph NHWC inside; the global mean makes (N, C) "logits"
    out = {}
    for threads in THREADS:
        out[str(threads)] = latency(files, threads, rounds)
    return {"shape": [1, c, hw, hw], "note": "each model: depth-wise conv, 1×1 conv (96→96), global mean; NCHW I/O",
            "latency": out}


def run_one(cfg: dict) -> dict:
    model, spec, weights = load_model(cfg)
    calib, _ = images(cfg, spec, "train", CALIBRATION_IMAGES)
    x, y = images(cfg, spec, "test", cfg["eval_images"])
    folder = WORK / "tflite_int8" / cfg["key"]
    print(f"=== {cfg['key']}: {weights}; calibration {len(calib)}, test {len(x)}", flush=True)
    built = build(cfg, model, calib, folder)
    ok = {k: v["path"] for k, v in built.items() if "path" in v}
    rows = {}
    for name, b in built.items():
        row = {"seconds": b.get("seconds"), "error": b.get("error")}
        if "path" in b:
            row["size"] = b["path"].stat().st_size
            row["findings"] = findings(b["path"])
            row["parity"] = parity(model, b["path"], x, y)
            d = b.get("details") or {}
            row["quantizer"] = {k: d[k] for k in ("route", "quantized_layers", "fp32_source", "split_depthwise",
                                                  "calibration") if k in d}
        rows[name] = row
        print(f"  {name}: parity {row.get('parity', {}).get('top1_agreement')}", flush=True)
    lat = {str(th): latency(ok, th, cfg["rounds"]) for th in THREADS}
    return {"key": cfg["key"], "command": command_line(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "model": cfg["model"], "image_size": cfg["size"], "dataset": cfg["dataset"],
            "weights": weights, "calibration_images": len(calib), "test_images": len(x),
            "variants": rows, "latency": lat, "rounds": cfg["rounds"]}


# ---------------------------------------------------------------------------------------------


def _ms(lat: dict, name: str) -> str:
    r = lat.get(name)
    return f"{r['median_ms']:.2f} [{r['min_ms']:.2f}, {r['max_ms']:.2f}]" if r else "–"


def _ratio(lat: dict, a: str, b: str) -> str:
    """b / a from medians, and from minimums (the least disturbed runs) in brackets."""
    if a not in lat or b not in lat:
        return "–"
    return f"{lat[b]['median_ms'] / lat[a]['median_ms']:.2f}× ({lat[b]['min_ms'] / lat[a]['min_ms']:.2f}×)"


def _summary_rows(runs: list[dict], threads: list[int]) -> list[list[str]]:
    rows = []
    for r in runs:
        v = r["variants"]
        if "parity" not in v.get("int8_conv", {}):
            continue
        pc, pa = v["int8_conv"]["parity"], v.get("int8_all", {}).get("parity")
        for th in threads:
            lat = r["latency"][str(th)]
            med = [f"{lat[k]['median_ms']:.2f}" if k in lat else "–" for k in ("fp32", "int8_all", "fp32_split", "int8_conv")]
            rows.append([f"{r['model']} {r['image_size']}²", str(th), *med, _ratio(lat, "int8_conv", "fp32"),
                         _ratio(lat, "int8_conv", "fp32_split"),
                         f"{pc['max_abs_diff']:.3g}" + (f" ({pa['max_abs_diff']:.3g})" if pa else ""),
                         f"{pc['top1_agreement']:.4f}" + (f" ({pa['top1_agreement']:.4f})" if pa else "")])
    return rows


def _split_savings(runs: list[dict]) -> str:
    """What the depth-wise split alone saves in each whole model, one list item per model."""
    lines = []
    for r in runs:
        lat = r["latency"]["1"]
        if "fp32" in lat and "fp32_split" in lat:
            f, fs = lat["fp32"]["median_ms"], lat["fp32_split"]["median_ms"]
            line = f"- {r['model']} {r['image_size']}²: FP32 {f:.2f} → {fs:.2f} ms (−{100 * (f - fs) / f:.0f} %)"
            if "int8_all" in lat and "int8_all_split" in lat:
                a, a_s = lat["int8_all"]["median_ms"], lat["int8_all_split"]["median_ms"]
                line += f"; `static_wi8_ai8` {a:.2f} → {a_s:.2f} ms (−{100 * (a - a_s) / a:.0f} %)"
            elif "int8_all" in lat:
                line += "; `static_wi8_ai8` on the split model does not run (XNNPACK fails to prepare its INT8 dilated depth-wise convs)"
            lines.append(line + ".")
    return "\n".join(lines)


def _op_rows(runs: list[dict]) -> list[list[str]]:
    rows = []
    for r in runs:
        for name in ("fp32", "int8_all", "int8_conv", "pt2e"):
            f = r["variants"].get(name, {}).get("findings")
            if not f:
                continue
            x = f["xnnpack"] or {}
            int8 = sum(c.get("int8", 0) for k, c in f["op_types"].items() if k != "QUANTIZE")
            nd = ", ".join(f"{k} {n}" for k, n in x.get("not_delegated_by_type", {}).items()) or "none"
            rows.append([f"{r['model']} {r['image_size']}²", name, str(f["ops"]), str(int8), str(f["transposes"]),
                         str(f["quantize_dequantize"]), str(x.get("partitions", "–")), nd])
    return rows


def _route_rows(r: dict, threads: list[int]) -> list[list[str]]:
    rows = []
    trained = r["weights"].startswith("trained")
    for name, v in r["variants"].items():
        if v.get("error"):
            rows.append([name, "–", f"failed: {v['error'][:160]}", "", "", "", "", "", ""])
            continue
        p = v["parity"]
        for th in threads:
            lat = r["latency"][str(th)]
            rows.append([name, str(th), _ms(lat, name), _ratio(lat, name, "fp32"), _ratio(lat, name, "fp32_split"),
                         f"{p['max_abs_diff']:.3g}", f"{p['top1_agreement']:.4f}",
                         f"{p['accuracy']:.4f} ({p['accuracy_drop_points']:+.2f})" if trained else "–",
                         f"{p['auc']:.4f} ({p['auc_drop']:+.4f})" if p["auc"] is not None and trained else "–"])
    return rows


def markdown(payload: dict) -> str:
    runs, micro, target = payload["runs"], payload.get("depthwise_micro"), payload["target"]
    threads = payload.get("threads", list(THREADS))
    body = ["Runtime: ai-edge-litert Interpreter with its default XNNPACK delegate, batch 1; latency = model call only "
            "(`Session.infer`), every file of a model interleaved A B C … in one process after 10 warm-up rounds. "
            "A training job shared the two cores throughout: medians are over many rounds, [min, max] shows the noise; "
            "compare ratios, which come from interleaved runs.",
            f"## Default chosen: route `{payload.get('default_route', 'conv')}`",
            "`edgemed.compress.tflite_int8.quantize_tflite(..., route=\"conv\")`: split every depth-wise conv above 25 "
            "taps into ≤ 25-tap ones (same weights), then ai-edge-quantizer static INT8 (per-channel weights, per-tensor "
            "activations) on CONV_2D ops only; LayerNorm, GELU, depth-wise convs, SE/classifier head and residual adds "
            "stay float. XNNPACK delegates the whole graph.",
            "## Summary (median ms, batch 1)",
            Table(["model", "threads", "FP32 today", "INT8 static_wi8_ai8", "FP32 + split", "INT8 conv (default)",
                   "INT8 conv vs FP32 today", "vs FP32 + split", "max abs Δlogit conv (static_wi8_ai8)",
                   "top-1 agreement conv (static_wi8_ai8)"], _summary_rows(runs, threads), right=set(range(1, 10))),
            "Speed-up from medians, from minimums in brackets. Accuracy on trained checkpoints is in the "
            "per-model tables below.", "## Why INT8 was slow"]
    if micro:
        cells = [[k.replace("_split", " split (5×5 + 2×7 dil 6 + 5×2 dil 6)"),
                  *(_ms(micro["latency"][str(th)], f"{k} {p}") for th in threads for p in ("fp32", "int8"))]
                 for k in ("dw7x7", "dw5x5", "dw7x7_split")]
        body += ["**1. XNNPACK's depth-wise conv above 25 taps.** One depth-wise conv + 1×1 conv on a 1×96×56×56 map "
                 "(convnext_med's stage 1), median ms [min, max]:",
                 Table(["kernel", "FP32 1 thread", "INT8 1 thread", "FP32 2 threads", "INT8 2 threads"], cells,
                       right={1, 2, 3, 4}),
                 "A 7×7 kernel (49 taps) falls off XNNPACK's fast depth-wise kernels (≤ 25 taps): it is many times "
                 "slower than a 5×5 one, gains nothing from a second thread and is no faster in INT8. The split form "
                 "(same weights, outputs equal up to float rounding) runs on the fast kernels. ConvNeXt has one 7×7 "
                 "depth-wise conv per block and MedNeXt one per Spatial Encoding Module, so this one kernel dominated "
                 "FP32 and INT8 alike and left INT8 little to win."]
    body += ["What the split alone saves in each whole model (1 thread, medians; the rest of the graph unchanged):",
             _split_savings(runs),
             "**2. `static_wi8_ai8` quantizes every op, and XNNPACK refuses several INT8 ops**, which then run on "
             "TFLite's own kernels and cut the graph into many XNNPACK partitions:",
             Table(["model", "variant", "ops", "INT8 ops", "TRANSPOSE", "QUANTIZE+DEQUANTIZE", "XNNPACK partitions",
                    "ops not delegated (by type)"], _op_rows(runs), right={2, 3, 4, 5, 6}),
             "Not delegated in INT8: RSQRT and GELU (no INT8 XNNPACK kernel), SQUARED_DIFFERENCE, and ADD/SUB whose "
             "input-to-output scale ratio XNNPACK rejects (LayerNorm's `var + eps`, where eps quantizes to a scale "
             "~1e-9). The INT8 LayerNorm (mean, variance and rsqrt in 8 bits) is also where accuracy goes. "
             "Layout TRANSPOSEs are not the problem: litert-torch keeps the graph NHWC, and FP32, `int8_all` and "
             "`int8_conv` have the same few (around ConvNeXt's downsampling LayerNorms and the pooling), all "
             "delegated; only the PT2E route adds many.",
             "## Routes: latency and agreement with PyTorch",
             "Speed-up = FP32 median / variant median (today's FP32 export, and the FP32 with the depth-wise split); "
             "in brackets the same from minimums, which the background load disturbs least. "
             "Parity on the test split: max |Δlogit|, top-1 agreement with PyTorch FP32, accuracy and AUC drop "
             f"(target: ≤ {target['accuracy_drop_points']} points, ≤ {target['auc_drop']})."]
    for r in runs:
        body += [f"### {r['model']} at {r['image_size']}×{r['image_size']} ({r['dataset']}; {r['weights']})",
                 f"{r['calibration_images']} calibration images (train split), {r['test_images']} test images, "
                 f"{r['rounds']} interleaved rounds per thread count.",
                 Table(["variant", "threads", "median ms [min, max]", "speed-up vs FP32", "vs FP32 split",
                        "max abs Δlogit", "top-1 agreement", "accuracy (drop, pt)", "AUC (drop)"],
                       _route_rows(r, threads), right={1, 3, 4, 5, 6})]
    body += ["## Notes",
             "- `int8_conv_fc` also quantizes the SE and classifier linear layers: no faster here, and the INT8 "
             "classifier moves logits most; kept as an option for models with large linear layers.\n"
             "- The PT2E route (litert-torch `PT2EQuantizer`) quantizes LayerNorm's mul/add and constants too; on the "
             "ConvNeXt LayerNorm its layout pass fails once Q/DQ nodes are present (error above); where it converts "
             "it leaves many TRANSPOSE ops.\n"
             "- Random-weight models measure latency and numerical agreement (max |Δlogit|) only: they predict one "
             "class, so their accuracy/AUC columns are left empty; accuracy needs a trained checkpoint "
             "(benchmarks/train_seeds.py), which this script uses when present.\n"
             "- Dynamic-range INT8 (`dynamic_wi8_afp32`, float activations) is not static INT8 and not measured here."]
    return page(payload, "Static INT8 TFLite under XNNPACK: why it was slow, and the fix", body)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", help="run only configs whose key contains one of these")
    ap.add_argument("--skip-micro", action="store_true", help="keep the stored depth-wise micro-benchmark")
    args = ap.parse_args()
    previous = load_results("tflite_int8")
    done = {r["key"]: r for r in previous.get("runs", [])}
    micro = previous.get("depthwise_micro")
    if not args.skip_micro or micro is None:
        print("=== depth-wise micro-benchmark", flush=True)
        micro = depthwise_micro(WORK / "tflite_int8" / "micro")
    for cfg in CONFIGS:
        if args.only and not any(s in cfg["key"] for s in args.only):
            continue
        done[cfg["key"]] = run_one(cfg)
        runs = [done[c["key"]] for c in CONFIGS if c["key"] in done]
        payload = {"threads": list(THREADS), "default_route": "conv", "target": TARGET, "runs": runs,
                   "depthwise_micro": micro}
        save_results("tflite_int8", _jsonable(payload), markdown)


def _jsonable(obj):
    import json

    return json.loads(json.dumps(obj, default=lambda o: str(o) if isinstance(o, Path) else getattr(o, "item", lambda: str(o))()))


if __name__ == "__main__":
    main()
