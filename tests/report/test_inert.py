"""Hostile results files (issue 19): every string in a results file comes from someone else, so
report.md, report.html and results.csv must show it as inert text, and the loader must answer any
input with a valid object or one EdgemedError line."""

import copy
import csv
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.errors import EdgemedError
from edgemed.report.csvfile import results_csv
from edgemed.report.html import html_report
from edgemed.report.markdown import markdown_report, md_text
from edgemed.report.merge import merge
from edgemed.report.schema import load_results, validate
from tests.conftest import assert_clean_error
from tests.report.factory import real_results, set_retention, write

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
PIPE = "a|b\nc"
HYPERLINK = '=HYPERLINK("http://x","y")'
HOSTILE = [SCRIPT, IMG, PIPE, HYPERLINK, "+cmd", "-2+3", "@SUM(A1)"]
MD_IMAGE = "![t](http://evil.example/t.png) [click](http://evil.example)"
MATHTEXT = r"$\broken{$"  # matplotlib would parse this as (invalid) math


def hostile_results() -> dict:
    """The real results with a hostile string in every text field the report shows."""
    r = real_results()
    ref = r["rows"][1]["accuracy"]["retention"]["reference"]
    for i, row in enumerate(r["rows"]):
        if row["name"] == ref:
            ref_name = HOSTILE[i]
        row["artifact"] = row["name"] = HOSTILE[i]
        row["runtime"], row["precision"], row["format"] = HOSTILE[4], HOSTILE[5], HOSTILE[6]
        row["device"] = MD_IMAGE
    for row in r["rows"]:
        if row["accuracy"].get("retention"):
            row["accuracy"]["retention"]["reference"] = ref_name
    set_retention(r["rows"][-1], "accuracy", -0.0133, [-0.0333, 0.0067])  # a negative number
    r["rows"][-1]["cold"] = {"error": SCRIPT}
    r["system"].update(cpu=f"{IMG} {MATHTEXT}", machine=HYPERLINK, os=SCRIPT, distro=PIPE,
                       isa=[SCRIPT, MD_IMAGE], libraries={SCRIPT: IMG}, env_threads={"OMP": "`x`"})
    r["bundle"].update(model=SCRIPT, path=MD_IMAGE)
    r["settings"]["split"].update(name="-2+3", split="@SUM(A1)")
    r["settings"].update(device=IMG, rss_note=MD_IMAGE)
    r.update(created="+cmd", edgemed_version=IMG, baseline=SCRIPT)
    return r


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("inert")
    result = CliRunner().invoke(app, ["report", str(write(d / "hostile.json", hostile_results())),
                                      "--out", str(d / "rep")])
    assert result.exit_code == 0, result.output
    return d / "rep"


def _unescaped_pipes(line: str) -> int:
    count, escaped = 0, False
    for ch in line:
        count += ch == "|" and not escaped
        escaped = ch == "\\" and not escaped
    return count


def test_markdown_shows_data_as_inert_text(made):
    md = (made / "report.md").read_text()
    assert "<script" not in md and "<img" not in md and "<" not in md.replace("&lt;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    plain = re.sub(r"\\.", "", md)  # what Markdown reads as syntax: escaped characters removed
    assert set(re.findall(r"\]\s*[(\[][^)\]]*", plain)) == {  # links and images: only our plots
        f"]({p}" for p in ("plots/S1_pareto.png", "plots/S1_latency.png", "plots/S1_size.png")}
    assert "`x`" not in plain  # no code span opened by data
    # every row of every table has as many cells as its header
    tables: list[list[str]] = [[]]
    for line in md.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    tables = [t for t in tables if t]
    assert len(tables) == 5  # decision, summary, status, all measurements, how measured
    for t in tables:
        assert {_unescaped_pipes(line) for line in t} == {_unescaped_pipes(t[0])}, t


def test_html_escapes_every_data_string(made):
    html = (made / "report.html").read_text()
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="http' not in html and 'src="http' not in html
    assert len(re.findall(r"<img ", html)) == len(re.findall(r'<img alt="[^"<>]*" src="data:image/png', html))


def test_csv_neutralises_formulas_and_keeps_numbers(made):
    with open(made / "results.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        for cell in row.values():
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                float(cell)  # only a real number may start like a formula
    cells = {cell for row in rows for cell in row.values()}
    for s in HOSTILE[3:]:
        assert "'" + s in cells and s not in cells
    assert PIPE in cells and SCRIPT in cells  # text that is no formula stays as it was
    last = next(r for r in rows if r["artifact"] == "'" + HYPERLINK)  # rows[-1] of the results
    assert float(last["retention_accuracy_pt"]) == pytest.approx(-1.33)
    assert float(last["retention_accuracy_ci_low_pt"]) == pytest.approx(-3.33)


@pytest.mark.parametrize("value, expected", [
    ("plain", "plain"), ("a|b\r\nc\rd", "a\\|b c d"), (SCRIPT, "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("![t](http://x)", "![t\\](http://x)"), ("[a[b]c] (u)", "[a[b]c\\] (u)"), ("`c`", "\\`c\\`"), ("\\|", "\\\\\\|"), ("a & b", "a &amp; b"),
    ("90.0 [84.7, 94.7]", "90.0 [84.7, 94.7]"), (3, "3"),
])
def test_md_text(value, expected):
    assert md_text(value) == expected


# ---- the loader: any input gives a valid object or one EdgemedError ------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


def _paths(obj, prefix=()) -> list[tuple]:
    """Every key path inside a results object (latency samples once, not 25 times)."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:2]):
            out += _paths(v, (*prefix, i))
    return out


BASE = real_results()
PATHS = _paths(BASE)
MUTATION = st.tuples(st.sampled_from(PATHS), st.sampled_from(["drop", "replace"]), JSON)


def mutate(base: dict, mutations) -> dict:
    r = copy.deepcopy(base)
    for path, how, value in mutations:
        node = r
        try:
            for key in path[:-1]:
                node = node[key]
            if how == "drop":
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced this path
    return r


def _load_text(tmp_path_factory, text: str):
    p = tmp_path_factory.getbasetemp() / "fuzz.json"
    p.write_text(text, encoding="utf-8")
    try:
        return load_results(p)
    except EdgemedError as e:
        assert "\n" not in str(e) and str(e)
        return None


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(obj=JSON)
def test_loader_answers_any_json(tmp_path_factory, obj):
    assert _load_text(tmp_path_factory, json.dumps(obj)) is None  # no random value is a results file


@FUZZ
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_loader_and_report_survive_mutated_results(tmp_path_factory, mutations):
    r = mutate(BASE, mutations)
    obj = _load_text(tmp_path_factory, json.dumps(r))
    if obj is not None:  # what the loader accepts, the writers must render
        merged = merge([("r.json", obj)])
        markdown_report(merged, {}, metric="accuracy", max_drop=0.5, created="now", version="0")
        html_report(merged, {}, metric="auc", max_drop=0.5, created="now", version="0")
        results_csv(merged)


@pytest.mark.parametrize("text, fragment", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"schema": "edgemed-bench-results", "schema_version": 1, "x": ' + "[" * 50 + "]" * 50 + "}",
     "nested too deeply"),
    ("1" * 5000, "not valid JSON"),
    ("", "not valid JSON"),
    ('{"schema": "edgemed-bench-results", "schema_version": 1e400}', "schema_version"),
    ("[1, 2]", "not an edgemed bench results file"),
])
def test_loader_refuses_odd_files_in_one_line(tmp_path, text, fragment):
    with pytest.raises(EdgemedError, match=fragment) as e:
        load_results(write(tmp_path / "r.json", text))
    assert "\n" not in str(e.value) and "edgemed bench" in str(e.value)


def test_loader_refuses_oversized_and_binary_files(tmp_path, monkeypatch):
    import edgemed.report.schema as schema

    big = write(tmp_path / "big.json", real_results())
    monkeypatch.setattr(schema, "MAX_BYTES", 1000)
    with pytest.raises(EdgemedError, match="larger than"):
        load_results(big)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EdgemedError, match="not valid JSON"):
        load_results(binary)


@pytest.mark.parametrize("edit, fragment", [
    (lambda r: r["rows"][0].update(artifact=["x"]), "row 0: artifact must be"),
    (lambda r: r["rows"][0].update(batch=True), "row 0: batch must be"),
    (lambda r: r["rows"][0]["latency_ms"].update(p50=0), "latency_ms.p50"),
    (lambda r: r["rows"][0]["latency_ms"].update(p90=float("nan")), "latency_ms"),
    (lambda r: r["rows"][1]["accuracy"]["metrics"].update(balanced_accuracy="high"), "balanced_accuracy"),
    (lambda r: r["rows"][1]["accuracy"]["retention"].update(reference=7), "reference must be"),
    (lambda r: r["rows"][1].update(throughput_ips=[1]), "throughput_ips"),
    (lambda r: r["settings"].update(split={"name": ["x"], "split": "test", "n": 3}), "split: name"),
    (lambda r: r["settings"]["split"].pop("n"), "split lacks n"),
    (lambda r: r["bundle"].update(sha256="`<b>`"), "bundle: sha256 must be"),
    (lambda r: r["system"].update(isa="avx2"), "isa must be"),
    (lambda r: r["rows"][0].update(name="x" * 1000), "name must be"),
])
def test_validator_checks_what_the_report_reads(edit, fragment):
    r = real_results()
    edit(r)
    with pytest.raises(EdgemedError, match=re.escape(fragment)) as e:
        validate(r, "x.json")
    assert "\n" not in str(e.value) and "edgemed bench" in str(e.value)


def test_bad_cli_input_is_one_line(tmp_path):
    r = real_results()
    r["rows"][0]["latency_ms"] = {"p50": "fast"}
    res = CliRunner().invoke(app, ["report", str(write(tmp_path / "r.json", r)), "--out", str(tmp_path / "o")])
    assert_clean_error(res, "row 0", "latency_ms", "edgemed bench")


def test_merge_bounds_the_rows_of_one_report(monkeypatch):
    import edgemed.report.merge as merge_module

    monkeypatch.setattr(merge_module, "MAX_ROWS", 5)
    other = real_results()
    other["system"]["cpu"] = "Other CPU"
    with pytest.raises(EdgemedError, match="8 rows in all, more than the 5 one report can show"):
        merge([("a.json", real_results()), ("b.json", other)])
