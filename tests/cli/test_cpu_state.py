"""Test that a guest thread's CPU state survives dqemu's serializer.

linux-user-dist/cpu-state.h ships a thread's registers to another node as
an explicit per-ISA byte string.  Its field lists can only be exercised
inside the emulator, with QEMU's real CPU models, so dqemu has a hidden
developer variable, DQEMU_SELFTEST_CPU_STATE:

  1         round trips of pseudo-random states through scratch copies of
            the CPU, plus malformed inputs, then exit
  reload    save the CPU, reset it, load it, then run the guest
  syscalls  reload, and at every syscall overwrite every shipped field
            with garbage and load the saved state back

Runs the real build/dqemu-* binaries on the guest corpus, like test_cli.py.
"""
import re

import pytest

from test_cli import dqemu, guest, run

SELFTEST_LINE = re.compile(
    r"^cpu-state selftest: (\d+) fields ok \(largest state (\d+) bytes, "
    r"(\d+) malformed states refused\)$")


# (isa, -cpu or None for dqemu's default, what the model adds, fewest
# fields a state of that model has: more means a register file is there)
MODELS = [
    ("arm", None, "VFP/NEON", 60),
    ("arm", "pxa270", "iwMMXt", 90),
    ("aarch64", None, "SVE and SME (max)", 2000),
    ("aarch64", "cortex-a57", "no SVE", 120),
    ("aarch64", "a64fx", "SVE without SME", 300),
    ("riscv64", None, "rv64: no V", 75),
    ("riscv64", "max", "V at VLEN 256", 140),
    ("riscv64", "rv64,v=true,vlen=1024", "V at VLEN 1024", 580),
]


def cpu_args(cpu):
    return ["-cpu", cpu] if cpu else []


@pytest.mark.parametrize("isa,cpu,what,min_fields", MODELS,
                         ids=[f"{m[0]}-{m[1] or 'default'}" for m in MODELS])
def test_selftest_round_trips_every_field_and_refuses_malformed_states(
        isa, cpu, what, min_fields):
    r = run([dqemu(isa)] + cpu_args(cpu) + [guest(isa)],
            env={"DQEMU_SELFTEST_CPU_STATE": "1"})
    assert r.returncode == 0, f"{what}: {r.stderr}"
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout  # exits before the guest runs
    m = SELFTEST_LINE.match(lines[0])
    assert m, lines[0]
    fields, largest, refused = map(int, m.groups())
    assert fields >= min_fields, f"{what}: only {fields} fields"
    assert largest > 12
    assert refused > 100


def test_selftest_with_sme_za_ships_the_za_array():
    # ZA at the smallest streaming length alone is 16 rows of 16 bytes;
    # Z0-Z31 at 128 bits are 512 bytes: a state with ZA is far larger.
    r = run([dqemu("aarch64"), guest("aarch64")],
            env={"DQEMU_SELFTEST_CPU_STATE": "1"})
    largest = int(SELFTEST_LINE.match(r.stdout.strip()).group(2))
    assert largest > 8192


def test_selftest_unknown_mode_is_refused_naming_it():
    r = run([dqemu("arm"), guest("arm")],
            env={"DQEMU_SELFTEST_CPU_STATE": "maybe"})
    assert r.returncode == 1
    assert "DQEMU_SELFTEST_CPU_STATE: 'maybe'" in r.stderr
    assert r.stdout == ""


# Programs whose state at syscalls is rich: TLS and threads (clone),
# signal masks, handlers and sigaltstack, FP, atomics (LL/SC), pipes.
PROGRAMS = ["threads", "signals", "sync", "atomics", "smc", "pipes"]
RUNS = [(isa, prog, []) for isa in ("arm", "aarch64", "riscv64")
        for prog in PROGRAMS]
RUNS.append(("riscv64", "threads", ["-cpu", "max"]))


@pytest.mark.parametrize("mode", ["reload", "syscalls"])
@pytest.mark.parametrize("isa,prog,extra", RUNS,
                         ids=[f"{r[0]}-{r[1]}{'-' + r[2][1] if r[2] else ''}"
                              for r in RUNS])
def test_reloaded_cpu_state_leaves_the_guest_unchanged(isa, prog, extra,
                                                       mode):
    cmd = [dqemu(isa)] + extra + [guest(isa, prog)]
    plain = run(cmd, timeout=120)
    assert plain.returncode == 0, plain.stderr
    r = run(cmd, env={"DQEMU_SELFTEST_CPU_STATE": mode}, timeout=120)
    assert r.returncode == plain.returncode, r.stderr
    assert r.stdout == plain.stdout
    assert f"PASS {prog}" in r.stdout
    assert re.search(r"^cpu-state selftest: reloaded \d+ bytes$", r.stderr,
                     re.M), r.stderr
