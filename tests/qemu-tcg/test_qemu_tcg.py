"""QEMU 10.0.2's tests/tcg/multiarch tests under stock qemu-user and dqemu.

`make qemu-tcg-build` (tests/qemu-tcg/qemu-tcg.mk) builds the static test
binaries into $QEMU_TCG_BUILD_DIR/<isa>/ (default <repo>/build/qemu-tcg),
with tests.txt listing the tests to run (skip.txt already applied) and
<test>.ref for upstream reference outputs.

Each case runs one binary under /usr/bin/qemu-<isa> and under
$DQEMU_BUILD_DIR/dqemu-<isa> (default <repo>/build), concurrently.  It passes
when both exit 0 and dqemu's stdout is the expected output: the .ref file,
the known SHA1 for sha1, or else stock's stdout, unless that varies from run
to run.
"""
import difflib
import hashlib
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTS_DIR = Path(os.environ.get("QEMU_TCG_BUILD_DIR", REPO / "build" / "qemu-tcg")).absolute()
DQEMU_DIR = Path(os.environ.get("DQEMU_BUILD_DIR", REPO / "build")).absolute()
STOCK_DIR = Path("/usr/bin")
TIMEOUT = float(os.environ.get("QEMU_TCG_TIMEOUT", "60"))  # seconds per run
ISAS = ("arm", "aarch64", "riscv64")
# Stock qemu-riscv64 defaults to -cpu max, dqemu-riscv64 to rv64.
CPU = {"riscv64": "rv64"}

# stdout differs between two stock runs: thread interleaving (testthread),
# alarm counts (signals), mmap addresses (test-mmap).
VARIABLE_OUTPUT = {"signals", "testthread", "test-mmap"}
# sha1.c hashes 1000 copies of a 4096-byte buffer holding i & 0xff; it prints
# the digest without checking it.
SHA1 = "SHA1=%s\n" % hashlib.sha1(bytes(range(256)) * 16 * 1000).hexdigest()
KNOWN_OUTPUT = {"sha1": SHA1, "sha1-vector": SHA1}


def cases():
    for isa in ISAS:
        manifest = TESTS_DIR / isa / "tests.txt"
        if not manifest.is_file():
            yield pytest.param(isa, None, id=f"{isa}-not-built")
            continue
        for name in manifest.read_text().split():
            yield pytest.param(isa, name, id=f"{isa}-{name}")


@dataclass
class Run:
    cmd: list
    rc: int  # None: killed after TIMEOUT
    out: str
    err: str

    def __str__(self):
        status = f"timed out after {TIMEOUT:g}s" if self.rc is None else f"exit {self.rc}"
        return (f"$ {' '.join(self.cmd)}\n{status}\n"
                f"--- stdout (tail)\n{self.out[-2000:]}--- stderr (tail)\n{self.err[-2000:]}")


def run(qemu, isa, binary, cwd):
    """Run binary under qemu like QEMU's makefile does (QEMU set in env)."""
    cmd = [str(qemu)]
    env = dict(os.environ, QEMU=str(qemu))
    if isa in CPU:
        cmd += ["-cpu", CPU[isa]]
        env["QEMU_CPU"] = CPU[isa]  # for linux-sigrtminmax, which re-execs $QEMU
    cmd.append(str(binary))
    cwd.mkdir()
    # Own session, so a timeout kills the test's forked children too.
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True, errors="replace") as proc:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if rc is None:
            out, err = proc.communicate()
    return Run(cmd, rc, out, err)


def diff(expected, got, what):
    lines = difflib.unified_diff(expected.splitlines(True), got.splitlines(True),
                                 f"expected ({what})", "dqemu stdout")
    return "".join(list(lines)[:40])


@pytest.mark.parametrize("isa,name", cases())
def test_multiarch(isa, name, tmp_path):
    if name is None:
        pytest.fail(f"{TESTS_DIR / isa / 'tests.txt'} missing: run `make qemu-tcg-build` "
                    "or set QEMU_TCG_BUILD_DIR")
    binary = TESTS_DIR / isa / name
    stock = STOCK_DIR / f"qemu-{isa}"
    dqemu = DQEMU_DIR / f"dqemu-{isa}"
    for path in (binary, stock, dqemu):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} missing or not executable")

    with ThreadPoolExecutor(2) as pool:
        s = pool.submit(run, stock, isa, binary, tmp_path / "stock")
        d = pool.submit(run, dqemu, isa, binary, tmp_path / "dqemu")
        s, d = s.result(), d.result()

    ref = binary.with_name(name + ".ref")
    if ref.is_file():
        expected, what = ref.read_text(), ref.name
    elif name in KNOWN_OUTPUT:
        expected, what = KNOWN_OUTPUT[name], "known SHA1"
    elif name not in VARIABLE_OUTPUT:
        expected, what = s.out, "stock stdout"
    else:
        expected = what = None

    if s.rc != 0 or expected not in (None, s.out):
        pytest.fail(f"fails under stock qemu-{isa}; add it to skip.txt with the reason\n{s}")
    if d.rc != s.rc:
        pytest.fail(f"dqemu exit status differs from stock (exit {s.rc})\n{d}")
    if expected is not None and d.out != expected:
        pytest.fail(f"dqemu stdout differs from {what}\n{diff(expected, d.out, what)}\n{d}")
