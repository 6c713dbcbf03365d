"""Which user code may run: a factory the user trained with stays usable without flags; the same
name with other file contents, or any code a file names that the user never chose, is refused
until `--trust-code` or `edgemed trust add`."""

from __future__ import annotations

import errno
import json

import pytest
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.errors import EdgemedError
from edgemed.trust import UntrustedCode, is_trusted, record_trust, trusting
from tests.conftest import assert_clean_error, needs_data

runner = CliRunner()

NET = (
    "import torch\n"
    "def build(num_classes, in_channels=3, width=4):\n"
    "    return torch.nn.Sequential(torch.nn.Conv2d(in_channels, width, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1),\n"
    "                               torch.nn.Flatten(), torch.nn.Linear(width, num_classes))\n")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def user_checkpoint(tmp_path, data_dir):
    """A checkpoint of the user's own factory, trained (and so trusted) through the real CLI."""
    net = tmp_path / "mynet.py"
    net.write_text(NET)
    out = tmp_path / "mine.safetensors"
    r = run("train", f"{net}:build", "--dataset", "pneumoniamnist", "--epochs", "1", "--limit-train", "64",
            "--limit-eval", "64", "--batch-size", "32", "--out", out)
    assert r.exit_code == 0, r.output
    return net, out


@needs_data
def test_own_factory_stays_usable_and_an_edited_file_is_refused(user_checkpoint, tmp_path):
    net, ck = user_checkpoint
    assert is_trusted(f"{net}:build")
    r = run("evaluate", ck, "--limit", "64", "--n-boot", "0", "--json")
    assert r.exit_code == 0, r.output
    # the same name with other contents is other code: refused, with the two ways to allow it
    net.write_text(NET + "\n# edited\n")
    r = run("evaluate", ck, "--limit", "64", "--n-boot", "0")
    assert_clean_error(r, "--trust-code", "edgemed trust add")
    # the flag works after the command, for this command only
    assert run("evaluate", ck, "--limit", "64", "--n-boot", "0", "--trust-code").exit_code == 0
    assert_clean_error(run("evaluate", ck, "--limit", "64", "--n-boot", "0"), "--trust-code")
    # trusting it again (this content) makes it usable without the flag
    r = run("trust", "add", f"{net}:build")
    assert r.exit_code == 0 and "trusted" in r.output
    assert run("evaluate", ck, "--limit", "64", "--n-boot", "0").exit_code == 0
    assert "mynet.py:build" in run("trust", "list").output
    assert run("trust", "remove", f"{net}:build").exit_code == 0
    assert_clean_error(run("evaluate", ck, "--limit", "64", "--n-boot", "0"), "--trust-code")
    assert_clean_error(run("trust", "remove", f"{net}:build"), "not on the trust list")


def test_module_factories_are_trusted_by_name_and_the_api_has_a_context(tmp_path):
    assert not is_trusted("subprocess:getoutput")
    with trusting():
        assert is_trusted("subprocess:getoutput")
    assert not is_trusted("subprocess:getoutput")
    record_trust("json:loads")
    assert is_trusted("json:loads") and not is_trusted("json:dumps")
    with pytest.raises(EdgemedError, match="must look like"):
        record_trust("not a spec")


def test_checkpoint_from_elsewhere_is_refused_through_the_api(tiny_checkpoint, tmp_path):
    from edgemed.checkpoint import load_checkpoint
    from tests.security.cases import edit_checkpoint

    sentinel = tmp_path / "SENTINEL"
    ck = tmp_path / "x.safetensors"
    ck.write_bytes(tiny_checkpoint.read_bytes())
    edit_checkpoint(ck, lambda m, t: m["model"].update(name="subprocess:getoutput", kwargs={"cmd": f"touch {sentinel}"}))
    with pytest.raises(UntrustedCode, match="--trust-code"):
        load_checkpoint(ck)
    assert not sentinel.exists()


@needs_data
def test_a_full_disk_mid_write_is_one_line_and_keeps_the_old_output(tiny_bundle, tmp_path, monkeypatch):
    """ENOSPC while the results are written: exit 2 naming the path, the earlier file untouched."""
    import os

    out = tmp_path / "results.json"
    out.write_text('{"old": true}')
    real_replace = os.replace

    def full(src, dst, *a, **k):
        if str(dst) == str(out):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", full)
    r = run("bench", tiny_bundle, "--artifacts", "onnx-fp32", "--iterations", "5", "--no-memory", "--no-accuracy",
            "--large-batch", "0", "--out", out, "--force")
    assert_clean_error(r, "cannot write", "results.json", "no space left")
    assert json.loads(out.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left behind


def test_a_read_only_place_is_refused_before_work(tmp_path, monkeypatch):
    """EACCES on the write probe (root ignores permission bits, so the probe is made to fail)."""
    import tempfile

    from edgemed.fileio import check_output

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(k.get("dir", "")))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(EdgemedError, match="cannot write .*permission denied"):
        check_output(tmp_path / "out" / "m.safetensors", force=False)
