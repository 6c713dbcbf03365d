"""The hostile-input catalogue: each case builds one bad file from a good one and names the real
CLI command a user (or an attacker's victim) would run on it, with the exit code and message
fragment edgemed promises. tests/security/test_hostile.py runs every case;
benchmarks/hostile_inputs.py runs them through the installed `edgemed` command and commits the
table of what each printed.

A case gets an `Env`: a private work folder, the good tiny checkpoint and bundle (copied before
any change), a folder of real images, and a sentinel path that must never appear (every
code-naming payload tries to create it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Env:
    work: Path  # everything a case writes lives here
    checkpoint: Path  # a good trained checkpoint (read-only: copy before changing)
    bundle: Path  # a good bundle with onnx, openvino, tflite and torch artifacts
    images: Path  # a folder of good PNGs
    outside: Path  # a folder no case may change (escape target)
    sentinel: Path  # must never be created

    def copy_checkpoint(self, name: str = "model.safetensors") -> Path:
        dst = self.work / name
        shutil.copy2(self.checkpoint, dst)
        return dst

    def copy_bundle(self, name: str = "bundle") -> Path:
        dst = self.work / name
        shutil.copytree(self.bundle, dst)
        return dst


@dataclass(frozen=True)
class Case:
    name: str
    defect: str  # which of issue 19's defect classes it checks
    what: str
    build: Callable[[Env], list[str]]  # → the CLI arguments
    code: int = 2
    expect: str = ""  # a fragment the error line must contain


# ---- helpers that make bad files from good ones ----------------------------------------------

def read_meta(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["edgemed"])
    return meta, load_file(str(path))


def write_meta(path: Path, meta: dict | str, tensors: dict) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata={"edgemed": meta if isinstance(meta, str) else json.dumps(meta)})


def edit_checkpoint(path: Path, edit: Callable[[dict, dict], None]) -> Path:
    meta, tensors = read_meta(path)
    edit(meta, tensors)
    write_meta(path, meta, tensors)
    return path


def rehash(bundle: Path) -> None:
    """What an attacker does after changing a file: rewrite its sha256 and size in the manifest."""
    mpath = bundle / "edgemed.json"
    m = json.loads(mpath.read_text())
    for a in m["artifacts"]:
        for f in a["files"]:
            p = bundle / f["path"]
            if p.is_file():
                f["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
                f["size"] = p.stat().st_size
    mpath.write_text(json.dumps(m))


def edit_manifest(bundle: Path, edit: Callable[[dict], None]) -> Path:
    mpath = bundle / "edgemed.json"
    m = json.loads(mpath.read_text())
    edit(m)
    mpath.write_text(json.dumps(m))
    return bundle


def torch_file(bundle: Path) -> Path:
    m = json.loads((bundle / "edgemed.json").read_text())
    return bundle / next(a["file"] for a in m["artifacts"] if a["format"] == "torch")


def evil_factory(env: Env) -> Path:
    """A Python file that creates the sentinel when imported."""
    f = env.work / "evil.py"
    f.write_text(f"from pathlib import Path\nPath({str(env.sentinel)!r}).write_text('ran')\n"
                 "def build(**kw):\n    raise SystemExit('should never be called')\n")
    return f


def command_payload(env: Env) -> tuple[str, dict]:
    return "subprocess:getoutput", {"cmd": f"touch {env.sentinel}"}


def bomb_png(path: Path, side: int = 60000) -> Path:
    """A valid PNG header claiming side×side 8-bit grey pixels (a decompression bomb's header;
    the compressed body is a few bytes, so the file costs nothing to make)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * (side + 1))  # one row only: enough to be a real stream
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def recipe(env: Env, text: str, name: str = "r.yaml") -> Path:
    p = env.work / name
    p.write_text(text)
    return p


GOOD_RECIPE_TAIL = "dataset: pneumoniamnist\nstages: {train: {epochs: 1}}\n"


# ---- the cases -------------------------------------------------------------------------------

def _ckpt_module_factory(env: Env) -> list[str]:
    spec, kwargs = command_payload(env)
    ck = edit_checkpoint(env.copy_checkpoint(), lambda m, t: m["model"].update(name=spec, kwargs=kwargs))
    return ["evaluate", ck, "--limit", "64", "--n-boot", "0"]


def _ckpt_file_factory(env: Env) -> list[str]:
    spec = f"{evil_factory(env)}:build"
    ck = edit_checkpoint(env.copy_checkpoint(), lambda m, t: m["model"].update(name=spec, kwargs={}))
    return ["evaluate", ck, "--limit", "64", "--n-boot", "0"]


def _bundle_torch_factory(command: str) -> Callable[[Env], list[str]]:
    def build(env: Env) -> list[str]:
        b = env.copy_bundle()
        spec, kwargs = command_payload(env)
        edit_checkpoint(torch_file(b), lambda m, t: m["model"].update(name=spec, kwargs=kwargs))
        rehash(b)
        if command == "predict":
            return ["predict", b, env.images, "--artifact", "torch-fp32"]
        return ["bench", b, "--artifacts", "torch-fp32", "--iterations", "5", "--no-memory", "--no-accuracy"]
    return build


def _recipe_factory(env: Env) -> list[str]:
    evil_factory(env)
    r = recipe(env, "name: evil\nmodel: {factory: evil.py:build}\n" + GOOD_RECIPE_TAIL)
    return ["run", r, "--check"]


def _recipe_alias_bomb(env: Env) -> list[str]:
    lines = ["name: bomb", "model:", "  zoo: mednext_micro", "  kwargs:", '    l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"    l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return ["run", recipe(env, "\n".join(lines) + "\n" + GOOD_RECIPE_TAIL), "--check"]


def _recipe_self_alias(env: Env) -> list[str]:
    r = recipe(env, "name: loop\nmodel: &m {zoo: mednext_micro, kwargs: {again: *m}}\n" + GOOD_RECIPE_TAIL)
    return ["run", r, "--check"]


def _recipe_escape(env: Env) -> list[str]:
    r = recipe(env, "name: ../../escaped\nmodel: {zoo: mednext_micro}\n" + GOOD_RECIPE_TAIL)
    return ["run", r, "--check"]


def _decompression_bomb(env: Env) -> list[str]:
    folder = env.work / "scans"
    shutil.copytree(env.images, folder)
    bomb_png(folder / "bomb.png")
    return ["predict", env.bundle, folder, "--artifact", "onnx-fp32", "--json"]


def _huge_metadata(env: Env) -> list[str]:
    ck = edit_checkpoint(env.copy_checkpoint(), lambda m, t: m["training"].update(padding="x" * (17 << 20)))
    return ["evaluate", ck, "--limit", "64"]


def _deep_metadata(env: Env) -> list[str]:
    ck = env.copy_checkpoint()
    meta, tensors = read_meta(ck)
    text = json.dumps(meta)[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    write_meta(ck, text, tensors)
    return ["evaluate", ck, "--limit", "64"]


def _oversized_model(env: Env) -> list[str]:
    ck = edit_checkpoint(env.copy_checkpoint(),
                         lambda m, t: m["model"]["kwargs"].update(dims=[4096, 8192, 16384, 32768]))
    return ["evaluate", ck, "--limit", "64"]


def _class_count_ckpt(env: Env) -> list[str]:
    ck = edit_checkpoint(env.copy_checkpoint(), lambda m, t: m.update(class_names=["a", "b", "c"]))
    return ["evaluate", ck, "--limit", "64"]


def _nan_weights_ckpt(env: Env) -> list[str]:
    def poison(m: dict, t: dict) -> None:
        key = next(k for k, v in t.items() if v.dtype == np.float32 and v.size > 8)
        t[key] = np.full_like(t[key], np.nan)
    return ["evaluate", edit_checkpoint(env.copy_checkpoint(), poison), "--limit", "64"]


def _corrupt_bytes_ckpt(env: Env) -> list[str]:
    ck = env.copy_checkpoint()
    data = bytearray(ck.read_bytes())
    data[-4096:] = b"\xff" * 4096  # 0xFFFFFFFF is a float32 NaN
    ck.write_bytes(bytes(data))
    return ["evaluate", ck, "--limit", "64"]


def _truncated_ckpt(env: Env) -> list[str]:
    ck = env.copy_checkpoint()
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    return ["evaluate", ck, "--limit", "64"]


def _nan_onnx_rehashed(env: Env) -> list[str]:
    import onnx
    from onnx import numpy_helper

    b = env.copy_bundle()
    path = b / "model_fp32.onnx" if (b / "model_fp32.onnx").exists() else next(b.rglob("*.onnx"))
    model = onnx.load(str(path))
    init = max(model.graph.initializer, key=lambda i: int(np.prod(i.dims)))
    init.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(init).shape, np.nan, np.float32), init.name))
    onnx.save(model, str(path))
    rehash(b)
    return ["predict", b, env.images, "--artifact", "onnx-fp32"]


def _class_names_manifest(env: Env) -> list[str]:
    b = edit_manifest(env.copy_bundle(), lambda m: m.update(class_names=["a", "b", "c"]))
    return ["predict", b, env.images, "--artifact", "onnx-fp32"]


def _symlink_out(env: Env) -> list[str]:
    b = env.copy_bundle()
    secret = env.outside / "secret.onnx"
    onnx_file = next(p for p in b.rglob("*.onnx"))
    shutil.copy2(onnx_file, secret)
    onnx_file.unlink()
    onnx_file.symlink_to(secret)
    rehash(b)
    return ["predict", b, env.images, "--artifact", "onnx-fp32"]


def _path_traversal(env: Env) -> list[str]:
    b = env.copy_bundle()
    target = env.outside / "model.onnx"
    shutil.copy2(next(b.rglob("*.onnx")), target)
    def edit(m: dict) -> None:
        a = next(a for a in m["artifacts"] if a["id"] == "onnx-fp32")
        a["file"] = a["files"][0]["path"] = f"../{env.outside.name}/model.onnx"
    edit_manifest(b, edit)
    return ["predict", b, env.images, "--artifact", "onnx-fp32"]


def _primary_not_hashed(env: Env) -> list[str]:
    b = env.copy_bundle()
    shutil.copy2(next(b.rglob("*.onnx")), b / "unlisted.onnx")
    edit_manifest(b, lambda m: next(a for a in m["artifacts"] if a["id"] == "onnx-fp32").update(file="unlisted.onnx"))
    return ["predict", b, env.images, "--artifact", "onnx-fp32"]


def _huge_manifest(env: Env) -> list[str]:
    b = edit_manifest(env.copy_bundle(), lambda m: m.update(padding="x" * (17 << 20)))
    return ["bundle", "inspect", b]


def _truncated_manifest(env: Env) -> list[str]:
    b = env.copy_bundle()
    m = b / "edgemed.json"
    m.write_text(m.read_text()[: 200])
    return ["bundle", "inspect", b]


def _threads_zero(env: Env) -> list[str]:
    return ["bench", env.bundle, "--threads", "0", "--iterations", "5", "--no-memory", "--no-accuracy"]


def _auc_two_images(env: Env) -> list[str]:
    from edgemed.compress.calibration import build_calibration

    cal = build_calibration("pneumoniamnist", size=32, out=env.work / "cal.json")
    return ["quantize", env.checkpoint, "--calib", cal, "--formats", "onnx", "--metric", "auc", "--val-limit", "1",
            "--out", env.work / "q"]


def _calib_string_indices(env: Env) -> list[str]:
    from edgemed.compress.calibration import build_calibration

    cal = build_calibration("pneumoniamnist", size=32, out=env.work / "cal.json")
    m = json.loads(cal.read_text())
    m["indices"] = [str(i) for i in m["indices"]]
    cal.write_text(json.dumps(m))
    return ["quantize", env.checkpoint, "--calib", cal, "--formats", "onnx", "--out", env.work / "q"]


def _train_unwritable(env: Env) -> list[str]:
    blocker = env.work / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    return ["train", "mednext_micro", "--dataset", "pneumoniamnist", "--epochs", "1", "--limit-train", "64",
            "--out", blocker / "model.safetensors"]


def _trust_list_damaged(env: Env) -> list[str]:
    import os

    spec, _ = command_payload(env)
    (Path(os.environ["EDGEMED_CONFIG_DIR"]) / "trusted_code.json").write_text('{"trusted": "everything"}')
    ck = edit_checkpoint(env.copy_checkpoint(), lambda m, t: m["model"].update(name=spec, kwargs={}))
    return ["evaluate", ck, "--limit", "64"]


CASES: list[Case] = [
    Case("checkpoint names a module factory", "code execution",
         "metadata model name `subprocess:getoutput` with a shell command as kwargs", _ckpt_module_factory,
         expect="--trust-code"),
    Case("checkpoint names a .py factory", "code execution",
         "metadata model name `/…/evil.py:build` (the file writes a sentinel on import)", _ckpt_file_factory,
         expect="--trust-code"),
    Case("bundle torch artifact names code (predict)", "code execution",
         "the bundle's torch checkpoint names `subprocess:getoutput`; manifest re-hashed",
         _bundle_torch_factory("predict"), expect="--trust-code"),
    Case("bundle torch artifact names code (bench)", "code execution",
         "the same bundle through `bench`", _bundle_torch_factory("bench"), expect="--trust-code"),
    Case("recipe names an untrusted factory", "code execution",
         "`model: {factory: evil.py:build}` in a recipe from elsewhere", _recipe_factory, expect="--trust-code"),
    Case("damaged trust list", "code execution",
         "trusted_code.json says `\"trusted\": \"everything\"`", _trust_list_damaged, expect="trust list"),
    Case("YAML alias bomb", "resource exhaustion", "9 levels of 9 aliases in model.kwargs (≈ 387 M values)",
         _recipe_alias_bomb, expect="expands to more than"),
    Case("YAML alias that contains itself", "resource exhaustion", "`model: &m {kwargs: {again: *m}}`",
         _recipe_self_alias, expect="refers to itself"),
    Case("decompression bomb in a predict batch", "resource exhaustion",
         "a 60000² PNG among good images: reported by name, the rest classified", _decompression_bomb,
         code=3, expect="bomb.png"),
    Case("17 MiB checkpoint metadata", "resource exhaustion", "a padded JSON header", _huge_metadata,
         expect="limit"),
    Case("deeply nested checkpoint metadata", "resource exhaustion", "100 000 nested lists in the JSON header",
         _deep_metadata, expect="nested too deeply"),
    Case("metadata describes a huge model", "resource exhaustion",
         "kwargs dims [4096, 8192, 16384, 32768] over 33 k stored weights", _oversized_model, expect="metadata"),
    Case("17 MiB bundle manifest", "resource exhaustion", "a padded edgemed.json", _huge_manifest, expect="limit"),
    Case("recipe name escapes runs/", "escaping the folder", "`name: ../../escaped`", _recipe_escape,
         expect="name"),
    Case("symlink inside a bundle", "escaping the folder",
         "the ONNX file replaced by a link to a file outside; manifest re-hashed", _symlink_out,
         expect="symbolic link"),
    Case("manifest path with ..", "escaping the folder", "artifact file `../outside/model.onnx`",
         _path_traversal, expect="outside the bundle"),
    Case("primary file not among hashed files", "escaping the folder",
         "artifact `file` names an unhashed file", _primary_not_hashed, expect="not among its hashed files"),
    Case("train into an unwritable place", "work lost to a late check",
         "`--out` under a regular file: refused before training", _train_unwritable, expect="cannot write"),
    Case("NaN weights in a checkpoint", "wrong results", "one weight tensor set to NaN", _nan_weights_ckpt,
         expect="NaN"),
    Case("corrupted weight bytes", "wrong results", "the last 4 KiB of a checkpoint overwritten with 0xFF",
         _corrupt_bytes_ckpt, expect="model.safetensors"),
    Case("truncated checkpoint", "wrong results", "half of the file", _truncated_ckpt, expect="model.safetensors"),
    Case("NaN weights in an ONNX file, re-hashed", "wrong results",
         "the largest initializer set to NaN; manifest re-hashed", _nan_onnx_rehashed, expect="NaN"),
    Case("3 class names for a 2-logit model (bundle)", "wrong results", "manifest class_names edited",
         _class_names_manifest, expect="2 scores per image"),
    Case("3 class names for a 2-class checkpoint", "wrong results", "metadata class_names edited",
         _class_count_ckpt, expect="class names"),
    Case("bench --threads 0", "wrong results", "a thread count of 0", _threads_zero, expect="--threads"),
    Case("quantize --metric auc --val-limit 1", "wrong results", "a bound decided on 2 images",
         _auc_two_images, expect="--val-limit"),
    Case("calibration manifest with string indices", "wrong results", '`"indices": ["0", "5", …]`',
         _calib_string_indices, expect="calibration"),
    Case("truncated bundle manifest", "wrong results", "edgemed.json cut at 200 bytes", _truncated_manifest,
         expect="export the bundle again"),
]
