"""The repository keeps its promises: CI runs the README's test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Tests", 1)[1]
    command = section.split("```bash", 1)[1].split("```", 1)[0].strip()
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines
    quick_start = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [ln for ln in quick_start.strip().splitlines() if ln.strip()]
    assert len(commands) == 2  # the README promises exactly two commands
    assert commands[1].endswith(command)


def test_import_edgemed_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, edgemed, edgemed.cli, edgemed.data, edgemed.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_api_verbs_survive_their_subpackages_being_imported():
    import edgemed
    import edgemed.bench.harness  # noqa: F401  (binds edgemed.bench to the package)
    import edgemed.export.exporter  # noqa: F401
    import edgemed.report.schema  # noqa: F401
    import edgemed.train.loop  # noqa: F401

    for verb in ("train", "evaluate", "export", "bench", "report", "predict", "open_session", "load_bundle"):
        assert callable(getattr(edgemed, verb)), verb


def _imports(path: Path, package: str) -> set[str]:
    """Modules of `package` that a file imports, at any depth (function-level imports included)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == package:  # from benchmarks import x
            found |= {f"{package}.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package + "."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(package + ".")}
    return found


def test_benchmarks_are_plain_modules_without_import_circles():
    """`python -m benchmarks.NAME` needs no sys.path edits, and no two scripts import each other."""
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in (ROOT / "benchmarks").rglob("*.py")
             if "work" not in p.relative_to(ROOT / "benchmarks").parts}
    assert not [m for m, p in files.items() if "sys.path" in p.read_text()]
    graph = {m: {i for i in _imports(p, "benchmarks") if i in files} for m, p in files.items()}

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    assert [m for m in graph if reaches(m, m, {m})] == []


def test_only_the_format_table_lists_formats():
    """A new format is one row in edgemed/formats.py: no other module spells out a list of them."""
    import re

    names = ("onnx", "openvino", "tflite", "executorch")
    name = "|".join(names)
    listing = re.compile(r'[(\[{]\s*"(' + name + r')"\s*,\s*"(' + name + r')"')
    offenders = sorted({str(p.relative_to(ROOT)) for p in (ROOT / "edgemed").rglob("*.py") if p.name != "formats.py"
                        for line in p.read_text().splitlines() if "Example" not in line
                        for m in listing.finditer(line) if m.group(1) != m.group(2)})
    assert offenders == ["edgemed/onnx_source.py"]  # what an ONNX source can become: ONNX and OpenVINO
