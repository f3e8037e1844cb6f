"""Test distributed execution: every guest program on 1..N nodes, and failures.

For every case of tests/guest (its case list, ISAs and link modes are
imported from tests/guest/test_guest.py), each ISA, each link mode and each
cluster size N = 1..DQEMU_DIST_MAX_NODES, the program runs as

    build/dqemu-<isa> --nodes N [-L sysroot] prog args

and must exit with the same status and print the same stdout as under
stock qemu-user (run once per case, ISA and link mode in a session, even
across pytest-xdist workers), print its own "PASS <name>" line, and leave
no process behind.  The dist-* programs (written to stress distribution)
run at N >= 2 with --stats and --placement round-robin, and the per-node
statistics must have a line for every node and show that a node other
than the master ran a thread (threads_run_by_node() reads them).

Failure cases: a worker SIGKILLed while the guest runs (the master exits
non-zero in time, names the dead node, nothing is left running); a guest
whose secondary thread writes to NULL (same status and "qemu: uncaught
target signal" message as stock qemu-user); a worker given a --master
nobody listens on (non-zero exit naming the endpoint, in bounded time).

Every process runs in a session of its own with a time limit; on timeout,
or when a test fails half-way, it is killed with everything it started
(tests/dist/distproc.py).

Environment:
  DQEMU_DIST_MAX_NODES  largest cluster to run (default 4); 1 runs only the
                        single-node cases: the tests marked `multinode`
                        (N >= 2, or a worker) are deselected
  DQEMU_DIST_LINKS      link modes to run (default "static dynamic")
  DQEMU_DIST_TIMEOUT    seconds per run (default 60)
  DQEMU_DIST_KILL_DEADLINE  seconds the master may take to exit after a
                        worker is killed (default 5: 2 s failure detection
                        plus slack for a loaded 2-core machine)
  DQEMU_BUILD_DIR, DQEMU_GUEST_DIR, DQEMU_GUEST_NO_BUILD  as for tests/guest
DQEMU_* and QEMU_* variables of the caller's environment are not passed on.

Run:  pytest -n 2 tests/dist                     (pytest-xdist optional)
      DQEMU_DIST_MAX_NODES=1 pytest -n 2 tests/dist
"""
import difflib
import fcntl
import json
import os
import re
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "guest"))

import distproc  # noqa: E402
import test_guest as guest  # noqa: E402  (case list, ISAs, build fixture)

# The session fixture that brings the guest binaries up to date.
guest_binaries = guest.guest_binaries

BUILD_DIR = guest.BUILD_DIR
MAX_NODES = distproc.max_nodes()
LINKS = tuple(os.environ.get("DQEMU_DIST_LINKS", " ".join(guest.LINKS)).split())
TIMEOUT = float(os.environ.get("DQEMU_DIST_TIMEOUT") or 60)
KILL_DEADLINE = float(os.environ.get("DQEMU_DIST_KILL_DEADLINE") or 5)
# How long to keep waiting after the deadline, to say how late the master was.
KILL_WAIT = max(10.0, KILL_DEADLINE)
# A guest reaching its first output line / a worker giving up on a master.
START_TIMEOUT = 30.0
CONNECT_TIMEOUT = 30.0
# How long the processes a master started may outlive it before they count
# as left behind (and are killed).
GRACE = 5.0

for link in LINKS:
    if link not in guest.LINKS:
        raise ValueError(f"DQEMU_DIST_LINKS: {link!r} is not one of {guest.LINKS}")

# ---- the per-node statistics ----------------------------------------------

# The --stats line saying how many guest threads node K ran, printed by the
# master at exit for every node: "dqemu: node K: threads_run N".  The
# "stats: " infix of today's single-node report is accepted too.  This is
# the only place that knows the format.
THREADS_RUN_LINE = re.compile(
    r"^dqemu: node (\d+): (?:stats: )?threads_run\s+(\d+)\b", re.MULTILINE)


def threads_run_by_node(stderr):
    """{node id: threads run} from the --stats lines in @stderr."""
    return {int(m[1]): int(m[2]) for m in THREADS_RUN_LINE.finditer(stderr)}


def check_threads_ran_on_workers(stderr, nodes):
    """None if @stderr shows a threads_run line for each of the @nodes
    nodes and a thread run by a node other than the master; else why not."""
    by_node = threads_run_by_node(stderr)
    if not by_node:
        return "no 'dqemu: node K: threads_run N' line in stderr (--stats)"
    if sorted(by_node) != list(range(nodes)):
        return (f"threads_run lines for nodes {sorted(by_node)}, want one for each "
                f"of 0..{nodes - 1}")
    if not any(count >= 1 for node, count in by_node.items() if node >= 1):
        return f"no thread ran on a worker: threads_run by node {by_node}"
    return None


# ---- running things -------------------------------------------------------

def base_env():
    """The caller's environment without DQEMU_*/QEMU_* settings, which would
    change what dqemu or qemu does behind the command line's back."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("DQEMU_", "QEMU_"))}


def case_env(case):
    env = base_env()
    env.update(case.env)
    for name in case.unset:
        env.pop(name, None)
    return env


def expected_cpus(nodes):
    """The CPU count dist-nproc must see on @nodes nodes (each node has the
    host's CPUs by default), or None when the host's own affinity mask is
    restricted (then the guest's views may legitimately differ)."""
    host = os.cpu_count() or 1
    if len(os.sched_getaffinity(0)) != host:
        return None
    return nodes * host


def dqemu_path(isa):
    return BUILD_DIR / f"dqemu-{isa}"


def stock_path(isa):
    return Path(f"/usr/bin/qemu-{isa}")


def binary_path(guest_dir, isa, program, link):
    return guest_dir / isa / f"{program}-{link}"


def sysroot_opts(isa, link):
    return ["-L", guest.ISAS[isa]["sysroot"]] if link == "dynamic" else []


def require_tools(isa, binary):
    guest.require_executable(binary, "guest binary")
    guest.require_executable(stock_path(isa),
                             f"stock qemu-{isa} (Debian package qemu-user)")
    guest.require_executable(dqemu_path(isa),
                             f"dqemu-{isa} (build it, or set DQEMU_BUILD_DIR)")


def run_in(work, cmd, env, timeout=TIMEOUT):
    """Run @cmd in the scratch directory @work (also its TMPDIR)."""
    work.mkdir(parents=True, exist_ok=True)
    env = dict(env)
    env["TMPDIR"] = str(work)
    return distproc.run(cmd, env, work, timeout, GRACE)


@pytest.fixture(scope="session")
def stock_cache(tmp_path_factory):
    """Where stock qemu-user's results are kept for this session.  Under
    pytest-xdist the workers' base directories share a parent that belongs
    to this session alone, so each stock run happens once per session."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    path = base / "dist-stock"
    path.mkdir(exist_ok=True)
    return path


def stock_result(cache, key, cmd, env):
    """Stock qemu-user's Outcome for @cmd, run once per @key and session."""
    result_file = cache / f"{key}.json"
    with open(cache / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result_file.exists():
            return distproc.Outcome(**json.loads(result_file.read_text()))
        outcome = run_in(cache / key, cmd, env)
        tmp = result_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(outcome)))
        tmp.rename(result_file)
        return outcome


def stdout_diff(ref, got):
    return "".join(difflib.unified_diff(ref.stdout.splitlines(True),
                                        got.stdout.splitlines(True), "stock", "dqemu"))


def is_dist_program(program):
    return program.startswith("dist-")


def node_marks(nodes):
    return [pytest.mark.multinode] if nodes > 1 else []


# ---- every guest program on 1..N nodes ------------------------------------

PROGRAM_PARAMS = [
    pytest.param(case, isa, link, nodes, id=f"{case.id}-{isa}-{link}-n{nodes}",
                 marks=node_marks(nodes))
    for case in guest.CASES for isa in guest.ISAS for link in LINKS
    for nodes in range(1, MAX_NODES + 1)
]


@pytest.mark.parametrize("case,isa,link,nodes", PROGRAM_PARAMS)
def test_program(case, isa, link, nodes, guest_binaries, stock_cache, tmp_path):
    binary = binary_path(guest_binaries, isa, case.program, link)
    require_tools(isa, binary)
    sysroot = sysroot_opts(isa, link)
    env = case_env(case)

    ref = stock_result(stock_cache, f"{case.id}-{isa}-{link}",
                       [stock_path(isa), *guest.ISAS[isa]["stock_opts"], *sysroot,
                        binary, *case.args], env)
    pass_line = f"PASS {case.program}"
    if ref.rc != case.expect_rc or pass_line not in ref.stdout.splitlines():
        pytest.fail(f"stock qemu-{isa} run did not pass (expected exit status "
                    f"{case.expect_rc}, got {ref.status()}): test program or host "
                    f"problem\n{ref.describe('stock qemu')}", pytrace=False)

    opts = ["--nodes", str(nodes)]
    want_stats = nodes > 1 and is_dist_program(case.program)
    if want_stats:
        # The dist-* programs count on round-robin placement starting at
        # node 1 (see their comments), so say it rather than rely on it.
        opts += ["--stats", "--placement", "round-robin"]
    if case.program == "dist-nproc":
        cpus = expected_cpus(nodes)
        if cpus is not None:
            env["DQEMU_EXPECT_CPUS"] = str(cpus)
    got = run_in(tmp_path / "work", [dqemu_path(isa), *opts, *sysroot, binary,
                                     *case.args], env)

    report = ref.describe("stock qemu") + got.describe(f"dqemu, {nodes} node(s)")
    if got.rc != ref.rc:
        pytest.fail(f"exit status differs: stock {ref.status()}, dqemu "
                    f"{got.status()}\n{report}", pytrace=False)
    if got.stdout != ref.stdout:
        pytest.fail(f"stdout differs:\n{stdout_diff(ref, got)}\n{report}", pytrace=False)
    if pass_line not in got.stdout.splitlines():
        pytest.fail(f"dqemu run printed no '{pass_line}' line\n{report}", pytrace=False)
    if got.leftovers:
        pytest.fail(f"processes still running {GRACE:g}s after the master exited"
                    f"\n{report}", pytrace=False)
    if want_stats:
        why = check_threads_ran_on_workers(got.stderr, nodes)
        if why:
            pytest.fail(f"--stats does not show threads on workers: {why}\n{report}",
                        pytrace=False)


# ---- a guest that crashes in a secondary thread ---------------------------

CRASH_PROGRAM = "dist-kill-thread"
# A plain store, and an atomic (issue 6), to an unmapped address.
CRASH_MODES = ("segv-in-thread", "atomic-segv-in-thread")
UNCAUGHT = "qemu: uncaught target signal"


def uncaught_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith(UNCAUGHT)]


CRASH_PARAMS = [
    pytest.param(isa, nodes, mode, id=f"{isa}-n{nodes}-{mode}", marks=node_marks(nodes))
    for mode in CRASH_MODES for isa in guest.ISAS for nodes in range(1, MAX_NODES + 1)
    if mode == CRASH_MODES[0] or nodes in (1, MAX_NODES)
]


@pytest.mark.parametrize("isa,nodes,mode", CRASH_PARAMS)
def test_crash_in_thread(isa, nodes, mode, guest_binaries, stock_cache, tmp_path):
    """The first thread created (on node 1 at N >= 2) writes to NULL, or
    adds to an unmapped word atomically: the program dies as under stock
    qemu-user, with the same message."""
    binary = binary_path(guest_binaries, isa, CRASH_PROGRAM, "static")
    require_tools(isa, binary)
    env = base_env()
    ref = stock_result(stock_cache, f"{CRASH_PROGRAM}-{mode}-{isa}-static",
                       [stock_path(isa), *guest.ISAS[isa]["stock_opts"], binary,
                        mode], env)
    # qemu prints the message only for targets it can write a core file for
    # (not riscv64): whatever stock prints, dqemu must print the same.
    ref_lines = uncaught_lines(ref.stderr)
    if ref.rc != -signal.SIGSEGV:
        pytest.fail(f"stock qemu-{isa} did not die of SIGSEGV: test program or "
                    f"host problem\n{ref.describe('stock qemu')}", pytrace=False)

    opts = ["--nodes", str(nodes)]
    if nodes > 1:
        opts += ["--placement", "round-robin"]
    got = run_in(tmp_path / "work", [dqemu_path(isa), *opts, binary, mode], env)
    report = ref.describe("stock qemu") + got.describe(f"dqemu, {nodes} node(s)")
    if got.rc != ref.rc:
        pytest.fail(f"exit status differs: stock {ref.status()}, dqemu "
                    f"{got.status()}\n{report}", pytrace=False)
    if uncaught_lines(got.stderr) != ref_lines:
        pytest.fail(f"'{UNCAUGHT}' lines differ: stock {ref_lines}, dqemu "
                    f"{uncaught_lines(got.stderr)}\n{report}", pytrace=False)
    if got.stdout != ref.stdout:
        pytest.fail(f"stdout differs:\n{stdout_diff(ref, got)}\n{report}", pytrace=False)
    if got.leftovers:
        pytest.fail(f"processes still running after the master exited\n{report}",
                    pytrace=False)


# ---- a worker killed while the guest runs ---------------------------------

# dist-oversub with so many iterations that it runs until stopped; in the
# "atomic" variant every iteration adds to one shared word, so the victim
# is likely to hold (or lease) that page for an atomic when it dies.
LONG_PROGRAM = "dist-oversub"
LONG_ARGS = {"plain": ["9", "2000000000"], "atomic": ["9", "2000000000", "1"]}

# Each ISA with one worker, and one cluster where the victim is one of two.
KILL_PARAMS = [pytest.param(isa, 2, "plain", id=f"{isa}-n2", marks=node_marks(2))
               for isa in guest.ISAS]
if MAX_NODES >= 3:
    KILL_PARAMS.append(pytest.param("arm", 3, "plain", id="arm-n3", marks=node_marks(3)))
KILL_PARAMS += [pytest.param("aarch64", 2, "atomic", id="aarch64-n2-atomic",
                             marks=node_marks(2))]
if MAX_NODES >= 4:
    KILL_PARAMS.append(pytest.param("riscv64", 4, "atomic", id="riscv64-n4-atomic",
                                    marks=node_marks(4)))


def node_id_of(cmd, environ):
    """The node id a worker was started with (--node-id K, --node-id=K or
    DQEMU_NODE_ID=K), or None."""
    for i, arg in enumerate(cmd):
        if arg == "--node-id" and i + 1 < len(cmd) and cmd[i + 1].isdigit():
            return int(cmd[i + 1])
        if arg.startswith("--node-id=") and arg[10:].isdigit():
            return int(arg[10:])
    value = environ.get("DQEMU_NODE_ID", "")
    return int(value) if value.isdigit() else None


def process_environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            items = f.read().split(b"\0")
    except OSError:
        return {}
    env = {}
    for item in items:
        name, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            env[name] = value
    return env


@pytest.mark.parametrize("isa,nodes,variant", KILL_PARAMS)
def test_worker_killed(isa, nodes, variant, guest_binaries, tmp_path):
    """SIGKILL one worker while threads run on it: the master says which
    node died and exits non-zero within the deadline, and no process of
    the cluster stays behind."""
    binary = binary_path(guest_binaries, isa, LONG_PROGRAM, "static")
    require_tools(isa, binary)
    dqemu = dqemu_path(isa)
    work = tmp_path / "work"
    work.mkdir()
    env = base_env()
    env["TMPDIR"] = str(work)
    tree = distproc.ProcTree([dqemu, "--nodes", str(nodes), "--placement",
                              "round-robin", binary, *LONG_ARGS[variant]], env, work)
    try:
        if tree.wait_for_stdout("started ", START_TIMEOUT) is None:
            why = ("the master exited before the guest had started its threads"
                   if tree.proc.poll() is not None else
                   f"the guest did not start its threads within {START_TIMEOUT:g}s")
            tree.finish(0)
            pytest.fail(f"{why}\n{tree.describe('dqemu')}", pytrace=False)
        deadline = time.monotonic() + START_TIMEOUT
        workers = tree.descendants_running(dqemu)
        while len(workers) < nodes - 1 and time.monotonic() < deadline:
            time.sleep(0.1)
            workers = tree.descendants_running(dqemu)
        if len(workers) < nodes - 1:
            tree.finish(0)
            pytest.fail(f"found {len(workers)} worker processes (descendants running "
                        f"{dqemu.name}), want {nodes - 1}\n{tree.describe('dqemu')}",
                        pytrace=False)

        ids = {pid: node_id_of(k.cmd, process_environ(pid)) for pid, k in workers.items()}
        # The highest node id if they are known, else the last worker started.
        victim = max(workers, key=lambda pid: (ids[pid] or 0, workers[pid].start, pid))
        node = ids[victim] if ids[victim] is not None else (1 if nodes == 2 else None)

        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        rc = tree.wait(KILL_WAIT)
        took = time.monotonic() - killed_at
        tree.finish(0, GRACE)
    finally:
        tree.kill_all()

    report = (f"killed worker pid {victim} (node {node if node is not None else '?'}: "
              f"{' '.join(workers[victim].cmd)[:200]}); the master "
              + (f"exited {took:.2f}s later" if rc is not None else "did not exit")
              + "\n" + tree.describe("dqemu"))
    if rc is None:
        pytest.fail(f"the master was still running {KILL_WAIT:.0f}s after a worker "
                    f"was killed\n{report}", pytrace=False)
    if rc <= 0:
        pytest.fail(f"the master's exit status is {tree.outcome().status()}, want a "
                    f"non-zero exit\n{report}", pytrace=False)
    if took > KILL_DEADLINE:
        pytest.fail(f"the master took {took:.2f}s to exit after a worker was killed, "
                    f"more than {KILL_DEADLINE:g}s\n{report}", pytrace=False)
    pattern = rf"\bnode {node}\b" if node is not None else r"\bnode [1-9][0-9]*\b"
    if not re.search(pattern, tree.stderr):
        pytest.fail(f"stderr does not name the dead node ('{pattern}')\n{report}",
                    pytrace=False)
    if tree.leftovers:
        pytest.fail(f"processes of the cluster still running after the master "
                    f"exited\n{report}", pytrace=False)


# ---- a worker pointed at a master that is not there -----------------------

BAD_MASTER = "tcp://127.0.0.1:1"


@pytest.mark.multinode
def test_worker_wrong_master(tmp_path):
    """A worker whose --master nobody listens on gives up with an error
    naming the endpoint, within a bounded time."""
    dqemu = dqemu_path("arm")
    guest.require_executable(dqemu, "dqemu-arm (build it, or set DQEMU_BUILD_DIR)")
    got = run_in(tmp_path / "work", [dqemu, "--worker", "--master", BAD_MASTER,
                                     "--node-id", "1", "--insecure"], base_env(),
                 timeout=CONNECT_TIMEOUT)
    report = got.describe("dqemu worker")
    if got.rc is None:
        pytest.fail(f"the worker was still running after {CONNECT_TIMEOUT:g}s\n{report}",
                    pytrace=False)
    if got.rc <= 0:
        pytest.fail(f"exit status {got.status()}, want a non-zero exit\n{report}",
                    pytrace=False)
    if not re.search(r"127\.0\.0\.1:1(?![0-9])", got.stderr):
        pytest.fail(f"stderr does not name the endpoint {BAD_MASTER}\n{report}",
                    pytrace=False)
    if got.leftovers:
        pytest.fail(f"processes still running after the worker exited\n{report}",
                    pytrace=False)
