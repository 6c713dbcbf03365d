"""Which user code edgemed may run when a file names it.

A checkpoint records the model it was built from. A zoo name resolves only through the registry;
a user factory (`path/to/file.py:factory`, `package.module:factory`) is code, and a file must
never choose code to import or call. A factory named in a file runs only when the user chose it:

- named by the user directly (`edgemed train net.py:build`, `create_model("net.py:build", ...)`),
  which also records it as trusted on this machine, so the checkpoints made from it keep working
  in `quantize`, `bench` and recipes without flags;
- recorded with `edgemed trust add SPEC` (the same list);
- allowed for one command with `--trust-code` (or `with edgemed.trust.trusting(): ...`).

The trust list lives in `$EDGEMED_CONFIG_DIR/trusted_code.json` (default
`$XDG_CONFIG_HOME/edgemed`, `~/.config/edgemed`). A file factory is keyed by the file's resolved
path, its sha256 and the factory name, so an edited file, or a copy of it in another folder
(whose neighbouring modules may differ), is not trusted; a module factory (installed code, e.g.
`monai.networks.nets:DenseNet121`) by its dotted name.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from edgemed.errors import EdgemedError

TRUST_FILE = "trusted_code.json"
MAX_ENTRIES = 10_000  # a trust list is written by hand or by edgemed: bounded when read
_MODULE_SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_]\w*$")
_FILE_SPEC = re.compile(r"^.+\.py:[A-Za-z_]\w*$")

_TRUST_ALL: contextvars.ContextVar[bool] = contextvars.ContextVar("edgemed_trust_code", default=False)


class UntrustedCode(EdgemedError):
    """A file names user code that the user has not chosen to run."""


def config_dir() -> Path:
    if os.environ.get("EDGEMED_CONFIG_DIR"):
        return Path(os.environ["EDGEMED_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edgemed"


def trust_file() -> Path:
    return config_dir() / TRUST_FILE


def is_user_factory(name: str) -> bool:
    return ":" in name


def check_spec(spec: str) -> None:
    """A factory spec must look like path/to/file.py:factory or package.module:factory."""
    if not (_FILE_SPEC.match(spec) or _MODULE_SPEC.match(spec)):
        raise EdgemedError(f"user model {spec!r} must look like path/to/file.py:factory or "
                           "package.module:factory")


def absolute_spec(spec: str) -> str:
    """A file factory with its file's absolute path, so a checkpoint that records it loads from
    any working folder (module factories are unchanged)."""
    check_spec(spec)
    target, _, attr = spec.rpartition(":")
    return f"{Path(target).resolve()}:{attr}" if target.endswith(".py") else spec


def identity(spec: str) -> dict:
    """What a trust entry is keyed by: a file factory by its file's sha256 (so an edited or
    replaced file is not trusted), a module factory by its dotted name."""
    from edgemed.fileio import sha256_file

    check_spec(spec)
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise EdgemedError(f"user model file {path} not found: give the path to your model's .py file")
        return {"kind": "file", "path": str(path.resolve()), "sha256": sha256_file(path), "factory": attr}
    return {"kind": "module", "module": target, "factory": attr}


def _key(ident: dict) -> tuple:
    return (ident["kind"], ident.get("path"), ident.get("sha256") or ident.get("module"), ident["factory"])


def trusted_entries() -> list[dict]:
    """The trust list (empty when there is none); a damaged list is an error, not 'trust all'."""
    path = trust_file()
    if not path.is_file():
        return []
    from edgemed.fileio import read_json

    obj = read_json(path, "trust list", max_bytes=16 << 20)
    entries = obj.get("trusted") if isinstance(obj, dict) else None
    ok = isinstance(entries, list) and len(entries) <= MAX_ENTRIES and all(
        isinstance(e, dict) and e.get("kind") in ("file", "module") and isinstance(e.get("factory"), str)
        and isinstance(e.get("sha256") if e.get("kind") == "file" else e.get("module"), str)
        for e in entries)
    if not ok:
        raise EdgemedError(f"trust list {path} is malformed: fix it or delete it and re-add your "
                           "factories with `edgemed trust add SPEC`")
    return entries


def is_trusted(spec: str) -> bool:
    if _TRUST_ALL.get():
        return True
    try:
        key = _key(identity(spec))
    except EdgemedError:
        return False
    return any(_key(e) == key for e in trusted_entries())


def record_trust(spec: str) -> dict:
    """Add a factory the user named to this machine's trust list (idempotent)."""
    from edgemed.fileio import atomic_write_json

    ident = identity(spec)
    entries = trusted_entries()
    if not any(_key(e) == _key(ident) for e in entries):
        entries.append({**ident, "spec": spec,
                        "added": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        atomic_write_json(trust_file(), {"trusted": entries})
    return ident


def remove_trust(spec: str) -> bool:
    from edgemed.fileio import atomic_write_json

    entries = trusted_entries()
    keep = [e for e in entries if e.get("spec") != spec]
    with contextlib.suppress(EdgemedError):
        key = _key(identity(spec))
        keep = [e for e in keep if _key(e) != key]
    if len(keep) != len(entries):
        atomic_write_json(trust_file(), {"trusted": keep})
    return len(keep) != len(entries)


def require_trusted(spec: str, source: str | Path) -> None:
    """Refuse to run the factory `spec` that the file `source` names unless the user chose it."""
    check_spec(spec)
    if is_trusted(spec):
        return
    raise UntrustedCode(
        f"{source} names user code {spec!r}, which this machine has not trusted: if you know that "
        f"code, rerun with --trust-code, or trust it once with `edgemed trust add {spec}`")


@contextlib.contextmanager
def trusting(enabled: bool = True) -> Iterator[None]:
    """Within the block, factories named in files run without a trust-list entry (`--trust-code`)."""
    token = _TRUST_ALL.set(enabled)
    try:
        yield
    finally:
        _TRUST_ALL.reset(token)


def set_trust_code(enabled: bool) -> None:
    """For the CLI: `--trust-code` holds for the whole command."""
    _TRUST_ALL.set(enabled)
