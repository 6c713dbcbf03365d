#!/usr/bin/env bash
# Build an emulated aarch64 Debian bookworm root file system (the userland of Raspberry Pi OS
# 64-bit) with a virtual environment holding the runtime-only install, `edgemed[runtime]`,
# from aarch64 wheels. Runs under qemu-user through binfmt_misc; needs root.
#
#     sudo bash benchmarks/arm/setup_rootfs.sh          # then: python benchmarks/arm/compare_arm.py BUNDLE
#
# Idempotent: each finished step leaves a marker and is skipped next time; edgemed itself is
# reinstalled only when its sources changed. Everything goes under benchmarks/work/arm/
# (git-ignored), or under $EDGEMED_ARM_WORK.
#
# Settings (environment): EDGEMED_ARM_WORK (work folder), EDGEMED_ARM_MIRROR (Debian mirror;
# default: the one apt uses here), EDGEMED_ARM_CONSTRAINTS (a pip constraints file, e.g. to pin
# the same onnxruntime / ai-edge-litert versions as the x86 side), EDGEMED_ARM_REBUILD=1 (wipe
# and rebuild the rootfs).
#
# Traps this avoids: /sys is never mounted in the chroot (onnxruntime reads CPU topology from it
# and crashes under qemu); the rootfs is only ever deleted after checking nothing is mounted
# inside it; every mount made here is undone on exit, also on errors and Ctrl-C.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${EDGEMED_ARM_WORK:-$REPO/benchmarks/work/arm}"
ROOTFS="$WORK/rootfs"
VENV=/opt/edgemed-venv              # inside the rootfs
SRC=/opt/edgemed-src                # inside the rootfs: a copy of the package sources
SUITE=bookworm
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
started=$(date +%s)

log() { printf '[setup_rootfs %3ds] %s\n' "$(( $(date +%s) - started ))" "$*"; }
die() { printf 'setup_rootfs: error: %s\n' "$*" >&2; exit 2; }

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot, mount): run it with sudo"
[[ $(uname -m) == x86_64 || $(uname -m) == aarch64 ]] || die "unsupported host $(uname -m)"

# ---- mounts: every one is recorded and undone on exit (last mounted, first unmounted) --------
MOUNTED=()
cleanup() {
    local i
    for (( i=${#MOUNTED[@]}-1; i>=0; i-- )); do
        umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" 2>/dev/null || \
            echo "setup_rootfs: warning: could not unmount ${MOUNTED[i]}" >&2
    done
    MOUNTED=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mounts_inside() {  # every mount point at or below $1 (from the kernel's table)
    awk -v root="$1" '$2 == root || index($2, root "/") == 1 {print $2}' /proc/self/mounts
}

mount_into() {  # mount_into TARGET ARGS...: mount unless already a mount point, and remember it
    local target=$1; shift
    mkdir -p "$target"
    if ! mountpoint -q "$target"; then
        mount "$@" "$target"
        MOUNTED+=("$target")
    fi
}

safe_wipe() {  # delete the rootfs only when nothing is mounted inside it
    local inside
    inside=$(mounts_inside "$ROOTFS")
    [[ -z $inside ]] || die "refusing to delete $ROOTFS: still mounted inside it: $inside (umount them first)"
    rm -rf --one-file-system "$ROOTFS"
}

# ---- host tools ------------------------------------------------------------------------------
if [[ $(uname -m) == x86_64 ]]; then
    need=()
    command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v update-binfmts >/dev/null || need+=(binfmt-support)
    # compare_arm cross-compiles benchmarks/arm/pte_logits.cpp (ExecuTorch's C++ runtime, no torch)
    command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
    command -v g++ >/dev/null || need+=(g++)
    if (( ${#need[@]} )); then
        command -v apt-get >/dev/null || die "install ${need[*]} (no apt-get here)"
        log "installing ${need[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
    fi
    # binfmt_misc lets the kernel hand aarch64 ELF files to qemu-aarch64
    if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
        mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc  # host-wide; left mounted on purpose
    fi
    if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || ! grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
        update-binfmts --enable qemu-aarch64
    fi
    grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "qemu-aarch64 binfmt handler is not enabled"
else
    command -v debootstrap >/dev/null || die "install debootstrap"
fi

# ---- Debian mirror: the one apt already uses here ----------------------------------------------
mirror="${EDGEMED_ARM_MIRROR:-}"
if [[ -z $mirror ]]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE '(https?://[^ ]+/debian)/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
    mirror=${mirror%/}
    mirror=${mirror:-http://deb.debian.org/debian}
fi

# ---- rootfs ------------------------------------------------------------------------------------
mkdir -p "$WORK"
if [[ ${EDGEMED_ARM_REBUILD:-0} == 1 && -e $ROOTFS ]]; then
    log "EDGEMED_ARM_REBUILD=1: wiping $ROOTFS"
    safe_wipe
fi
if [[ -e $ROOTFS && ! -e $ROOTFS/.edgemed-stage1 ]]; then
    log "a half-made rootfs from an interrupted run: starting it again"
    safe_wipe
fi
if [[ ! -e $ROOTFS/.edgemed-stage1 ]]; then
    log "debootstrap stage 1 (arm64 $SUITE minbase from $mirror)"
    mkdir -p "$ROOTFS"
    debootstrap --arch=arm64 --foreign --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        "$SUITE" "$ROOTFS" "$mirror" > "$WORK/debootstrap-stage1.log" 2>&1 ||
        { tail -n 20 "$WORK/debootstrap-stage1.log" >&2; die "debootstrap stage 1 failed (log: $WORK/debootstrap-stage1.log)"; }
    touch "$ROOTFS/.edgemed-stage1"
fi
# A binfmt handler registered without the F flag looks for the interpreter inside the chroot.
if [[ $(uname -m) == x86_64 ]] && ! grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    interp=$(awk '/^interpreter/ {print $2}' /proc/sys/fs/binfmt_misc/qemu-aarch64)
    mkdir -p "$ROOTFS$(dirname "$interp")"
    cp -f "$interp" "$ROOTFS$interp"
    cp -f "$(command -v qemu-aarch64-static)" "$ROOTFS/usr/bin/qemu-aarch64-static"
fi
if [[ ! -e $ROOTFS/.edgemed-stage2 ]]; then
    log "debootstrap stage 2 (inside the chroot, emulated)"
    chroot "$ROOTFS" /debootstrap/debootstrap --second-stage > "$WORK/debootstrap-stage2.log" 2>&1 ||
        { cleanup; tail -n 20 "$WORK/debootstrap-stage2.log" >&2; die "debootstrap stage 2 failed (log: $WORK/debootstrap-stage2.log; EDGEMED_ARM_REBUILD=1 starts over)"; }
    # stage 2 mounts /proc (and may bind /dev) itself; make sure nothing is left behind
    for m in $(mounts_inside "$ROOTFS" | sort -r); do umount "$m" || umount -l "$m"; done
    touch "$ROOTFS/.edgemed-stage2"
fi
[[ $(chroot "$ROOTFS" /usr/bin/uname -m) == aarch64 ]] || die "the chroot does not run aarch64 binaries"

# ---- what pip in the chroot needs: DNS, /proc, /dev (never /sys) ---------------------------------
cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# The host's CA bundle, for pip: where the network re-signs TLS with a private CA (a proxy, a
# company mirror), the chroot's stock Debian bundle lacks it. Harmless where it does not.
host_ca="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
[[ -f $host_ca ]] && cp -L "$host_ca" "$ROOTFS/etc/edgemed-host-ca.crt"
mount_into "$ROOTFS/proc" -t proc proc
[[ -c $ROOTFS/dev/null && -c $ROOTFS/dev/urandom ]] || mount_into "$ROOTFS/dev" --bind /dev

pip_cert=""
[[ -f $ROOTFS/etc/edgemed-host-ca.crt ]] && pip_cert=/etc/edgemed-host-ca.crt
in_chroot() {  # a clean environment: none of the host's PIP_* settings leak in
    chroot "$ROOTFS" /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/root LANG=C.UTF-8 \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 ${pip_cert:+PIP_CERT=$pip_cert} "$@"
}

if [[ ! -x $ROOTFS$VENV/bin/python ]]; then
    log "creating the venv $VENV"
    in_chroot python3 -m venv "$VENV"
    in_chroot "$VENV/bin/python" -m pip install -q --upgrade pip || log "warning: could not upgrade pip (going on with Debian's)"
fi

# ---- edgemed from the repository (a copy of the package sources; the repo stays untouched) ----
sources=(pyproject.toml README.md edgemed)
src_hash=$(cd "$REPO" && find "${sources[@]}" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 |
    sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
constraints=()
if [[ -n ${EDGEMED_ARM_CONSTRAINTS:-} ]]; then
    cp -f "$EDGEMED_ARM_CONSTRAINTS" "$ROOTFS/opt/constraints.txt"
    constraints=(-c /opt/constraints.txt)
    src_hash="$src_hash-$(sha256sum "$EDGEMED_ARM_CONSTRAINTS" | cut -c1-8)"
fi
if [[ $(cat "$ROOTFS/opt/.edgemed-installed" 2>/dev/null) != "$src_hash" ]]; then
    log "installing edgemed[runtime] (sources $src_hash) from aarch64 wheels"
    rm -rf --one-file-system "$ROOTFS$SRC" "$ROOTFS/opt/edgemed-wheel"
    mkdir -p "$ROOTFS$SRC"
    (cd "$REPO" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - "${sources[@]}") | tar -xf - -C "$ROOTFS$SRC"
    # build edgemed's own (pure Python) wheel, then install it with only binary wheels for its
    # dependencies: compiling numpy & co. under emulation would take hours, so fail fast instead
    in_chroot "$VENV/bin/python" -m pip wheel -q --no-deps -w /opt/edgemed-wheel "$SRC"
    wheel=$(cd "$ROOTFS/opt/edgemed-wheel" && ls edgemed-*.whl)
    in_chroot "$VENV/bin/python" -m pip install -q --only-binary=:all: --force-reinstall --no-deps \
        "/opt/edgemed-wheel/$wheel"
    in_chroot "$VENV/bin/python" -m pip install -q --only-binary=:all: "${constraints[@]}" \
        "/opt/edgemed-wheel/$wheel[runtime]"
    echo "$src_hash" > "$ROOTFS/opt/.edgemed-installed"
fi

log "check: import the runtime layer on aarch64"
in_chroot "$VENV/bin/python" - <<'EOF'
import platform, sys
import numpy, onnxruntime, ai_edge_litert
import edgemed
from edgemed.runtime import available_devices
assert platform.machine() == "aarch64", platform.machine()
for heavy in ("torch", "openvino"):
    assert heavy not in sys.modules, heavy
print(f"aarch64 OK: Python {platform.python_version()}, edgemed {edgemed.__version__}, "
      f"numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__} "
      f"{available_devices('onnxruntime')}, litert {available_devices('litert')}")
EOF
log "done: rootfs $ROOTFS, venv $VENV (run: python benchmarks/arm/compare_arm.py BUNDLE)"
