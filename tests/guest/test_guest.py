"""Test that every guest program behaves the same under dqemu as under stock qemu-user.

For each program in tests/guest/*.c, each ISA (arm, aarch64, riscv64) and
each link mode (static, dynamic), the program runs under the stock
/usr/bin/qemu-<isa> and under $DQEMU_BUILD_DIR/dqemu-<isa>.  Both runs must
exit with the expected status, print the same stdout, and print the
program's own "PASS <name>" line.

Environment:
  DQEMU_BUILD_DIR      where dqemu-<isa> live (default <repo>/build)
  DQEMU_GUEST_DIR      where the guest binaries live
                       (default $DQEMU_BUILD_DIR/guest)
  DQEMU_GUEST_NO_BUILD set to 1 to skip the incremental `make guest`
                       this module runs first
  DQEMU_GUEST_TIMEOUT  seconds per qemu run (default 120)

Run:  pytest -n 2 tests/guest/test_guest.py     (pytest-xdist optional)
"""

import difflib
import fcntl
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUILD_DIR = Path(os.environ.get("DQEMU_BUILD_DIR") or REPO / "build").absolute()
GUEST_DIR = Path(os.environ.get("DQEMU_GUEST_DIR") or BUILD_DIR / "guest").absolute()
TIMEOUT = float(os.environ.get("DQEMU_GUEST_TIMEOUT") or 120)

# Per ISA: the sysroot for dynamic binaries, and extra options for the
# stock qemu so that it emulates the same CPU as dqemu does by default
# (dqemu-riscv64 defaults to rv64, stock qemu-riscv64 to max).
ISAS = {
    "arm": {"sysroot": "/usr/arm-linux-gnueabihf", "stock_opts": []},
    "aarch64": {"sysroot": "/usr/aarch64-linux-gnu", "stock_opts": []},
    "riscv64": {"sysroot": "/usr/riscv64-linux-gnu", "stock_opts": ["-cpu", "rv64"]},
}
LINKS = ("static", "dynamic")


def args_exit_status(args):
    """The exit status args.c computes from its arguments (see its comment)."""
    h = 0
    for arg in args:
        for b in arg.encode():
            h = (h * 31 + b) % 65521
        h = (h * 31 + 1) % 65521
    return 3 + h % 200


@dataclass
class Case:
    id: str
    program: str
    args: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    unset: list = field(default_factory=list)
    expect_rc: int = 0


# Arguments meant to trip up argv handling: spaces, an empty string,
# UTF-8, shell metacharacters and one long argument.
ARGS_ARGV = [
    "alpha",
    "two words",
    "",
    "\u00fcn\u00efc\u00f8d\u00e9 \u2713",
    "$HOME;`x`|*?",
    "x" * 5000,
    "--env=DQEMU_GUEST_VAR=hello world=1 \u00e9",
    "--unset=DQEMU_GUEST_UNSET",
]
ARGS_ENV = {"DQEMU_GUEST_VAR": "hello world=1 \u00e9"}
ARGS_UNSET = ["DQEMU_GUEST_UNSET"]

# Programs that need arguments, or several runs; every other program in
# tests/guest/*.c runs once without arguments and must exit 0.
SPECIAL_CASES = {
    "args": [
        Case("args", "args", ARGS_ARGV, ARGS_ENV, ARGS_UNSET,
             args_exit_status(ARGS_ARGV)),
        Case("args-exit-from-thread", "args", ARGS_ARGV + ["--exit-from-thread"],
             ARGS_ENV, ARGS_UNSET,
             args_exit_status(ARGS_ARGV + ["--exit-from-thread"])),
    ],
    # Sizes cut down from the defaults to keep the suite quick.
    "demo-threads": [Case("demo-threads", "demo-threads", ["200000"])],
    "bench-cpu": [
        Case("bench-cpu", "bench-cpu", ["3", "200000"]),
        Case("bench-cpu-1thread", "bench-cpu", ["1", "50000"]),
    ],
}


def all_cases():
    cases = []
    for src in sorted(HERE.glob("*.c")):
        cases.extend(SPECIAL_CASES.get(src.stem, [Case(src.stem, src.stem)]))
    return cases


CASES = all_cases()


def status_text(rc):
    if rc is None:
        return "TIMEOUT after %gs" % TIMEOUT
    if rc < 0:
        return "killed by signal %d" % -rc
    return str(rc)


@dataclass
class Result:
    cmd: list
    rc: object           # int exit status, -N for signal N, or None on timeout
    stdout: str
    stderr: str

    def describe(self, label):
        return (f"--- {label}: {' '.join(map(str, self.cmd))[:400]}\n"
                f"exit status: {status_text(self.rc)}\n"
                f"stdout:\n{self.stdout}\n"
                f"stderr:\n{self.stderr}\n")


def run(cmd, env, cwd):
    """Run cmd with a timeout; on timeout kill its whole process group."""
    proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        rc = None
    return Result(cmd, rc, out.decode(errors="replace"), err.decode(errors="replace"))


def make_programs(makefile, target, out_var, out_dir, what):
    """Bring the programs @makefile's @target builds into @out_dir up to
    date: an incremental make under a lock beside @out_dir, so parallel
    pytest-xdist workers do not build at the same time."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(out_dir.parent / f".{out_dir.name}-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(
            ["make", "-s", "-j%d" % (os.cpu_count() or 1), "-f", str(makefile),
             target, f"{out_var}={out_dir}"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        pytest.fail(f"building the {what} failed:\n"
                    + proc.stdout.decode(errors="replace"), pytrace=False)
    return out_dir


@pytest.fixture(scope="session")
def guest_binaries():
    """The guest binaries, up to date (make_programs)."""
    if os.environ.get("DQEMU_GUEST_NO_BUILD") == "1":
        return GUEST_DIR
    return make_programs(HERE / "guest.mk", "guest", "GUEST_OUT", GUEST_DIR,
                         "guest programs")


def require_executable(path, what):
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{what} not found or not executable: {path}", pytrace=False)


PARAMS = [
    pytest.param(case, isa, link, id=f"{case.id}-{isa}-{link}")
    for case in CASES for isa in ISAS for link in LINKS
]


@pytest.mark.parametrize("case,isa,link", PARAMS)
def test_guest(case, isa, link, guest_binaries, tmp_path):
    binary = guest_binaries / isa / f"{case.program}-{link}"
    dqemu = BUILD_DIR / f"dqemu-{isa}"
    stock = Path(f"/usr/bin/qemu-{isa}")
    require_executable(binary, "guest binary")
    require_executable(stock, f"stock qemu-{isa} (Debian package qemu-user)")
    require_executable(dqemu, f"dqemu-{isa} (build it, or set DQEMU_BUILD_DIR)")

    sysroot = ["-L", ISAS[isa]["sysroot"]] if link == "dynamic" else []
    env = dict(os.environ)
    env.update(case.env)
    for name in case.unset:
        env.pop(name, None)

    results = {}
    for label, cmd in (
        ("stock", [stock, *ISAS[isa]["stock_opts"], *sysroot, binary, *case.args]),
        ("dqemu", [dqemu, *sysroot, binary, *case.args]),
    ):
        # Separate scratch dirs so leftovers of one run cannot help the other.
        work = tmp_path / label
        work.mkdir()
        env["TMPDIR"] = str(work)
        results[label] = run(cmd, dict(env), work)

    ref, got = results["stock"], results["dqemu"]
    report = ref.describe("stock qemu") + got.describe("dqemu")
    pass_line = f"PASS {case.program}"

    # The reference must itself be healthy, or the comparison means nothing.
    if ref.rc != case.expect_rc or pass_line not in ref.stdout.splitlines():
        pytest.fail(f"stock qemu-{isa} run did not pass (expected exit status "
                    f"{case.expect_rc}, got {status_text(ref.rc)}): test program "
                    f"or host problem\n{report}", pytrace=False)
    if got.rc != ref.rc:
        pytest.fail(f"exit status differs: stock {status_text(ref.rc)}, dqemu "
                    f"{status_text(got.rc)}\n{report}", pytrace=False)
    if got.stdout != ref.stdout:
        diff = "".join(difflib.unified_diff(
            ref.stdout.splitlines(True), got.stdout.splitlines(True),
            "stock", "dqemu"))
        pytest.fail(f"stdout differs:\n{diff}\n{report}", pytrace=False)
    if pass_line not in got.stdout.splitlines():
        pytest.fail(f"dqemu run printed no '{pass_line}' line\n{report}", pytrace=False)
