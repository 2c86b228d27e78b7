#!/usr/bin/env bash
# Pi-like install test: `pip install` of the current commit inside an emulated
# Debian 12 (bookworm, the base of Raspberry Pi OS) arm64 / armhf root file
# system (debootstrap + qemu-user-static via binfmt_misc), building the
# extension from source there, then the NEON check and the tests that need no
# TensorFlow. Appends a result line to docs/ARM.md.
#
#   usage: sudo arm/pi_install_test.sh [arm64|armhf|all]     (default arm64)
#
# ON DEMAND, not per CI run: a fresh rootfs takes ~2.5 min (debootstrap) plus
# the emulated apt/pip/compile/test steps (~10-20 min per arch here).
# Needs root (debootstrap, chroot, mounts) and network access to the Debian
# mirror and PyPI. The rootfs is made by the pichroot tools (../shared/tools/
# pichroot, override with PICHROOT_TOOLS) under $PICHROOT_BASE (default
# /tmp/pichroot) and reused when present; each run makes a fresh venv.
# Env: NO_RECORD=1 (do not touch docs/ARM.md), PYTEST_ARGS (extra args),
#      KEEP_LOGS dir (default /tmp/edgebnn-pi-install).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${PICHROOT_TOOLS:-$REPO/../shared/tools/pichroot}"
LOGDIR="${KEEP_LOGS:-/tmp/edgebnn-pi-install}"
TARGET="${1:-arm64}"

die() { echo "pi_install_test: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount)"
[ -f "$TOOLS/common.sh" ] || die "pichroot tools not found at $TOOLS (set PICHROOT_TOOLS)"
case "$TARGET" in arm64|armhf) ARCHES=("$TARGET");; all) ARCHES=(arm64 armhf);;
    *) die "usage: $0 [arm64|armhf|all]";; esac
# shellcheck source=/dev/null
. "$TOOLS/common.sh"
# every arch tests the commit HEAD was at the start (HEAD may move meanwhile)
COMMIT="$(git -C "$REPO" rev-parse --short HEAD)"
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
    echo "pi_install_test: note: uncommitted changes are NOT tested (git archive of $COMMIT)" >&2
fi
mkdir -p "$LOGDIR"

# Minimal, reproducible environment for commands run inside the rootfs.
in_root() { # ROOT CMD...
    local r="$1"; shift
    chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_DEFAULT_TIMEOUT=180 PYTHONDONTWRITEBYTECODE=1 "$@"
}

step() { # NAME CMD...: run, log wall time; failure stops this arch
    local name="$1" s rc=0; shift; s=$(date +%s)
    echo "== [$ARCH] $name"
    "$@" || rc=$?
    printf '== [%s] %s: %ds rc=%d\n' "$ARCH" "$name" $(( $(date +%s) - s )) $rc
    return $rc
}

# What a Raspberry Pi OS user installs with apt first (docs/ARM.md): a C
# compiler and Python headers; on 32-bit also numpy and Pillow from the
# distribution (PyPI has no armv7l wheels of either).
apt_packages() {
    local pk="python3 python3-venv python3-dev gcc libc6-dev ca-certificates"
    [ "$ARCH" = armhf ] && pk="$pk python3-numpy python3-pil"
    echo "$pk"
}

# Functions below chain with && : errexit does not apply inside a function
# called from an && list, so each failure must be passed on explicitly.
prepare_root() {
    # start from no mounts: 02-debootstrap.sh's du would walk a mounted /proc
    chroot_umount "$ROOT"
    "$TOOLS/01-host-setup.sh" >/dev/null &&
    "$TOOLS/02-debootstrap.sh" "$ARCH" &&
    chroot_mount "$ROOT" || return
    # host CA certificates (an egress proxy's) so pip's TLS checks pass inside;
    # the emulated update-ca-certificates takes a minute, so only when new
    local crt newcrt=0
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    for crt in /usr/local/share/ca-certificates/*.crt; do
        [ -f "$crt" ] || continue
        cmp -s "$crt" "$ROOT/usr/local/share/ca-certificates/${crt##*/}" && continue
        cp "$crt" "$ROOT/usr/local/share/ca-certificates/" && newcrt=1
    done
    local pk; pk="$(apt_packages)"
    # shellcheck disable=SC2086
    if ! in_root "$ROOT" dpkg -s $pk >/dev/null 2>&1; then
        # a mirror mid-sync fails one index now and then: retry once, then go
        # on with the indices that did download (install fails if they miss)
        in_root "$ROOT" apt-get update -q || { sleep 20; in_root "$ROOT" apt-get update -q; } ||
            echo "apt-get update incomplete, going on with the indices that downloaded"
        in_root "$ROOT" apt-get install -y -q --no-install-recommends $pk || return
    fi
    [ $newcrt = 0 ] || in_root "$ROOT" update-ca-certificates >/dev/null
}

copy_source() { # git archive of HEAD -> ROOT/tmp/edgebnn-src
    rm -rf "$ROOT/tmp/edgebnn-src" "$ROOT/tmp/edgebnn-testrun"
    mkdir -p "$ROOT/tmp/edgebnn-src" &&
    git -C "$REPO" archive --format=tar "$COMMIT" | tar -x -C "$ROOT/tmp/edgebnn-src"
}

pip_install() {
    local V=/opt/edgebnn-venv
    rm -rf "${ROOT:?}$V"
    if [ "$ARCH" = armhf ]; then
        # Debian's numpy/Pillow seen through the venv; no build isolation, or
        # pip would build numpy from the sdist for the build env (~50 min).
        in_root "$ROOT" python3 -m venv --system-site-packages $V &&
        in_root "$ROOT" $V/bin/pip install -q "setuptools>=68" wheel "Cython>=3.0" &&
        in_root "$ROOT" $V/bin/pip install -v --no-build-isolation "/tmp/edgebnn-src[test]"
    else
        in_root "$ROOT" python3 -m venv $V &&
        in_root "$ROOT" $V/bin/pip install -v "/tmp/edgebnn-src[test]"
    fi
}

neon_check() {
    # outside the source tree, so the installed package (with the .so) is imported
    in_root "$ROOT" sh -c 'cd / && /opt/edgebnn-venv/bin/python -c "
import platform, edgebnn, edgebnn._engine as e
print(\"ISA-CHECK machine=%s available=%s selected=%s file=%s\" % (
      platform.machine(), e.isa_available(), e.get_isa(), edgebnn.__file__))
assert e.get_isa() == \"neon\", \"NEON path not selected\"
"'
}

run_tests() {
    # the tests run as from the repository root, but without edgebnn/ there:
    # the installed edgebnn (with the built .so) must be the one imported;
    # other top-level packages the tests import (demos, export) come along
    local T="$ROOT/tmp/edgebnn-testrun" S="$ROOT/tmp/edgebnn-src" d
    mkdir -p "$T" &&
    cp -r "$S/tests" "$S/pyproject.toml" "$T/" || return
    for d in "$S"/*/__init__.py; do
        d="$(dirname "$d")"
        [ "${d##*/}" = edgebnn ] || cp -r "$d" "$T/" || return
    done
    in_root "$ROOT" sh -c "cd /tmp/edgebnn-testrun && /opt/edgebnn-venv/bin/python -m pytest \
        -p no:cacheprovider -q -rs -m 'not slow and not tf' ${PYTEST_ARGS:-} tests"
}

MARK='<!-- pi_install_test.sh inserts result rows above this line -->'
record() { # ARCH RESULT MINUTES DETAIL: add a row to the table in docs/ARM.md
    local doc="$REPO/docs/ARM.md" row
    [ "${NO_RECORD:-0}" = 1 ] && return 0
    if ! grep -qF "$MARK" "$doc" 2>/dev/null; then
        echo "pi_install_test: no result table marker in $doc, result not recorded" >&2; return 0
    fi
    row="| $(date -u '+%Y-%m-%d %H:%M') UTC | $COMMIT | $1 | $2 | $3 | $4 |"
    awk -v row="$row" -v mark="$MARK" '$0 == mark { print row } { print }' "$doc" > "$doc.tmp" &&
        mv "$doc.tmp" "$doc"
    echo "recorded in docs/ARM.md: $row"
}

overall=0
for ARCH in "${ARCHES[@]}"; do
    ROOT="$PICHROOT_BASE/$ARCH"; LOG="$LOGDIR/$ARCH.log"
    trap 'chroot_umount "$ROOT"' EXIT
    start=$(date +%s); result=fail; detail=""
    echo "== [$ARCH] log: $LOG"
    {
        step "rootfs + apt ($(apt_packages))" prepare_root &&
        step "git archive $COMMIT" copy_source &&
        step "pip install (builds the extension)" pip_install &&
        step "import + ISA" neon_check &&
        step "pytest -m 'not slow and not tf'" run_tests
    } > "$LOG" 2>&1 && result=pass
    chroot_umount "$ROOT"; trap - EXIT
    mins=$(printf '%.1f' "$(echo "($(date +%s) - $start) / 60" | bc -l)")
    grep '^== .*rc=' "$LOG" || true
    # the build's own compile line (flags setup.py picked for this arch)
    grep -m1 -E 'gcc .*bgemm_neon\.c' "$LOG" | sed 's/^ *//' | cut -c1-300 || true
    grep '^ISA-CHECK' "$LOG" || true
    detail="$(grep -E '(passed|failed|errors?|skipped|deselected|no tests ran).* in [0-9.]+s' "$LOG" | tail -1 | tr -d '=' | sed 's/^ *//;s/ *$//' || true)"
    [ -n "$detail" ] || detail="stopped at: $(grep '^== .*rc=[1-9]' "$LOG" | head -1 | sed 's/^== //' || true)"
    [ -z "${PYTEST_ARGS:-}" ] || detail="$detail (pytest args: ${PYTEST_ARGS//|/\\|})"
    echo "== [$ARCH] $result in $mins min: $detail"
    record "$ARCH" "$result" "$mins" "$detail"
    [ "$result" = pass ] || overall=1
done
exit $overall
