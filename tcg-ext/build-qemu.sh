#!/bin/sh
# Build dqemu-arm, dqemu-aarch64 and dqemu-riscv64: QEMU 10.0.2 with our
# patch series and our runtime linked in.
#
# usage: build-qemu.sh REPO_DIR OUT_DIR
#
# Why it is shaped like this: QEMU's source never enters our tree.  The
# verified tarball, the patched source and the build directory live in a
# cache (DQEMU_CACHE, default ~/.cache/dqemu) keyed by the sha256 of the
# tarball and of the patch series, so a second run -- CI's, or a fresh
# clone's -- only reruns ninja.  Our own code is reached through symlinks
# from the patched source into REPO_DIR, refreshed on every run, so editing
# a file under dqemu/, scheduler/ or linux-user-dist/ rebuilds just that
# file.
#
# Environment: QEMU_TARBALL=path  use this qemu_10.0.2+ds.orig.tar.xz
#              DQEMU_CACHE=dir    cache directory
#              DQEMU_JOBS=N       ninja parallelism (default: ninja's)
set -eu

QEMU_DEB_VERSION="1:10.0.2+ds-2+deb13u1~bpo12+1"
TARBALL_NAME="qemu_10.0.2+ds.orig.tar.xz"
TARBALL_SHA256="0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1"
TARGETS="arm aarch64 riscv64"

die() {
    echo "dqemu: build: $*" >&2
    exit 1
}

[ $# -eq 2 ] || die "usage: $0 REPO_DIR OUT_DIR"
repo=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
cache=${DQEMU_CACHE:-${HOME:-/root}/.cache/dqemu}
mkdir -p "$cache"

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# ---- 1. the verified tarball ------------------------------------------
verify_tarball() {
    got=$(sha256_of "$1")
    if [ "$got" != "$TARBALL_SHA256" ]; then
        die "$1: sha256 mismatch: expected $TARBALL_SHA256, got $got (not QEMU's $TARBALL_NAME; refusing to build from it)"
    fi
}

tarball="$cache/$TARBALL_NAME"
if [ -n "${QEMU_TARBALL:-}" ]; then
    [ -f "$QEMU_TARBALL" ] || die "QEMU_TARBALL=$QEMU_TARBALL: no such file"
    verify_tarball "$QEMU_TARBALL"
    tarball=$QEMU_TARBALL
elif [ -f "$tarball" ] && [ "$(sha256_of "$tarball")" = "$TARBALL_SHA256" ]; then
    :
else
    rm -f "$tarball"
    dl=$(mktemp -d "$cache/download.XXXXXX")
    echo "dqemu: build: fetching Debian source package qemu $QEMU_DEB_VERSION"
    # apt reports 404s for the .dsc/.debian.tar.xz of this backport while the
    # orig tarball (all we need) still arrives: judge by the file itself.
    (cd "$dl" && apt-get source --download-only "qemu=$QEMU_DEB_VERSION") \
        >"$dl/apt.log" 2>&1 || true
    if [ ! -f "$dl/$TARBALL_NAME" ]; then
        tail -5 "$dl/apt.log" >&2
        rm -rf "$dl"
        die "could not download $TARBALL_NAME (needs a deb-src entry for bookworm-backports: run 'make deps' as root), or pass QEMU_TARBALL=/path/to/$TARBALL_NAME"
    fi
    verify_tarball "$dl/$TARBALL_NAME"
    mv "$dl/$TARBALL_NAME" "$tarball"
    rm -rf "$dl"
fi

# ---- 2. the cache key ---------------------------------------------------
series="$repo/tcg-ext/series"
[ -f "$series" ] || die "$series: missing"
key=$( {
    echo "$TARBALL_SHA256"
    # The configure line is part of what a build directory means.
    sed -n '/^configure_qemu()/,/^}/p' "$0"
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        [ -f "$repo/tcg-ext/$p" ] || die "tcg-ext/series names $p, which does not exist"
        echo "$p"
        cat "$repo/tcg-ext/$p"
    done < "$series"
} | sha256sum | cut -c1-16)
src="$cache/src-$key"
bld="$cache/build-$key"

# One build at a time per key: two checkouts share the cache.
exec 9>"$cache/lock-$key"
flock 9

# ---- 3. unpacked, patched source ---------------------------------------
if [ ! -f "$src/.dqemu-patched" ]; then
    rm -rf "$src" "$src.tmp"
    mkdir -p "$src.tmp"
    echo "dqemu: build: unpacking $TARBALL_NAME"
    tar -xJf "$tarball" -C "$src.tmp" --strip-components=1 ||
        die "cannot unpack $tarball"
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        if ! patch -d "$src.tmp" -p1 --batch --forward --quiet \
                < "$repo/tcg-ext/$p" > "$src.tmp/patch.log" 2>&1; then
            cat "$src.tmp/patch.log" >&2
            rm -rf "$src.tmp"
            die "patch tcg-ext/$p does not apply to QEMU 10.0.2"
        fi
    done < "$series"
    rm -f "$src.tmp/patch.log"
    touch "$src.tmp/.dqemu-patched"
    mv "$src.tmp" "$src"
fi

# Our code, reached from inside QEMU's tree (see 0001-meson-link-...).
# scheduler/ has no meson.build of its own: dqemu/meson.build names
# '../scheduler/sched.c', which meson resolves lexically to $src/scheduler.
ln -sfn "$repo/dqemu" "$src/dqemu"
ln -sfn "$repo/scheduler" "$src/scheduler"
ln -sfn "$repo/linux-user-dist" "$src/linux-user/dist"

# ---- 4. configure -------------------------------------------------------
configure_qemu() {
    (cd "$bld" && "$src/configure" \
        --python=/usr/bin/python3 \
        --target-list=arm-linux-user,aarch64-linux-user,riscv64-linux-user \
        --disable-system --enable-linux-user \
        --disable-docs --disable-tools --disable-plugins \
        --disable-werror --disable-install-blobs \
        --enable-capstone)
}

if [ ! -f "$bld/.dqemu-configured" ]; then
    rm -rf "$bld"
    mkdir -p "$bld"
    echo "dqemu: build: configuring QEMU in $bld"
    if ! configure_qemu > "$bld/configure.log" 2>&1; then
        tail -30 "$bld/configure.log" >&2
        mv "$bld/configure.log" "$cache/configure-$key.log"
        rm -rf "$bld"
        die "QEMU's configure failed (log: $cache/configure-$key.log)"
    fi
    touch "$bld/.dqemu-configured"
fi

# ---- 5. build and install ----------------------------------------------
ninja_targets=""
for t in $TARGETS; do
    ninja_targets="$ninja_targets qemu-$t"
done
# shellcheck disable=SC2086
ninja -C "$bld" ${DQEMU_JOBS:+-j "$DQEMU_JOBS"} $ninja_targets ||
    die "QEMU build failed (build directory: $bld)"

for t in $TARGETS; do
    # Copy then rename: an interrupted copy never looks like a binary.
    if ! cmp -s "$bld/qemu-$t" "$out/dqemu-$t"; then
        cp "$bld/qemu-$t" "$out/.dqemu-$t.tmp"
        mv "$out/.dqemu-$t.tmp" "$out/dqemu-$t"
    fi
done
ln -sfn "$src" "$out/qemu-src"
