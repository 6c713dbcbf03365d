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
