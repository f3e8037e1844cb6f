"""Test that dqemu's command line behaves as documented in README.md.

Runs the real build/dqemu-* binaries (DQEMU_BUILD_DIR) on small guest
programs from the guest corpus (DQEMU_GUEST_DIR, built by `make guest`).
"""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("DQEMU_BUILD_DIR") or REPO / "build").absolute()
GUEST_DIR = Path(os.environ.get("DQEMU_GUEST_DIR") or BUILD_DIR / "guest").absolute()
ISAS = ("arm", "aarch64", "riscv64")


def dqemu(isa):
    path = BUILD_DIR / f"dqemu-{isa}"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} missing: run `make`")
    return str(path)


def guest(isa, name="args"):
    path = GUEST_DIR / isa / f"{name}-static"
    if not path.is_file():
        pytest.fail(f"{path} missing: run `make guest`")
    return str(path)


def run(cmd, env=None, timeout=60):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DQEMU_", "QEMU_"))}
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                          stdin=subprocess.DEVNULL, timeout=timeout)


@pytest.mark.parametrize("isa", ISAS)
def test_version_names_dqemu_and_qemu_base(isa):
    r = run([dqemu(isa), "--version"])
    assert r.returncode == 0
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"dqemu-{isa} version ")
    assert "based on QEMU 10.0.2" in first
    assert f"qemu-{isa} version 10.0.2" in r.stdout


@pytest.mark.parametrize("isa", ISAS)
def test_help_lists_dqemu_and_qemu_options(isa):
    r = run([dqemu(isa), "--help"])
    assert r.returncode == 0
    for text in ("--nodes N", "DQEMU_NODES", "--stats", "DQEMU_STATS",
                 "--stats-json FILE", "DQEMU_STATS_JSON",
                 "--placement POLICY", "DQEMU_PLACEMENT",
                 "-strace", "QEMU_LD_PREFIX"):
        assert text in r.stdout, text


@pytest.mark.parametrize("opt", ["--bogus", "--node", "-nodesx"])
def test_unknown_option_is_a_usage_error_naming_it(opt):
    r = run([dqemu("arm"), opt, guest("arm")])
    assert r.returncode == 1
    assert f"unknown option '{opt.lstrip('-')}'" in r.stderr


@pytest.mark.parametrize("argv,env,needle", [
    (["--nodes", "0"], {}, "--nodes: '0' is not a node count"),
    (["--nodes", "x"], {}, "--nodes: 'x' is not a node count"),
    (["--nodes=65"], {}, "--nodes: '65' is not a node count"),
    (["--stats=maybe"], {}, "--stats: 'maybe' is not one of"),
    (["--stats-json="], {}, "--stats-json: empty value"),
    ([], {"DQEMU_NODES": "many"}, "DQEMU_NODES: 'many' is not a node count"),
    (["--cpus-per-node", "0"], {}, "--cpus-per-node: '0' is not a CPU count"),
    (["--listen", "tcp://127.0.0.1:7000"], {}, "--listen needs --nodes 2 or more"),
    (["--placement", "nearest"], {},
     "--placement: 'nearest' is not a placement policy (one of: round-robin"),
    ([], {"DQEMU_PLACEMENT": "x"},
     "DQEMU_PLACEMENT: 'x' is not a placement policy"),
])
def test_bad_dqemu_option_values_exit_1_naming_the_option(argv, env, needle):
    r = run([dqemu("arm")] + argv + [guest("arm")], env=env)
    assert r.returncode == 1, r
    assert needle in r.stderr
    assert r.stdout == ""


def test_nodes_option_needs_a_value():
    r = run([dqemu("arm"), "--nodes"])
    assert r.returncode == 1
    assert "--nodes needs a value" in r.stderr


def node0_stats(stderr):
    """The --stats report of node 0 in @stderr: {counter: value}."""
    stats = {}
    for line in stderr.splitlines():
        if line.startswith("dqemu: node 0: stats: "):
            name, value, _unit = line.split(": ", 3)[3].split()
            stats[name] = int(value)
    return stats


def test_stats_prints_real_counters_at_exit():
    r = run([dqemu("arm"), "--stats", guest("arm", "threads")])
    assert r.returncode == 0, r.stderr
    stats = node0_stats(r.stderr)
    assert stats["threads_created"] >= 64  # threads.c starts 64 short-lived ones
    assert stats["syscalls"] > stats["threads_created"]
    assert stats["wall_time_ns"] > 0


def test_command_line_wins_over_environment():
    r = run([dqemu("arm"), "--stats=0", guest("arm", "threads")],
            env={"DQEMU_STATS": "1"})
    assert r.returncode == 0
    assert "stats:" not in r.stderr
    r = run([dqemu("arm"), guest("arm", "threads")], env={"DQEMU_STATS": "yes"})
    assert "dqemu: node 0: stats: threads_created" in r.stderr


def test_qemu_options_still_work_after_dqemu_options():
    r = run([dqemu("arm"), "--stats", "-strace", guest("arm", "threads")])
    assert r.returncode == 0
    assert "clone(" in r.stderr
    assert "stats: syscalls" in r.stderr


def test_riscv64_defaults_to_rv64_but_cpu_option_wins():
    # QEMU emulates /proc/cpuinfo for riscv: its "isa" line names the model's
    # extensions (max has ztso and v, rv64 has neither).
    def isa_line(extra, env=None):
        r = run([dqemu("riscv64")] + extra + [guest("riscv64", "cpuinfo")], env=env)
        assert r.returncode == 0, r.stderr
        return [l for l in r.stdout.splitlines() if l.startswith("cpuinfo: isa")][0]
    default = isa_line([])
    assert default == isa_line(["-cpu", "rv64"])
    assert "_ztso" not in default
    assert "_ztso" in isa_line(["-cpu", "max"])
    assert "_ztso" in isa_line([], env={"QEMU_CPU": "max"})


def test_wrong_isa_binary_is_refused_clearly():
    r = run([dqemu("aarch64"), guest("arm")])
    assert r.returncode != 0
    assert "Invalid ELF image for this architecture" in r.stderr
