#!/bin/sh
# Install the Debian packages dqemu needs to build, test and benchmark.
#
# Why a script: a fresh Debian 12 machine has none of the cross compilers,
# QEMU's build tools from bookworm-backports (meson >= 1.5, pycotap) nor the
# stock qemu-user we compare against.  `make deps` runs this; it is a no-op
# (no apt call at all) when everything is already installed.
set -eu

BPO=bookworm-backports
# From bookworm.
PKGS="python3-venv ninja-build pkg-config libglib2.0-dev libcapstone-dev
libzmq3-dev flex bison ccache xz-utils ca-certificates make gcc
gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu
libc6-dev-armhf-cross libc6-dev-arm64-cross libc6-dev-riscv64-cross
libcmocka-dev python3-pytest python3-pytest-xdist clang patch dpkg-dev
openssh-server openssh-client iproute2 iputils-ping groff-base mandoc
g++-arm-linux-gnueabihf g++-aarch64-linux-gnu g++-riscv64-linux-gnu m4
python3-matplotlib"
# From bookworm-backports (versions bookworm lacks).
BPO_PKGS="meson python3-pycotap qemu-user"

missing=""
for p in $PKGS $BPO_PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
# Stock qemu-user must be the 10.0.2 we compare against, not bookworm's 7.2.
if dpkg-query -W -f='${Version}' qemu-user 2>/dev/null | grep -qv '^1:10\.0\.2'; then
    missing="$missing qemu-user"
fi
have_bpo_src() {
    grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ &&
    grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/
}

if [ -z "$missing" ] && have_bpo_src; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "dqemu: deps: missing Debian packages:$missing" >&2
    echo "dqemu: deps: run as root: sudo make deps" >&2
    exit 1
fi

if ! have_bpo_src; then
    # deb-src for backports: `apt-get source qemu` fetches 10.0.2 from there.
    cat > /etc/apt/sources.list.d/dqemu-bookworm-backports.sources <<SRC
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: $BPO
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
if [ -n "$missing" ]; then
    bpo=""
    plain=""
    for p in $missing; do
        case " $(echo $BPO_PKGS) " in
        *" $p "*) bpo="$bpo $p" ;;
        *) plain="$plain $p" ;;
        esac
    done
    # shellcheck disable=SC2086
    [ -z "$plain" ] || apt-get install -y -q --no-install-recommends $plain
    # shellcheck disable=SC2086
    [ -z "$bpo" ] || apt-get install -y -q --no-install-recommends -t $BPO $bpo
fi
