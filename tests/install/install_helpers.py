"""Shared helpers and fixtures of tests/install: run make and dqemu as a user would.

make always runs with `-o qemu` (the binaries in build/ are used as they
are; building QEMU is not this suite's business) from the repository root,
with MAKEFLAGS and any PREFIX/DESTDIR from the caller's environment cleared
so the command line alone decides.
"""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
ISAS = ("arm", "aarch64", "riscv64")
CLEARED = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PREFIX",
           "DESTDIR", "BINDIR", "MANDIR", "DOCDIR")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in CLEARED and not k.startswith(("DQEMU_", "QEMU_"))}
    env.update(extra)
    return env


def make(*args, timeout=600):
    r = subprocess.run(["make", "--no-print-directory", "-o", "qemu", *args],
                       cwd=REPO, env=clean_env(), capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"make {' '.join(args)} failed:\n{r.stdout}{r.stderr}"
    return r


def run(cmd, timeout=120, **env):
    return subprocess.run([str(c) for c in cmd], env=clean_env(**env),
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def dqemu_bins():
    bins = {isa: BUILD / f"dqemu-{isa}" for isa in ISAS}
    for path in bins.values():
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} missing: run `make`")
    return bins


@pytest.fixture(scope="session")
def man_build():
    """build/dqemu.1 and build/tools/mkman, made by `make man`."""
    make("man")
    return BUILD / "dqemu.1", BUILD / "tools" / "mkman"
