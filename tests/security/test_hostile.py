"""Every case of the hostile-input catalogue through the real CLI: the promised exit code, one
`error:` line naming the problem (and, for the code cases, the flag that would allow it), no
traceback, no code run (the sentinel never appears) and nothing outside the work folder changed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from edgemed.cli import app
from tests.conftest import needs_data
from tests.security.cases import CASES, Env

pytestmark = needs_data
runner = CliRunner()


@pytest.fixture(scope="module")
def images(tmp_path_factory, data_dir) -> Path:
    folder = tmp_path_factory.mktemp("scans")
    d = np.load(data_dir / "pneumoniamnist.npz")
    for i in range(3):
        Image.fromarray(d["test_images"][i]).save(folder / f"{i}.png")
    return folder


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case, tmp_path, tiny_checkpoint, tiny_bundle, images, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("must stay as it is")
    env = Env(work=tmp_path / "work", checkpoint=tiny_checkpoint, bundle=tiny_bundle, images=images,
              outside=outside, sentinel=tmp_path / "SENTINEL")
    env.work.mkdir()
    monkeypatch.chdir(env.work)
    before = {"outside": None}
    args = [str(a) for a in case.build(env)]
    before["outside"] = snapshot(outside)
    bundle_before = snapshot(tiny_bundle)
    r = runner.invoke(app, args)
    out = r.output
    assert r.exit_code == case.code, out
    assert "Traceback" not in out
    errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
    if case.code == 2:
        assert len(errors) == 1, out
        assert case.expect in errors[0], out
    else:  # a batch where some files failed: each named, the rest done
        assert case.expect in out, out
    assert not env.sentinel.exists(), "a file's contents ran code"
    assert snapshot(outside) == before["outside"]
    assert snapshot(tiny_bundle) == bundle_before
    assert not (tmp_path.parent / "escaped").exists() and not (env.work.parent.parent / "escaped").exists()


def test_catalogue_covers_every_defect_class():
    assert {c.defect for c in CASES} == {"code execution", "resource exhaustion", "escaping the folder",
                                         "work lost to a late check", "wrong results"}
    assert len({c.name for c in CASES}) == len(CASES)


def test_env_has_a_private_trust_list():
    assert "EDGEMED_CONFIG_DIR" in os.environ
