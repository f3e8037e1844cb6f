"""Command-line behaviour of multi-node runs: workers started by hand,
bad endpoints, mismatched builds, -strace on a worker.

Every process runs in a session of its own with a timeout; whatever a test
started is killed by process group when it ends, pass or fail.  Traffic
stays on 127.0.0.1.
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
BUILD = Path(os.environ.get("DQEMU_BUILD_DIR") or REPO / "build")
GUEST = BUILD / "guest"
TIMEOUT = 60


def dqemu(isa):
    return str(BUILD / f"dqemu-{isa}")


def guest(isa, name):
    return str(GUEST / isa / f"{name}-static")


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DQEMU_", "QEMU_"))}
    return env


class Proc:
    """One emulator process in its own session, killed by group at the end."""

    def __init__(self, cmd):
        self.cmd = [str(c) for c in cmd]
        self.p = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=clean_env(),
                                  start_new_session=True)
        self.out = self.err = ""

    def wait(self, timeout=TIMEOUT):
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.p.communicate()
            self.out, self.err = out.decode(errors="replace"), err.decode(errors="replace")
            pytest.fail(f"{' '.join(self.cmd)} did not end within {timeout}s\n"
                        f"stdout:\n{self.out}\nstderr:\n{self.err}")
        self.out, self.err = out.decode(errors="replace"), err.decode(errors="replace")
        return self.p.returncode

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        p.kill()
        try:
            p.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def threads_run(stderr):
    return {int(n): int(v) for n, v in re.findall(
        r"^dqemu: node (\d+): stats: threads_run\s+(\d+)", stderr, re.M)}


def test_worker_started_by_hand_without_nodes(procs):
    """The issue's command line: --worker --master EP --node-id K."""
    ep = f"tcp://127.0.0.1:{free_port()}"
    master = Proc([dqemu("arm"), "--nodes", "2", "--listen", ep, "--stats",
                   guest("arm", "dist-oversub")])
    procs.append(master)
    time.sleep(0.5)
    worker = Proc([dqemu("arm"), "--worker", "--master", ep, "--node-id", "1"])
    procs.append(worker)
    assert master.wait() == 0, master.err
    assert worker.wait() == 0, worker.err
    assert "PASS dist-oversub" in master.out
    runs = threads_run(master.err)
    assert runs.get(1, 0) >= 1, f"no thread ran on node 1: {runs}\n{master.err}"


def test_wrong_master_address_is_named_and_bounded():
    worker = Proc([dqemu("arm"), "--worker", "--master", "tcp://127.0.0.1:1",
                   "--node-id", "1", "--nodes", "2"])
    start = time.monotonic()
    rc = worker.wait(timeout=40)
    assert rc != 0
    assert "tcp://127.0.0.1:1" in worker.err, worker.err
    assert "node 1" in worker.err, worker.err
    assert time.monotonic() - start < 30


def test_worker_of_another_build_is_refused(procs):
    ep = f"tcp://127.0.0.1:{free_port()}"
    master = Proc([dqemu("arm"), "--nodes", "2", "--listen", ep,
                   guest("arm", "dist-oversub")])
    procs.append(master)
    time.sleep(0.5)
    worker = Proc([dqemu("aarch64"), "--worker", "--master", ep,
                   "--node-id", "1"])
    procs.append(worker)
    assert worker.wait() != 0
    assert "refused" in worker.err and "same dqemu-aarch64 build" in worker.err, \
        worker.err
    assert master.wait() != 0
    assert "node 1" in master.err and "cluster id differs" in master.err, \
        master.err


def test_node_id_outside_the_cluster_is_refused(procs):
    ep = f"tcp://127.0.0.1:{free_port()}"
    master = Proc([dqemu("arm"), "--nodes", "2", "--listen", ep,
                   guest("arm", "dist-oversub")])
    procs.append(master)
    time.sleep(0.5)
    worker = Proc([dqemu("arm"), "--worker", "--master", ep, "--node-id", "5"])
    procs.append(worker)
    assert worker.wait() != 0
    assert "node id out of range" in worker.err, worker.err
    assert master.wait() != 0


@pytest.mark.parametrize("args,text", [
    (["--worker"], "--worker needs --master"),
    (["--master", "tcp://127.0.0.1:7000", "prog"], "--master is only for a --worker"),
    (["--worker", "--master", "127.0.0.1:7000", "--node-id", "1"],
     "is not an endpoint"),
    (["--listen", "tcp://127.0.0.1:7000", "prog"], "--listen needs --nodes"),
])
def test_bad_cluster_options_are_usage_errors(args, text):
    p = Proc([dqemu("arm"), *args])
    assert p.wait(timeout=20) == 1
    assert text in p.err, p.err


def test_strace_says_where_each_call_ran():
    p = Proc([dqemu("arm"), "-strace", "--nodes", "2",
              guest("arm", "dist-pipe-block")])
    assert p.wait() == 0, p.err
    # A call a thread on node 1 ran there, and one it sent to the master.
    assert re.search(r"\brt_sigprocmask\([^)]*\) \[node 1\] = ", p.err), \
        p.err[-3000:]
    assert re.search(r"\bread\(\d+,0x[0-9a-f]+,\d+\) \[node 0, delegated\]",
                     p.err), p.err[-3000:]
