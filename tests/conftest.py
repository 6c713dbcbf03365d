"""Shared fixtures: the real data directory, small real data slices, a tiny trained checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgemed.formats import exportable_here

REPO = Path(__file__).resolve().parent.parent


EXPORT_FORMATS = exportable_here()  # from the format table: those whose converters are installed
needs_executorch = pytest.mark.skipif("executorch" not in EXPORT_FORMATS, reason='pip install "edgemed[executorch]"')



def _data_dir() -> Path | None:
    env = os.environ.get("EDGEMED_DATA_DIR")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (candidate / "pneumoniamnist.npz").is_file():
            return candidate
    return None


DATA_DIR = _data_dir()
needs_data = pytest.mark.skipif(DATA_DIR is None, reason="set EDGEMED_DATA_DIR to the shared data folder")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if DATA_DIR is None:
        pytest.skip("set EDGEMED_DATA_DIR to the shared data folder")
    return DATA_DIR


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path_factory):
    """Each test sees the shared data dir and a private cache (no downloads, no shared state)."""
    if DATA_DIR is not None:
        monkeypatch.setenv("EDGEMED_DATA_DIR", str(DATA_DIR))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("EDGEMED_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))  # its own trust list


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, data_dir) -> Path:
    """A mednext_micro trained one epoch on a 256-image slice of PneumoniaMNIST (a few seconds)."""
    from edgemed.train import train

    out = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    os.environ["EDGEMED_DATA_DIR"] = str(data_dir)
    train("mednext_micro", "pneumoniamnist", out=out, epochs=1, batch_size=32, limit_train=256,
          limit_eval=128, threads=2, progress=False, lr=3e-3)
    return out


@pytest.fixture(scope="session")
def tiny_convnext_checkpoint(tmp_path_factory, data_dir) -> Path:
    """convnext_med_micro (LayerNorm, SEVector, dual pooling) on a BloodMNIST slice (RGB, 8 classes)."""
    from edgemed.train import train

    out = tmp_path_factory.mktemp("ckpt") / "tiny_convnext.safetensors"
    os.environ["EDGEMED_DATA_DIR"] = str(data_dir)
    train("convnext_med_micro", "bloodmnist", out=out, epochs=1, batch_size=32, limit_train=320,
          limit_eval=160, threads=2, progress=False, lr=3e-3)
    return out


def write_npz(path: Path, n=(20, 6, 6), size=28, classes=2, rgb=False, seed=0, **overrides) -> Path:
    """A small MedMNIST-layout file (for bad-input tests)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        shape = (count, size, size, 3) if rgb else (count, size, size)
        arrays[f"{split}_images"] = rng.integers(0, 255, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % classes).astype(np.uint8).reshape(-1, 1)
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_checkpoint) -> Path:
    """The tiny checkpoint exported to every format installed here in FP32 and FP16 (the
    formats that have it)."""
    from edgemed.export.exporter import export

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    export(tiny_checkpoint, EXPORT_FORMATS, ["fp32", "fp16"], out, parity_images=64, progress=False, threads=2)
    return out


BLOCK_HEAVY = """
import sys
class _Block:
    # stands in for a device with only edgemed[runtime]: torch, OpenVINO, NNCF and the
    # converters cannot be imported
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'openvino', 'nncf', 'litert_torch', 'torchao', 'torch_pruning', 'safetensors'):
            raise ImportError(f"No module named {name!r} (blocked: runtime-only test)")
sys.meta_path.insert(0, _Block())
"""


def run_without_torch(args: list[str], check_modules: bool = True):
    """Run the edgemed CLI in a subprocess where torch cannot be imported."""
    import subprocess
    import sys

    code = BLOCK_HEAVY + (
        "from edgemed.cli import main\n"
        f"sys.argv = ['edgemed'] + {list(map(str, args))!r}\n"
        "try:\n    main()\nfinally:\n"
        "    assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)


def assert_clean_error(result, *fragments):
    """A CLI result that failed the way users are promised: exit 2, one `error:` line, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.output
    for f in fragments:
        assert f in lines[0], lines[0]
