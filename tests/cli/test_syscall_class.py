"""Test that each dqemu binary classifies every syscall number exactly once
and as issue 5 item 4 says: time and sleep calls local, files, futex,
clone and the memory map not, unknown numbers global.

The classes come from the binary itself (DQEMU_DUMP_SYSCALL_CLASSES=1,
linux-user-dist/syscall-class.c); the syscall numbers they are checked
against come from the cross toolchains' kernel headers, so a table entry
under the wrong number shows up too.
"""
import re
import subprocess

import pytest

from test_cli import ISAS, dqemu, guest, node0_stats, run

CROSS_CC = {
    "arm": "arm-linux-gnueabihf-gcc",
    "aarch64": "aarch64-linux-gnu-gcc",
    "riscv64": "riscv64-linux-gnu-gcc",
}
CLASSES = {"global", "local", "id", "sigmask", "prctl", "clone", "exit",
           "exit_group", "exec", "futex", "mmap", "sigaction", "kill"}
DUMP_LIMIT = 4096

# name -> class, for every name the ISA's kernel headers define.
EXPECTED = {
    "clock_gettime": "local", "clock_gettime64": "local",
    "gettimeofday": "local", "nanosleep": "local",
    "clock_nanosleep": "local", "clock_nanosleep_time64": "local",
    "sched_yield": "local", "getrandom": "local", "sigaltstack": "local",
    "getpid": "id", "gettid": "id", "getppid": "id",
    "rt_sigprocmask": "sigmask", "rt_sigreturn": "sigmask",
    "set_tid_address": "global", "membarrier": "global",
    "openat": "global", "read": "global", "write": "global",
    "close": "global", "ioctl": "global", "getuid": "global",
    "futex": "futex", "futex_time64": "futex",
    "clone": "clone", "fork": "clone", "vfork": "clone",
    "exit": "exit", "exit_group": "exit_group", "execve": "exec",
    "mmap": "mmap", "mmap2": "mmap", "munmap": "mmap", "mprotect": "mmap",
    "mremap": "mmap", "brk": "mmap", "madvise": "mmap",
    "rt_sigaction": "sigaction", "kill": "kill", "tgkill": "kill",
    "prctl": "prctl",
}
# Each ISA must have at least one of each group (arm: *64 time calls,
# mmap2; the generic table: plain ones).
MUST_HAVE = [("clock_gettime",), ("nanosleep", "clock_nanosleep"),
             ("openat",), ("read",), ("write",), ("futex",), ("clone",),
             ("mmap", "mmap2")]


def kernel_numbers(isa, names):
    """Syscall numbers from the ISA's <asm/unistd.h>: {name: number}."""
    lines = ["#include <asm/unistd.h>"]
    for name in names:
        lines.append(f"NR {name} __NR_{name}")
        lines.append(f"NR ARM_{name} __ARM_NR_{name}")
    r = subprocess.run([CROSS_CC[isa], "-E", "-P", "-x", "c", "-"],
                       input="\n".join(lines) + "\n", capture_output=True,
                       text=True, check=True)
    numbers = {}
    for line in r.stdout.splitlines():
        m = re.fullmatch(r"NR (\w+) ([0-9a-fx+() ]+)", line.strip())
        if m:  # an undefined name stays a bare __NR_ identifier: skipped
            numbers[m.group(1)] = eval(m.group(2), {"__builtins__": {}})
    return numbers


def dump(isa):
    r = run([dqemu(isa), guest(isa)], env={"DQEMU_DUMP_SYSCALL_CLASSES": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    rows = [line.split(" ") for line in r.stdout.splitlines()]
    assert all(len(row) == 3 for row in rows), "lines must be 'NR name class'"
    return [(int(nr), name, cls) for nr, name, cls in rows]


@pytest.mark.parametrize("isa", ISAS)
def test_every_number_has_exactly_one_known_class(isa):
    rows = dump(isa)
    numbers = [nr for nr, _, _ in rows]
    assert len(numbers) == len(set(numbers))
    assert set(range(DUMP_LIMIT)) <= set(numbers)
    assert {cls for _, _, cls in rows} <= CLASSES
    # Unknown numbers are global: every one past the tables (mseal is 462).
    by_nr = {nr: (name, cls) for nr, name, cls in rows}
    assert by_nr[4095] == ("-", "global")
    assert all(by_nr[nr] == ("-", "global") for nr in range(512, DUMP_LIMIT))


@pytest.mark.parametrize("isa", ISAS)
def test_classes_match_the_issue_at_the_kernels_numbers(isa):
    rows = dump(isa)
    by_nr = {nr: (name, cls) for nr, name, cls in rows}
    nums = kernel_numbers(isa, EXPECTED)
    for group in MUST_HAVE:
        assert any(n in nums for n in group), f"{isa} lacks all of {group}"
    for name, want in EXPECTED.items():
        if name not in nums:
            continue
        got_name, got_cls = by_nr[nums[name]]
        assert got_cls == want, f"{isa} {name} ({nums[name]}): {got_cls}"
        assert got_name in (name, "-"), f"{isa} {nums[name]}: {got_name}"


@pytest.mark.parametrize("isa", ISAS)
def test_every_named_entry_sits_at_the_kernels_number(isa):
    rows = dump(isa)
    named = {name: nr for nr, name, _ in rows if name != "-"}
    nums = kernel_numbers(isa, [n.removeprefix("ARM_") for n in named])
    checked = 0
    for name, nr in named.items():
        if name in nums:  # newer than the cross headers otherwise
            assert nums[name] == nr, f"{isa} {name}: {nr}, kernel {nums[name]}"
            checked += 1
    assert checked >= 40
    if isa == "arm":
        assert {named[n] for n in ("ARM_set_tls", "ARM_cacheflush")} == \
            {nums["ARM_set_tls"], nums["ARM_cacheflush"]}


def test_stats_count_every_syscall_as_local_or_global():
    r = run([dqemu("arm"), "--stats", guest("arm", "threads")])
    assert r.returncode == 0, r.stderr
    stats = node0_stats(r.stderr)
    assert stats["syscalls_local"] + stats["syscalls_global"] == stats["syscalls"]
    # 64 threads: each is started with local calls (rt_sigprocmask,
    # set_robust_list) and global ones (clone, mmap of its stack).
    assert stats["syscalls_local"] >= 64
    assert stats["syscalls_global"] >= 64
