"""report.html in a real headless browser (Debian's chromium, installed by .ci/run): the page
renders and prints to PDF, every image (plots, flipped-case thumbnails) decodes, and the page
logs nothing to the console. Skipped where no chromium is installed, unless
EDGEMED_REQUIRE_BROWSER=1 (as in CI), where a missing browser fails."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from tests.report.factory import real_results, write

BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
REQUIRED = os.environ.get("EDGEMED_REQUIRE_BROWSER") == "1"
pytestmark = pytest.mark.skipif(BROWSER is None and not REQUIRED,
                                reason="no chromium here (apt-get install chromium; .ci/run installs it)")


def _chromium(*args, timeout=120) -> subprocess.CompletedProcess:
    if BROWSER is None:
        pytest.fail("EDGEMED_REQUIRE_BROWSER=1 but no chromium is installed: apt-get install chromium")
    return subprocess.run([BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-extensions", *args], capture_output=True, text=True, timeout=timeout)


def _thumb(seed: int) -> str:
    from PIL import Image

    img = np.random.default_rng(seed).integers(0, 255, (28, 28), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A report with every kind of image: plots (incl. the reliability diagram) and thumbnails."""
    from edgemed.report import report

    d = tmp_path_factory.mktemp("browser")
    r = real_results()
    for row in r["rows"]:
        row["accuracy"]["calibration"] = {"ece": 0.05, "brier": 0.2, "n_bins": 15, "bins": [
            {"low": 0.5, "high": 0.6, "n": 20, "accuracy": 0.5, "confidence": 0.55},
            {"low": 0.9, "high": 1.0, "n": 100, "accuracy": 0.93, "confidence": 0.96}]}
    row = r["rows"][-1]
    row["accuracy"]["flips"] = {"count": 3, "n": 150, "by_class": [], "cases": [
        {"index": i, "label": 1, "reference_decision": 1, "decision": 0, "reference_probs": [0.3, 0.7],
         "probs": [0.6, 0.4]} for i in (3, 4, 5)]}
    r["thumbnails"] = {str(i): _thumb(i) for i in (3, 4, 5)}
    report([write(d / "r.json", r)], d / "rep")
    return d / "rep" / "report.html"


def test_the_report_prints_to_pdf_with_no_console_messages(page, tmp_path):
    pdf = tmp_path / "report.pdf"
    r = _chromium("--enable-logging=stderr", "--v=0", f"--print-to-pdf={pdf}", page.as_uri())
    assert r.returncode == 0 and pdf.stat().st_size > 50_000, r.stderr[-2000:]
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # the page has no scripts; any message is a problem (CSP, broken markup)
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))
    assert pages >= 3  # summary, evidence and method on separate printed pages (A4 landscape)


def test_every_image_in_the_report_loads(page, tmp_path):
    html = page.read_text()
    n = html.count("<img ")
    assert n >= 7  # pareto, latency, size and reliability plots, three thumbnails
    # a copy with a probe script: counts images that decoded after load (the report has no script)
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", "<script>addEventListener('load', () => { const i = [...document.images]; "
                                  "document.body.dataset.images = i.filter(x => x.complete && x.naturalWidth > 0)"
                                  ".length + '/' + i.length; });</script></body>"))
    r = _chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    assert f'data-images="{n}/{n}"' in r.stdout
    assert "<h2>Summary</h2>" in r.stdout and "Flipped cases" in r.stdout
