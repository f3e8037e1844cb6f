#!/bin/sh
# build-parsec.sh - build PARSEC 3.0 programs for a guest ISA, static.
#
# Why it exists: the PARSEC bench (make bench-parsec) and its smoke test
# need the suite's programs as static guest binaries, built from an
# unmodified PARSEC tree that is benchmark input and never part of this
# project.  Each program's build-time fixes live in recipes/<prog>.sh (and
# small patches/<prog>-*.patch), applied to a private copy of its sources.
#
# usage: build-parsec.sh ISA OUTDIR [PROG...]
#   ISA     arm | aarch64 | riscv64
#   OUTDIR  gets src/<prog>/ (patched copy), <ISA>/bin/<prog>, <ISA>/<prog>.log,
#           inputs/<prog>/{test,simdev}/ (the tarball's input files) and,
#           for a program that failed, <ISA>/<prog>.fail (the reason).
#   PROG    default: every recipe.
# Where PARSEC comes from: PARSEC_DIR (an unpacked parsec-3.0 tree), else
# PARSEC_TARBALL, else ../shared/parsec/parsec-3.0-subset.tar.xz next to
# the project.  A program that fails to build is reported and skipped; the
# exit status is non-zero only when PARSEC is missing or nothing built.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)

die() { echo "parsec: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: build-parsec.sh ISA OUTDIR [PROG...]"
ISA=$1
OUT=$2
shift 2
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

case "$ISA" in
arm)     TRIPLE=arm-linux-gnueabihf; ARCH_FLAGS="" ;;
aarch64) TRIPLE=aarch64-linux-gnu;   ARCH_FLAGS="" ;;
riscv64) TRIPLE=riscv64-linux-gnu;   ARCH_FLAGS="-march=rv64gc -mabi=lp64d" ;;
*) die "unknown ISA '$ISA' (arm, aarch64 or riscv64)" ;;
esac
CC="$TRIPLE-gcc"
CXX="$TRIPLE-g++"
command -v "$CC" >/dev/null || die "$CC not found: run 'make deps' as root"
command -v "$CXX" >/dev/null || die "$CXX not found: run 'make deps' as root"
if command -v ccache >/dev/null; then
    CC="ccache $CC"
    CXX="ccache $CXX"
fi
# -ffp-contract=off: fused multiply-adds would make guest results differ
# from one compiler's choice to another's; results are checked exactly.
CFLAGS="-O2 -static -pthread -ffp-contract=off $ARCH_FLAGS"
CXXFLAGS="$CFLAGS"
LDFLAGS="-static -pthread"
# Recipes find their patch files here.
PARSEC_PATCHES=$HERE/patches
export ISA TRIPLE CC CXX CFLAGS CXXFLAGS LDFLAGS PARSEC_PATCHES

# ---- the PARSEC tree ----------------------------------------------------
PARSEC_TARBALL=${PARSEC_TARBALL:-$TOP/../shared/parsec/parsec-3.0-subset.tar.xz}
if [ -n "${PARSEC_DIR:-}" ]; then
    [ -d "$PARSEC_DIR/pkgs" ] ||
        die "PARSEC_DIR=$PARSEC_DIR is not a PARSEC tree (no pkgs/ in it)"
    TREE=$(cd "$PARSEC_DIR" && pwd)
else
    [ -f "$PARSEC_TARBALL" ] ||
        die "no PARSEC: $PARSEC_TARBALL is missing; set PARSEC_DIR to an unpacked parsec-3.0 tree or PARSEC_TARBALL to the tarball"
    TREE=$OUT/parsec-3.0
    stamp=$OUT/.unpacked
    sum=$(sha256sum "$PARSEC_TARBALL" | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
        rm -rf "$TREE"
        echo "parsec: unpacking $PARSEC_TARBALL"
        tar -xJf "$PARSEC_TARBALL" -C "$OUT" ||
            die "cannot unpack $PARSEC_TARBALL"
        [ -d "$TREE/pkgs" ] || die "$PARSEC_TARBALL has no parsec-3.0/pkgs"
        echo "$sum" > "$stamp"
    fi
fi

# The package directory of a program: apps/ or kernels/.
pkg_dir() {
    for kind in apps kernels; do
        if [ -d "$TREE/pkgs/$kind/$1" ]; then
            echo "$TREE/pkgs/$kind/$1"
            return 0
        fi
    done
    return 1
}

# Unpack a program's input tarballs once: inputs/<prog>/<size>/.
unpack_inputs() {
    prog=$1
    pkg=$2
    for size in test simdev; do
        tarf=$pkg/inputs/input_$size.tar
        dest=$OUT/inputs/$prog/$size
        [ -f "$tarf" ] || continue
        [ -f "$dest/.done" ] && continue
        rm -rf "$dest"
        mkdir -p "$dest"
        tar -xf "$tarf" -C "$dest" && touch "$dest/.done"
    done
}

if [ $# -eq 0 ]; then
    set -- $(cd "$HERE/recipes" && ls *.sh | sed 's/\.sh$//')
fi

mkdir -p "$OUT/$ISA/bin"
built=0
for prog in "$@"; do
    recipe=$HERE/recipes/$prog.sh
    [ -f "$recipe" ] || die "no recipe for '$prog' (have: $(cd "$HERE/recipes" && ls | sed 's/\.sh$//' | tr '\n' ' '))"
    log=$OUT/$ISA/$prog.log
    fail=$OUT/$ISA/$prog.fail
    bin=$OUT/$ISA/bin/$prog
    rm -f "$fail"
    pkg=$(pkg_dir "$prog") || {
        echo "not in the PARSEC tree ($TREE/pkgs/*/$prog)" > "$fail"
        echo "parsec: $prog: skipped: $(cat "$fail")" >&2
        continue
    }
    unpack_inputs "$prog" "$pkg"
    # Up to date: the binary is newer than the recipe, its patches and
    # this script (the tree itself is keyed by the tarball's sum above).
    if [ -x "$bin" ] && [ -z "$(find "$HERE" -newer "$bin" \( -name "$prog.sh" \
            -o -name "$prog-*.patch" -o -name build-parsec.sh \) -print)" ]; then
        built=$((built + 1))
        continue
    fi
    src=$OUT/src/$ISA/$prog
    rm -rf "$src"
    mkdir -p "$src"
    cp -R "$pkg/." "$src/"
    echo "parsec: building $prog for $ISA"
    # Each recipe defines build_<prog> SRC BIN: build from the copy @SRC
    # (the package directory: src/, inputs/, parsec/) into the file @BIN.
    if ( . "$recipe" && cd "$src" && "build_$prog" "$src" "$bin" ) > "$log" 2>&1 &&
       [ -x "$bin" ]; then
        built=$((built + 1))
    else
        rm -f "$bin"
        { echo "build failed (see $log):"; tail -n 5 "$log"; } > "$fail"
        echo "parsec: $prog: skipped: $(cat "$fail")" >&2
    fi
done
[ "$built" -gt 0 ] || die "no PARSEC program built for $ISA"
echo "parsec: $built of $# programs built for $ISA in $OUT/$ISA/bin"
