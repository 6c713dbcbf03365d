"""The runtime-only device install (`pip install "edgemed[runtime]"`, or one runtime:
`edgemed[runtime-litert]`, `edgemed[runtime-onnx]`) on x86_64 and aarch64: the wheels pip would install for Linux, CPython 3.11, laid out
with `pip install --target --platform ... --only-binary=:all:` (nothing built or run), bytes on
disk per top-level package. Goal (issue 23): the runtime-only install ≤ 250 MB.

    python -m benchmarks.install_size
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import (
    RESULTS,
    edgemed_wheel,
    package_sizes,
    page,
    pip_layout,
    save_results,
    size_summary,
    size_table,
)

GOAL_MB = 250
# both device runtimes, or one: LiteRT (the INT8 path on ARM) or onnxruntime
EXTRAS = ("runtime", "runtime-litert", "runtime-onnx")


def markdown(payload: dict) -> str:
    return page(payload, "Device install size", [
        "`pip install --target DIR --platform manylinux_2_28_<arch> (and older manylinux tags) "
        "--only-binary=:all: edgemed-<this checkout>.whl[EXTRA]`, CPython 3.11: the wheels laid out, "
        "nothing built or run; bytes on disk per top-level package (metadata left out).",
        size_table(payload["installs"], payload["goal_mb"])])


def main() -> None:
    out: dict = {"goal_mb": GOAL_MB, "installs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        wheel = edgemed_wheel(Path(tmp))
        for extra in EXTRAS:
            for arch in ("x86_64", "aarch64"):
                folder = Path(tmp) / f"{extra}-{arch}"
                name = f"edgemed[{extra}] {arch}"
                error = pip_layout([f"{wheel}[{extra}]"], folder, arch)
                out["installs"][name] = {"error": error} if error else size_summary(package_sizes(folder))
                print(name, out["installs"][name], flush=True)
    save_results("install_size", out, markdown)
    print((RESULTS / "install_size.md").read_text())


if __name__ == "__main__":
    main()
