"""Command-line behaviour of multi-node runs: workers started by hand,
bad endpoints, mismatched builds, -strace on a worker.

Every process runs in a session of its own with a timeout; whatever a test
started is killed by process group when it ends, pass or fail.  Traffic
stays on 127.0.0.1.
"""

import json
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


@pytest.fixture
def key(tmp_path):
    """A cluster key made the documented way."""
    path = tmp_path / "cluster.key"
    p = Proc([dqemu("arm"), "--gen-cluster-key", path])
    assert p.wait() == 0, p.err
    assert f"wrote a new cluster key to {path}" in p.out
    assert path.stat().st_mode & 0o777 == 0o600
    return str(path)


def hand_started_pair(procs, key, *master_opts):
    """A --listen master running dist-oversub on 2 nodes and its worker
    started by hand: (master, worker)."""
    ep = f"tcp://127.0.0.1:{free_port()}"
    master = Proc([dqemu("arm"), "--nodes", "2", "--listen", ep, *master_opts,
                   "--cluster-key", key, guest("arm", "dist-oversub")])
    procs.append(master)
    time.sleep(0.5)
    worker = Proc([dqemu("arm"), "--worker", "--master", ep, "--node-id", "1",
                   "--cluster-key", key])
    procs.append(worker)
    return master, worker


def test_worker_started_by_hand_without_nodes(procs, key):
    """The issue's command line: --worker --master EP --node-id K, with the
    cluster's key on both sides."""
    master, worker = hand_started_pair(procs, key, "--stats")
    assert master.wait() == 0, master.err
    assert worker.wait() == 0, worker.err
    assert "PASS dist-oversub" in master.out
    runs = threads_run(master.err)
    assert runs.get(1, 0) >= 1, f"no thread ran on node 1: {runs}\n{master.err}"


def test_stats_json_has_the_hand_started_worker(procs, key, tmp_path):
    """--stats-json on a --listen master: the worker's counters come back
    over the cluster's socket like --stats's."""
    out = tmp_path / "stats.json"
    master, worker = hand_started_pair(procs, key, "--stats-json", str(out))
    assert master.wait() == 0, master.err
    assert worker.wait() == 0, worker.err
    doc = json.loads(out.read_text())
    assert doc["nodes"] == 2
    assert [e["node"] for e in doc["per_node"]] == [0, 1]
    assert all("error" not in e for e in doc["per_node"]), doc["per_node"]
    assert doc["per_node"][1]["stats"]["threads_run"] >= 1
    assert doc["totals"]["stats"]["threads_run"] == sum(
        e["stats"]["threads_run"] for e in doc["per_node"])


def test_wrong_master_address_is_named_and_bounded():
    worker = Proc([dqemu("arm"), "--worker", "--master", "tcp://127.0.0.1:1",
                   "--node-id", "1", "--nodes", "2", "--insecure"])
    start = time.monotonic()
    rc = worker.wait(timeout=40)
    assert rc != 0
    assert "tcp://127.0.0.1:1" in worker.err, worker.err
    assert "node 1" in worker.err, worker.err
    assert time.monotonic() - start < 30


def refused_then_completed(procs, key, bad_worker, worker_says):
    """A master on --listen turns @bad_worker away naming why, keeps
    forming, and a right worker then completes the run."""
    ep = f"tcp://127.0.0.1:{free_port()}"
    master = Proc([dqemu("arm"), "--nodes", "2", "--listen", ep,
                   "--cluster-key", key, guest("arm", "dist-oversub")])
    procs.append(master)
    time.sleep(0.5)
    worker = Proc([*bad_worker, "--master", ep, "--cluster-key", key])
    procs.append(worker)
    assert worker.wait() != 0
    assert worker_says in worker.err, worker.err
    good = Proc([dqemu("arm"), "--worker", "--master", ep, "--node-id", "1",
                 "--cluster-key", key])
    procs.append(good)
    assert master.wait() == 0, master.err
    assert good.wait() == 0, good.err
    assert "PASS dist-oversub" in master.out
    return master


def test_worker_of_another_build_is_refused(procs, key):
    master = refused_then_completed(
        procs, key, [dqemu("aarch64"), "--worker", "--node-id", "1"],
        "same dqemu-aarch64 build")
    assert "dqemu-arm: node 0: refused a connection from 127.0.0.1: not a " \
        "member of this cluster (refused node 1: cluster id differs" \
        in master.err, master.err


def test_node_id_outside_the_cluster_is_refused(procs, key):
    master = refused_then_completed(
        procs, key, [dqemu("arm"), "--worker", "--node-id", "5"],
        "node id out of range")
    assert "refused a connection from 127.0.0.1" in master.err, master.err


def test_worker_with_another_key_is_refused(procs, key, tmp_path):
    other = tmp_path / "other.key"
    assert Proc([dqemu("arm"), "--gen-cluster-key", other]).wait() == 0
    ep = f"tcp://127.0.0.1:{free_port()}"
    master = Proc([dqemu("arm"), "--nodes", "2", "--listen", ep,
                   "--cluster-key", key, guest("arm", "dist-oversub")])
    procs.append(master)
    time.sleep(0.5)
    for cred in (["--cluster-key", str(other)], ["--insecure"]):
        worker = Proc([dqemu("arm"), "--worker", "--master", ep,
                       "--node-id", "1", *cred])
        procs.append(worker)
        assert worker.wait() != 0
        assert "refused this node" in worker.err, worker.err
    good = Proc([dqemu("arm"), "--worker", "--master", ep, "--node-id", "1",
                 "--cluster-key", key])
    procs.append(good)
    assert master.wait() == 0, master.err
    # The address is read from the connection's fd, which a refused peer
    # may have closed already: then it is "an unknown address".
    assert len(re.findall(r"node 0: refused a connection from "
                          r"(127\.0\.0\.1|an unknown address): not a "
                          r"member of this cluster", master.err)) == 2, \
        master.err


@pytest.mark.parametrize("args,text", [
    (["--listen", "tcp://127.0.0.1:7000", "--nodes", "2", "prog"],
     "--listen needs --cluster-key"),
    (["--worker", "--master", "tcp://127.0.0.1:7000", "--node-id", "1"],
     "--worker needs --cluster-key"),
    (["--insecure", "--cluster-key", "/nonexistent", "prog"],
     "not with --cluster-key"),
    (["--cluster-key", "/nonexistent/key", "prog"],
     "--cluster-key: /nonexistent/key: no such file"),
])
def test_cluster_key_errors(args, text):
    p = Proc([dqemu("arm"), *args])
    assert p.wait(timeout=20) == 1
    assert text in p.err, p.err


def test_world_readable_key_is_refused_before_anything_starts(key):
    os.chmod(key, 0o644)
    p = Proc([dqemu("arm"), "--cluster-key", key, guest("arm", "args")])
    assert p.wait(timeout=20) == 1
    assert "readable by others" in p.err and "chmod 600" in p.err, p.err
    assert p.out == ""


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


@pytest.mark.parametrize("hostfile,text", [
    ("localhost\nnode1 slots=0\n", "line 2: slots=0"),
    ("localhost\n\n# a comment\nnode1 cpus=4\n", "line 4: unknown attribute"),
    ("# nothing but a comment\n", "no hosts"),
    ("192.0.2.1\nlocalhost\n", "the first host, 192.0.2.1, must be this "
                                "machine"),
])
def test_hostfile_errors_name_the_line_or_host(tmp_path, hostfile, text):
    hf = tmp_path / "hosts"
    hf.write_text(hostfile)
    p = Proc([dqemu("arm"), "--hostfile", hf, guest("arm", "args")])
    assert p.wait(timeout=20) == 1
    assert "--hostfile" in p.err and text in p.err, p.err


@pytest.mark.parametrize("args,text", [
    (["--hostfile", "/nonexistent/hosts"], "/nonexistent/hosts"),
    (["--hosts", "localhost,,b"], "--hosts"),
    (["--launcher", "rsh", "--nodes", "2"], "--launcher is only for"),
    (["--hosts", "localhost", "--listen", "tcp://127.0.0.1:7000"],
     "--listen waits"),
])
def test_host_list_option_errors(args, text):
    p = Proc([dqemu("arm"), *args, guest("arm", "args")])
    assert p.wait(timeout=20) == 1
    assert text in p.err, p.err


def test_malformed_key_file_is_refused(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("dqemu-cluster-key-v1 not-a-key\n")
    bad.chmod(0o600)
    p = Proc([dqemu("arm"), "--cluster-key", bad, guest("arm", "args")])
    assert p.wait(timeout=20) == 1
    assert str(bad) in p.err and "malformed" in p.err, p.err


def test_gen_cluster_key_never_overwrites(key):
    p = Proc([dqemu("arm"), "--gen-cluster-key", key])
    assert p.wait(timeout=20) == 1
    assert key in p.err, p.err


def test_local_cluster_leaves_no_socket_directory(tmp_path):
    """A --nodes run meets on ipc:// sockets in a private directory of
    TMPDIR, which is gone once every node is connected."""
    env = clean_env()
    env["TMPDIR"] = str(tmp_path)
    p = subprocess.run([dqemu("arm"), "--nodes", "3",
                        guest("arm", "dist-oversub")], env=env,
                       capture_output=True, text=True, timeout=TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert list(tmp_path.iterdir()) == []
