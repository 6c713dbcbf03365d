"""`edgemed report` through the real CLI: a good run, bad input (one error line, exit 2,
nothing overwritten) and a run on a device without torch."""

import pytest
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.report.schema import SCHEMA_VERSION
from tests.conftest import assert_clean_error, run_without_torch
from tests.report.factory import real_results, write

runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["report", *map(str, args)])




@pytest.fixture
def good(tmp_path):
    return write(tmp_path / "good.json", real_results())


@pytest.fixture
def old_report(tmp_path):
    """An earlier report folder that bad input must leave untouched."""
    d = tmp_path / "report"
    d.mkdir()
    (d / "report.html").write_text("earlier report")
    return d


def _newer(tmp_path):
    r = real_results()
    r["schema_version"] = SCHEMA_VERSION + 1
    return write(tmp_path / "newer.json", r)


@pytest.mark.parametrize("make_input, extra, fragments", [
    (_newer, [], ["newer than this edgemed reads", "upgrade edgemed"]),
    (lambda d: write(d / "corrupt.json", '{"schema": "edgemed-bench-resu'), [], ["corrupt: not valid JSON"]),
    (lambda d: write(d / "cfg.json", {"epochs": 3}), [], ["not an edgemed bench results file"]),
    (lambda d: d / "missing.json", [], ["results file not found"]),
    (lambda d: None, [], ["no results files given"]),
    (lambda d: write(d / "good.json", real_results()), ["--max-drop", "-0.5"], ["--max-drop must be a finite number of points ≥ 0"]),
    (lambda d: write(d / "good.json", real_results()), ["--metric", "f1"], ["unknown --metric 'f1'", "accuracy, auc"]),
])
def test_bad_input_is_one_line_and_overwrites_nothing(tmp_path, old_report, make_input, extra, fragments):
    path = make_input(tmp_path)
    r = run(*([path] if path else []), "--out", old_report, "--force", *extra)
    assert_clean_error(r, *fragments)
    assert (old_report / "report.html").read_text() == "earlier report"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp folders left


def test_existing_output_needs_force(good, old_report):
    assert_clean_error(run(good, "--out", old_report), "already exists", "--force")
    assert (old_report / "report.html").read_text() == "earlier report"
    r = run(good, "--out", old_report, "--force")
    assert r.exit_code == 0, r.output
    assert (old_report / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "report written to" in r.stdout and "3 yes" in r.stdout


def test_force_never_replaces_a_folder_that_is_not_a_report(good, tmp_path):
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("keep me")
    assert_clean_error(run(good, "--out", other, "--force"), "not an edgemed report folder")
    assert (other / "chapter1.tex").read_text() == "keep me"


def test_force_never_replaces_a_folder_holding_an_input(old_report):
    inside = write(old_report / "r.json", real_results())
    assert_clean_error(run(inside, "--out", old_report, "--force"), "inside the output folder")
    assert inside.exists()


def test_missing_out_is_one_line(good):
    assert_clean_error(run(good), "--out FOLDER")


def test_report_runs_without_torch(good, tmp_path):
    r = run_without_torch(["report", good, "--out", tmp_path / "rep"])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rep" / "report.html").is_file() and "report written to" in r.stdout
