import json

import pytest
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.pipeline.runner import run_recipe
from tests.conftest import assert_clean_error, needs_data

pytestmark = needs_data

RECIPE = """\
name: tiny
model: {zoo: resnet18_micro}
dataset: breastmnist
threads: 2
stages:
  train: {epochs: 1, batch_size: 32, limit_train: 96, limit_eval: 48}
  export: {formats: [onnx, tflite], precision: [fp32], parity_images: 32}
  bench: {threads: 1, iterations: 20, limit: 48, memory: false, large_batch: 0}
  report: {}
"""


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    recipe = folder / "tiny.yaml"
    recipe.write_text(RECIPE)
    result = run_recipe(recipe, folder / "out", progress=False)
    return recipe, folder / "out", result


def test_every_stage_writes_its_folder_and_record(first_run):
    _, out, result = first_run
    assert [s.stage for s in result.stages] == ["train", "export", "bench", "report"]
    assert all(s.status == "done" for s in result.stages)
    for stage in ("train", "export", "bench", "report"):
        assert json.loads((out / stage / "stage.json").read_text())["status"] == "done"
    assert (out / "report" / "report" / "report.html").exists()


def test_rerun_skips_unchanged_stages(first_run):
    recipe, out, _ = first_run
    again = run_recipe(recipe, out, progress=False)
    assert [s.status for s in again.stages] == ["skipped (cached)"] * 4


def test_changed_options_redo_only_downstream(first_run):
    recipe, out, _ = first_run
    recipe.write_text(RECIPE.replace("iterations: 20", "iterations: 25"))
    r = run_recipe(recipe, out, progress=False)
    assert [s.status for s in r.stages] == ["skipped (cached)", "skipped (cached)", "done", "done"]
    recipe.write_text(RECIPE)


def test_an_interrupted_stage_is_redone_and_finished_ones_kept(first_run, monkeypatch):
    import edgemed.pipeline.runner as runner

    recipe, out, _ = first_run
    (out / "bench" / "stage.json").unlink()  # as after Ctrl-C during bench

    calls = []
    real = runner.STAGE_RUNNERS["report"]

    def interrupted(*a, **k):
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setitem(runner.STAGE_RUNNERS, "report", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe, out, progress=False)
    assert (out / "bench" / "stage.json").exists()  # finished before the interruption
    assert not (out / "report" / "stage.json").exists()
    monkeypatch.setitem(runner.STAGE_RUNNERS, "report", real)
    r = run_recipe(recipe, out, progress=False)
    assert [s.status for s in r.stages] == ["skipped (cached)"] * 3 + ["done"]


def test_cli_run_check_and_bad_inputs(tmp_path):
    runner = CliRunner()
    good = tmp_path / "good.yaml"
    good.write_text(RECIPE)
    r = runner.invoke(app, ["run", str(good), "--check"])
    assert r.exit_code == 0 and "valid" in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(RECIPE.replace("iterations: 20", "iteration: 20"))
    assert_clean_error(runner.invoke(app, ["run", str(bad)]), "bad.yaml:8", "unknown key 'iteration'")
    missing = tmp_path / "missing.yaml"
    missing.write_text(RECIPE.replace("{zoo: resnet18_micro}", "{checkpoint: nowhere.safetensors}").replace(
        "  train: {epochs: 1, batch_size: 32, limit_train: 96, limit_eval: 48}\n", ""))
    assert_clean_error(runner.invoke(app, ["run", str(missing)]), "model.checkpoint 'nowhere.safetensors' does not exist")
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text(RECIPE + "targets: [tensorrt]\n")
    assert_clean_error(runner.invoke(app, ["run", str(gpu)]), "target 'tensorrt' is not available")
    assert not (tmp_path / "runs").exists()
    (tmp_path / "afile").write_text("x")  # a run folder that cannot be one: said with the option to change
    for where in ("afile", "afile/x"):
        assert_clean_error(runner.invoke(app, ["run", str(good), "--run-dir", str(tmp_path / where)]),
                           "afile is a file, not a folder; choose another --run-dir")
    assert (tmp_path / "afile").read_text() == "x"


def test_the_quantize_stage_prints_quantize_s_note(tmp_path, monkeypatch):
    """A pipeline run shows the note `edgemed quantize` would print (the recommendation's CI past the
    bound, or an INT8 build slower than its FP32), with this run's bundle path for BUNDLE."""
    from types import SimpleNamespace

    import edgemed.compress.quantize as q
    from edgemed.pipeline import runner
    from edgemed.progress import console

    monkeypatch.setattr(q, "quantize", lambda *a, **k: q.QuantizeResult(
        k["out"], [], "openvino-int8", {}, note="x [b]y[/b] `edgemed bench BUNDLE --split test`"))
    recipe = SimpleNamespace(path=tmp_path / "r.yaml", threads=1, accuracy_bound={"max_drop": 0.5, "metric": "accuracy"})
    calib = tmp_path / "c.json"
    calib.write_text("{}")
    with console.capture() as captured:
        out = runner._quantize(recipe, {"calib": str(calib)}, tmp_path, {"checkpoint": "m.safetensors"}, None, False)
    assert out == {"bundle": str(tmp_path / "bundle")}
    text = "".join(captured.get().split())  # the console folds long lines
    assert f"note:x[b]y[/b]`edgemedbench{tmp_path / 'bundle'}--splittest`" in text  # no markup, path filled in
