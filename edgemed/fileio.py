"""Safe writes: every file goes through a temp file + rename; outputs need --force to replace."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgemed.errors import EdgemedError

_HASH_CACHE: dict[tuple[str, int, int], str] = {}
MAX_JSON_BYTES = 64 << 20  # manifests, results, trust lists: far below this; a bigger file is refused
# errors of the place being written, not of edgemed: said in one line with the path and the fix
_WRITE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                 errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                 errno.EROFS: "read-only file system", errno.ENOTDIR: "a parent is not a folder",
                 errno.EISDIR: "it is a folder", errno.ENAMETOOLONG: "file name too long"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _normal_mode(path: str | Path, directory: bool = False) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; outputs get the usual umask modes."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, cached by (path, size, mtime) so repeated checks are cheap."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def sha256_json(obj: Any) -> str:
    """Hex sha256 of an object's canonical JSON (sorted keys; non-JSON values by str): a content
    key for settings, so equal settings give equal keys across processes."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def check_output(path: str | Path, force: bool, need_bytes: int = 0) -> Path:
    """Refuse to replace an existing output unless force is set, and check now, before any long
    work, that it can be written (the folder can be made, a file created in it, `need_bytes`
    free), so a run never ends by losing its result to a read-only folder or a full disk."""
    p = Path(path)
    if p.exists() and not force:
        raise EdgemedError(f"{p} already exists: choose another --out or pass --force to replace it")
    check_writable(p, need_bytes)
    return p


def write_error(path: str | Path, e: BaseException, writing: bool = True, option: str = "--out") -> EdgemedError | None:
    """The one-line error for a failed write of `path` caused by the place written to (full disk,
    no permission, read-only); None for other failures. `writing=False`: an OSError of unknown
    direction (the CLI's last resort), worded for reading or writing."""
    code = getattr(e, "errno", None)
    reason = _WRITE_ERRNOS.get(code) if code is not None else None
    if reason is None:
        text = str(e).lower()
        for c, r in _WRITE_ERRNOS.items():
            if os.strerror(c).lower() in text:
                reason = r
                break
    if reason is None:
        return None
    where = getattr(e, "filename", None) or path
    if not writing:
        return EdgemedError(f"cannot use {where}: {reason}; check the path and its permissions, free space, "
                            "or choose another --out")
    return EdgemedError(f"cannot write {where}: {reason}; free space or choose another {option} "
                        "(nothing was replaced)")


def check_writable(path: str | Path, need_bytes: int = 0, option: str = "--out") -> None:
    """Create the parent folder and a probe file beside `path` (then remove it); check free space.
    `option`: the command's option that names the place, for the message."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{p.name[:64]}.", suffix=".probe", dir=p.parent)
        os.close(fd)
        os.unlink(probe)
        free = shutil.disk_usage(p.parent).free
    except (FileExistsError, NotADirectoryError):
        blocker = next((q for q in p.parents if q.exists() and not q.is_dir()), p.parent)
        raise EdgemedError(f"cannot write {p}: {blocker} is a file, not a folder; choose another {option}") from None
    except OSError as e:
        raise write_error(p, e, option=option) or EdgemedError(
            f"cannot write {p}: {e.strerror or e}; choose another {option}") from None
    if need_bytes and free < need_bytes:
        raise EdgemedError(f"cannot write {p}: {free / 2**20:.0f} MiB free, about {need_bytes / 2**20:.0f} MiB "
                           f"needed; free space or choose another {option}")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    _normal_mode(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        err = write_error(p, e)
        if err is not None:
            raise err from None
        raise
    return p


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it is renamed onto `path` (files written by
    libraries that only take a file name)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # created exclusively with an unpredictable name: nothing planted beside the output is followed
    fd, name = tempfile.mkstemp(prefix=f".{p.name[:64]}.", suffix=f".tmp{p.suffix}", dir=p.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():
            _normal_mode(tmp)
        os.replace(tmp, p)
    except Exception as e:  # libraries report a full disk in their own exception types
        err = write_error(p, e)
        if err is not None:
            raise err from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Build a folder in a temp sibling and swap it in only when the block succeeds, so a failed
    run leaves no partial folder and an existing one is replaced only with force."""
    final = check_output(path, force)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    _normal_mode(tmp, directory=True)
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old.{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def parse_json(text: str | bytes, where: str, fix: str = "regenerate it") -> Any:
    """JSON from a file that may be hostile: any failure (syntax, encoding, nesting too deep for
    the parser, numbers too long) is one EdgemedError naming `where` and the fix."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # JSONDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:200]
        raise EdgemedError(f"{where} is not valid JSON ({reason}): {fix}") from None


def read_bounded(path: str | Path, what: str, max_bytes: int, fix: str = "regenerate it") -> bytes:
    """A file's bytes, refused (not read) when it is over `max_bytes`."""
    p = Path(path)
    if not p.is_file():
        raise EdgemedError(f"{what} not found: {p}; check the path")
    with open(p, "rb") as f:  # one byte past the limit: a size from stat() can be wrong (/proc, pipes)
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        size = max(len(data), p.stat().st_size)
        limit = f"{max_bytes / 2**20:.0f} MiB" if max_bytes >= 1 << 20 else f"{max_bytes} bytes"
        raise EdgemedError(f"{what} {p} is {size / 2**20:.1f} MiB, over edgemed's limit of {limit} for such a "
                           f"file: {fix}")
    return data


def read_json(path: str | Path, what: str = "file", max_bytes: int = MAX_JSON_BYTES,
              fix: str = "regenerate it") -> Any:
    return parse_json(read_bounded(path, what, max_bytes, fix), f"{what} {Path(path)}", fix)


def check_yaml_expansion(root, limit: int, error) -> None:
    """Refuse a composed YAML document whose aliases expand past `limit` values, or refer to
    themselves, before anything is built from it (an alias bomb of a few lines expands to
    billions). Sizes are memoised per node, so the check is linear in the file.
    `error(node, problem)` makes the exception to raise (with the node's line)."""
    import yaml

    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in visiting:
            raise error(node, "a YAML alias refers to itself; write the value out")
        visiting.add(id(node))
        children = ([c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        total = 1
        for c in children:
            total += size(c)
            if total > limit:
                raise error(node, f"this value expands to more than {limit:,} values (YAML aliases); "
                                  "write it out without alias chains")
        visiting.discard(id(node))
        sizes[id(node)] = total
        return total

    try:
        size(root)
    except RecursionError:
        raise error(root, "nested too deeply; write it flatter") from None


def read_yaml(path: str | Path, what: str, max_bytes: int = 1 << 20, max_values: int = 20_000,
              fix: str = "fix it") -> Any:
    """A small YAML document from a file that may be hostile: bounded in bytes and in values
    after alias expansion; any failure is one EdgemedError naming the file and the fix."""
    import yaml

    p = Path(path)
    text = read_bounded(p, what, max_bytes, fix)
    try:
        root = yaml.compose(text.decode("utf-8"))
        if root is None:
            return None
        check_yaml_expansion(root, max_values, lambda node, problem: EdgemedError(
            f"{what} {p}:{node.start_mark.line + 1}: {problem}"))
        return yaml.safe_load(text)
    except (ValueError, OverflowError) as e:  # dates like 2001-99-99, integers past Python's digit limit
        raise EdgemedError(f"{what} {p} holds a value YAML cannot read ({str(e)[:80]}): {fix}") from None
    except UnicodeDecodeError:
        raise EdgemedError(f"{what} {p} is not UTF-8 text: {fix}") from None
    except RecursionError:
        raise EdgemedError(f"{what} {p} is nested too deeply: {fix}") from None
    except yaml.YAMLError as e:
        raise EdgemedError(f"{what} {p} is not valid YAML ({str(e).splitlines()[0][:120]}): {fix}") from None


def confined(root: str | Path, relative: str, what: str) -> Path:
    """`root/relative` for a path read from a file: relative, no `..`, no symlink on the way, and
    inside `root` once resolved. Anything else is an EdgemedError naming `what`."""
    from pathlib import PurePosixPath

    rel = PurePosixPath(relative) if isinstance(relative, str) else None
    if rel is None or not relative or rel.is_absolute() or ".." in rel.parts or "\\" in relative \
            or "\x00" in relative:
        raise EdgemedError(f"{what} names a path outside its folder ({relative!r}): edgemed reads "
                           "only files inside it; use a relative path without `..`, or make the folder again")
    base = Path(root)
    current = base
    for part in rel.parts:
        current = current / part
        if current.is_symlink():
            raise EdgemedError(f"{what}: {relative} is a symbolic link, and edgemed follows no links "
                               "in what it reads: copy the real file in its place")
    resolved = current.resolve()
    if not resolved.is_relative_to(base.resolve()):
        raise EdgemedError(f"{what} names a path outside its folder ({relative!r}): edgemed reads "
                           "only files inside it; use a relative path without `..`, or make the folder again")
    return current


@contextlib.contextmanager
def quiet_native() -> Iterator[None]:
    """Silence what converters print from native code and Python (progress, banners, INFO logs)
    by pointing file descriptors 1 and 2 at /dev/null; `edgemed --debug` (EDGEMED_DEBUG=1) keeps it."""
    import sys

    if os.environ.get("EDGEMED_DEBUG"):
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
