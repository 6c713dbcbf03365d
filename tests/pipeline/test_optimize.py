import json

import pytest
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.errors import EdgemedError
from edgemed.export import load_bundle
from edgemed.pipeline.optimize import pareto_points
from tests.conftest import assert_clean_error, needs_data

pytest.importorskip("nncf")


def test_pareto_front_keeps_only_undominated_points():
    pts = [{"p50_ms": 1.0, "metric": 0.80}, {"p50_ms": 2.0, "metric": 0.90}, {"p50_ms": 3.0, "metric": 0.85},
           {"p50_ms": 0.5, "metric": 0.70}, {"p50_ms": 2.5, "metric": 0.95}]
    assert [(p["p50_ms"], p["metric"]) for p in pareto_points(pts)] == [(0.5, 0.7), (1.0, 0.8), (2.0, 0.9), (2.5, 0.95)]


def test_optimize_and_report_share_one_front_and_one_bound():
    """A tie (two points with the same latency and metric) is on the front for both verbs, and a
    drop of exactly the bound meets it for both (they used to break ties and round differently)."""
    from edgemed.bounds import meets_bound, pareto_front

    pts = [{"p50_ms": 1.0, "metric": 0.9}, {"p50_ms": 1.0, "metric": 0.9}, {"p50_ms": 2.0, "metric": 0.9}]
    assert len(pareto_points(pts)) == 2
    assert pareto_front([(p["p50_ms"], p["metric"]) for p in pts]) == [True, True, False]
    assert meets_bound(100 * (0.9 - 0.895), 0.5) and not meets_bound(0.51, 0.5)


@needs_data
def test_search_on_a_tiny_model(tiny_checkpoint, tmp_path):
    from edgemed.compress.calibration import build_calibration
    from edgemed.compress.prune import prune
    from edgemed.pipeline.optimize import optimize

    calib = build_calibration("pneumoniamnist", size=32, out=tmp_path / "c.json")
    given = prune(tiny_checkpoint, out=tmp_path / "p.safetensors", target_macs=0.5, progress=False,
                  limit_eval=64).checkpoint  # a user's own pruned model, searched next to the search's levels
    r = optimize(tiny_checkpoint, max_drop=2.0, budget_minutes=8, out=tmp_path / "opt", calib=calib,
                 formats=["onnx", "tflite"], prune_levels=(None, 0.6), presets=("performance",), threads=(1,),
                 finetune_epochs=0, rounds=20, val_limit=64, workers=2, pruned=[given], progress=False)
    s = json.loads((r.out / "optimize.json").read_text())
    names = {c["name"] for c in s["candidates"]}
    assert {"full-onnx-performance", "full-tflite-performance"} <= names
    kept = s["given_pruned"][0]["macs_kept"]
    assert 0.3 < kept <= 0.55 and f"given1-macs{round(100 * kept)}-onnx-performance" in names
    assert any(c["name"].startswith("macs60-") for c in s["candidates"])
    # a variant with the two most sensitive layers in float is always tried on the unpruned model
    assert len(s["suggested_float_layers"]) == 2 and "full-onnx-performance-float2" in names
    assert any(p["runtime"] == "openvino" for p in r.points)  # ONNX artifacts also measured on OpenVINO
    assert {p["precision"] for p in r.points} == {"fp32", "int8"}
    assert all(p["p50_ms"] > 0 for p in r.points) and r.pareto
    for p in s["points"]:  # candidate bundles stay inspectable after the folder is moved into place
        assert load_bundle(r.out / p["bundle"]).artifact(p["artifact"])
    rec = load_bundle(r.out / "recommended")
    assert rec.recommended == r.recommended["artifact"]
    assert rec.manifest["deployment"]["bound_met"] == r.bound_met
    assert (r.out / "pareto.png").stat().st_size > 1000 and "Recommended" in (r.out / "summary.md").read_text()
    # every point's drop, with its CI, against the one unpruned reference (pruning's share counts)
    for p in r.points:
        lo, hi = p["drop_ci_points"]
        assert lo - 1e-9 <= p["drop_points"] <= hi + 1e-9 and 0 <= p["flips"] <= 64
        if p["precision"] == "fp32" and p["prune"] is None and not p["candidate"].startswith("given"):
            assert p["flips"] == 0 and lo == hi == 0  # the reference itself, exported
    assert "drop 95% CI" in (r.out / "summary.md").read_text() and "val_logits" not in json.dumps(s)
    assert rec.manifest["quantization"]["note"] == r.note  # optimize's note, not the candidate's own
    assert (r.note is not None) == (r.bound_met and r.recommended["drop_ci_points"][1] > 2.0)


def test_optimize_notes_a_recommendation_whose_ci_reaches_past_the_bound(tmp_path):
    from edgemed.pipeline.optimize import recommendation_note

    def point(name, ms, drop, ci, flips):
        return {"candidate": name, "artifact": "onnx-int8", "runtime": "onnxruntime", "threads": 1, "p50_ms": ms,
                "drop_points": drop, "drop_ci_points": ci, "flips": flips, "bundle": str(tmp_path / "work" / name)}

    fast, firm = point("macs60", 1.0, 0.4, [-0.8, 1.2], 3), point("full", 2.0, 0.0, [0.0, 0.0], 0)
    note = recommendation_note([fast, firm], fast, 0.5, 248, tmp_path)
    assert note.startswith("macs60:onnx-int8 on onnxruntime (1 thread(s)) meets the 0.5 pt bound on 248 validation")
    assert "reaches +1.20 pt" in note and "full:onnx-int8" in note and "work/full in the optimize folder" in note
    assert "BUNDLE" in note  # where the manifest's copy travels; the terminal fills it in
    assert recommendation_note([firm], firm, 0.5, 248, tmp_path) is None  # its CI is within the bound
    assert recommendation_note([], fast, 0.5, 248, tmp_path) is None  # bound not met: labelled instead
    assert "stays within" not in recommendation_note([fast], fast, 0.5, 248, tmp_path)  # no firmer point
    unscored = {**fast, "drop_ci_points": None}  # a worker that returned no logits: no CI, no note
    assert recommendation_note([unscored], unscored, 0.5, 248, tmp_path) is None


@needs_data
def test_bad_inputs_fail_before_any_work(tiny_checkpoint, tmp_path):
    from edgemed.pipeline.optimize import optimize

    with pytest.raises(EdgemedError, match="too small to evaluate one candidate"):
        optimize(tiny_checkpoint, budget_minutes=0.05, out=tmp_path / "a", progress=False)
    with pytest.raises(EdgemedError, match="target 'tensorrt' is not available"):
        optimize(tiny_checkpoint, target="tensorrt", out=tmp_path / "b", progress=False)
    with pytest.raises(EdgemedError, match="was not pruned from"):  # not a descendant of the checkpoint
        optimize(tiny_checkpoint, pruned=[tiny_checkpoint], out=tmp_path / "b", progress=False)
    assert_clean_error(CliRunner().invoke(app, ["optimize", str(tiny_checkpoint), "--max-drop", "-1",
                                                "--out", str(tmp_path / "c")]), "--max-drop must be a finite number of points ≥ 0")
    assert not any((tmp_path / n).exists() for n in "abc")
