"""Every bundle carries a model card and MONAI-bundle metadata; the owner adds intended use and
limitations with `edgemed bundle card`; bench and report carry the card to the reader."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from edgemed.card import CARD_MD, MONAI_METADATA, NOT_STATED, model_card
from edgemed.cli import app
from edgemed.export.bundle import load_bundle, verify_bundle
from tests.conftest import assert_clean_error

runner = CliRunner()


@pytest.fixture
def bundle(tiny_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(tiny_bundle, dst)
    return dst


def _card_items(card: dict) -> dict:
    return {i["label"]: i["value"] for s in card["sections"] for i in s["items"]}


def test_every_bundle_has_a_verified_card_and_monai_metadata(bundle):
    b = load_bundle(bundle)
    assert {d["path"] for d in b.manifest["documents"]} == {CARD_MD, MONAI_METADATA}
    md = (bundle / CARD_MD).read_text()
    assert "## Intended use" in md and NOT_STATED.split(" (")[0] in md
    assert "pneumoniamnist" in md and b.manifest["provenance"]["dataset"]["sha256"] in md
    meta = json.loads((bundle / MONAI_METADATA).read_text())
    spec, names = b.manifest["preprocess"], b.manifest["class_names"]
    image, pred = meta["network_data_format"]["inputs"]["image"], meta["network_data_format"]["outputs"]["pred"]
    assert image["num_channels"] == spec["channels"] and image["spatial_shape"] == spec["size"]
    assert pred["num_channels"] == len(names) and pred["channel_def"] == {str(i): n for i, n in enumerate(names)}
    for key in ("version", "changelog", "monai_version", "pytorch_version", "numpy_version", "task",
                "description", "authors", "copyright"):  # the keys MONAI's metadata schema requires
        assert key in meta
    # the documents are covered by verification like the artifacts
    (bundle / MONAI_METADATA).write_text(json.dumps({**meta, "description": "edited"}))
    assert any("metadata.json (document) was altered" in p for p in verify_bundle(load_bundle(bundle, verify=False)))


def test_the_owner_adds_intended_use_and_the_card_says_how_data_was_split(bundle, tmp_path):
    before = load_bundle(bundle).sha256
    card = tmp_path / "card.yaml"
    card.write_text("intended_use: Triage of paediatric chest X-rays for a second read\n"
                    "out_of_scope: [adults, CT]\nlimitations: Trained on one hospital's images\n")
    r = runner.invoke(app, ["bundle", "card", str(bundle), "--card", str(card)])
    assert r.exit_code == 0, r.output
    b = load_bundle(bundle)  # verified: the new documents match the new manifest
    assert b.sha256 != before and b.manifest["card"]["out_of_scope"] == ["adults", "CT"]
    md = (bundle / CARD_MD).read_text()
    assert "Triage of paediatric chest X-rays" in md and "adults; CT" in md
    assert json.loads((bundle / MONAI_METADATA).read_text())["description"].startswith("Triage of paediatric")
    assert_clean_error(runner.invoke(app, ["bundle", "card", str(bundle), "--card", str(card)]), "--force")
    card.write_text("intended_purpose: x\n")
    assert_clean_error(runner.invoke(app, ["bundle", "card", str(bundle), "--card", str(card), "--force"]),
                       "unknown fields intended_purpose")
    # the split method comes from the data catalog: the CT set is split by image, not patient
    items = _card_items(model_card({**b.manifest, "provenance": {**b.manifest["provenance"],
                                                                  "dataset": {"name": "sarscov2_ct_224"}}}))
    assert items["Split method"].startswith("by image, not by patient")
    # a quantize note (the recommendation's drop within the bound, its CI not) is on the card
    q = {"metric": "accuracy", "max_drop_points": 0.5, "validation_images": 248, "note": "openvino-mixed meets …"}
    items = _card_items(model_card({**b.manifest, "quantization": q}))
    assert "drop ≤ 0.5 pt on 248 validation images" in items["INT8 quantization"]
    assert items["INT8 note"] == "openvino-mixed meets …"
    unbounded = _card_items(model_card({**b.manifest, "quantization": {**q, "max_drop_points": None}}))
    assert "control: none (no bound was given" in unbounded["INT8 quantization"] and "None" not in unbounded[
        "INT8 quantization"]
    for note, shown in ((["not", "text"], None), ("x" * 5000, "x" * 500),  # from a file: checked and bounded
                        ("ok\x1b[31mred\x07\r\n\x00\u202etxet", "ok [31mred     txet"),  # no control or bidi characters
                        ("Mehr\u200cdad, co\u00adoperate, 5 µm², ≤ 0.5 — ok", "Mehr\u200cdad, co\u00adoperate, 5 µm², ≤ 0.5 — ok")):
        items = _card_items(model_card({**b.manifest, "quantization": {**q, "note": note}}))
        assert items.get("INT8 note") == shown


def test_a_hostile_card_in_a_manifest_is_refused(bundle):
    m = json.loads((bundle / "edgemed.json").read_text())
    m["card"] = {"intended_use": {"nested": "object"}}
    (bundle / "edgemed.json").write_text(json.dumps(m))
    with pytest.raises(Exception, match="intended_use must be a text"):
        load_bundle(bundle, verify=False)


def test_bench_and_report_carry_the_card(tiny_bundle, tmp_path):
    from edgemed.bench.harness import bench
    from edgemed.report import report

    out = tmp_path / "r.json"
    bench(tiny_bundle, artifacts=["onnx-fp32", "tflite-fp16"], threads=1, iterations=5, limit=32, n_boot=50,
          memory=False, progress=False, out=out)
    results = json.loads(out.read_text())
    items = _card_items(results["bundle"]["card"])
    labels = results["outputs"]["labels"]
    assert items["Images per class, test"] == f"{labels.count(0)} normal, {labels.count(1)} pneumonia"
    assert items["Images per class, train"] == "1214 normal, 3494 pneumonia"  # data/README.md
    report([out], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Model card" in md and "## In brief" in md
    assert md.index("## In brief") < md.index("## Summary") < md.index("## Model card")


def test_the_card_is_never_written_through_a_symlink(bundle, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(bundle / "configs")
    (bundle / "configs").symlink_to(outside, target_is_directory=True)
    card = tmp_path / "card.yaml"
    card.write_text("intended_use: x\n")
    r = runner.invoke(app, ["bundle", "card", str(bundle), "--card", str(card)])
    assert r.exit_code == 2 and "symbolic link" in r.output
    assert list(outside.iterdir()) == []
