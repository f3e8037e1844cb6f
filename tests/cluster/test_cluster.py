"""dqemu across simulated hosts: the launches a cluster user types.

Every test runs dqemu on hosts of tests/cluster/simcluster.py (network
namespaces on a bridge, each with a real sshd): a --hostfile run over
ssh, srun- and mpirun-style ranks (the rank variables set here as the
launchers would), intruders refused while the real cluster runs, a link
cut mid-run, each node held to its CPU quota, and the launch errors a
user can make.  Guest output is compared with stock qemu-user's.  After
every test no dqemu process may be left on any host; after the suite no
namespace, cgroup or process of any simulated cluster.

Run as root (make test-cluster).  Traffic stays inside the namespaces
the tests create.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import simcluster  # noqa: E402

REPO = HERE.parent.parent
BUILD = Path(os.environ.get("DQEMU_BUILD_DIR") or REPO / "build").absolute()
GUEST = BUILD / "guest"
STOCK_QEMU = os.environ.get("STOCK_QEMU_DIR", "/usr/bin")
RUN_TIMEOUT = 120
# dqemu's failure timeout (xport.h), and the slack a loaded 2-core box needs.
FAILURE_TIMEOUT_S = 2.0
SLACK_S = 6.0


def dqemu(isa="arm"):
    path = BUILD / f"dqemu-{isa}"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} missing: run `make`")
    return str(path)


def guest(name, isa="arm"):
    path = GUEST / isa / f"{name}-static"
    if not path.is_file():
        pytest.fail(f"{path} missing: run `make guest`")
    return str(path)


def stock_output(prog, *args):
    r = subprocess.run([f"{STOCK_QEMU}/qemu-arm", prog, *args],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout


def threads_run(stderr):
    return {int(n): int(v) for n, v in re.findall(
        r"^dqemu: node (\d+): stats: threads_run\s+(\d+)", stderr, re.M)}


def finish(p, timeout=RUN_TIMEOUT):
    """Wait for @p; on a timeout kill its group and fail with its output."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"did not end within {timeout}s\nstdout:\n{out}\n"
                    f"stderr:\n{err}")
    return p.returncode, out, err


def dqemu_pids(sim):
    """Processes of any host whose command line runs a dqemu binary."""
    found = []
    for k in range(sim.n):
        for pid in sim.pids(k):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"dqemu-" in cmd and Path(f"/proc/{pid}/stat").exists():
                state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1]
                if state.split()[0] != "Z":
                    found.append((k, pid, cmd.replace(b"\0", b" ")[:200]))
    return found


def assert_no_dqemu_left(sim, within_s=5.0):
    deadline = time.monotonic() + within_s
    while dqemu_pids(sim) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = dqemu_pids(sim)
    assert not left, f"dqemu processes left on the hosts: {left}"


class Cluster:
    """A SimCluster with dqemu's wrappers and a cluster key."""

    def __init__(self, sim, tmp):
        self.sim = sim
        self.arm = sim.wrap(dqemu("arm"))
        self.key = str(tmp / "cluster.key")
        r = subprocess.run([dqemu("arm"), "--gen-cluster-key", self.key],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        self.started = []

    def run(self, k, argv, env=None):
        p = self.sim.run_on(k, argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
        self.started.append(p)
        return p

    def hostfile_run(self, prog_args, extra=(), slots=None):
        return self.run(0, [self.arm, "--hostfile", self.sim.hostfile(slots),
                            "--launcher", self.sim.launcher,
                            "--remote-dqemu", self.arm, "--stats", *extra,
                            *prog_args])

    def cleanup(self):
        for p in self.started:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)


@pytest.fixture(scope="module")
def sim4():
    with simcluster.SimCluster(4) as sim:
        yield sim


@pytest.fixture
def cluster(sim4, tmp_path):
    c = Cluster(sim4, tmp_path)
    yield c
    c.cleanup()
    assert_no_dqemu_left(sim4)


@pytest.fixture(scope="session", autouse=True)
def nothing_left_after_the_suite():
    yield
    left = simcluster.leftovers()
    assert not left, f"simulated cluster leftovers: {left}"


# ---- launches ---------------------------------------------------------------

@pytest.mark.parametrize("name,args", [
    ("dist-barrier-sum", []),
    ("demo-threads", []),
])
def test_hostfile_over_ssh_matches_stock_qemu(cluster, name, args):
    prog = guest(name)
    rc, out, err = finish(cluster.hostfile_run([prog, *args]))
    assert rc == 0, err[-4000:]
    assert out == stock_output(prog, *args)
    runs = threads_run(err)
    assert sorted(runs) == [0, 1, 2, 3], err[-4000:]
    assert all(runs[k] >= 1 for k in (1, 2, 3)), runs


def test_insecure_hostfile_run_matches_stock_qemu(cluster):
    """--insecure over a host list: the workers get no key, only the
    lifeline pipe (found by make bench-parsec's --insecure column)."""
    prog = guest("dist-barrier-sum")
    rc, out, err = finish(cluster.hostfile_run([prog], extra=["--insecure"]))
    assert rc == 0, err[-4000:]
    assert out == stock_output(prog)
    assert "--insecure: traffic between nodes is neither authenticated" in err
    runs = threads_run(err)
    assert sorted(runs) == [0, 1, 2, 3] and all(runs[k] >= 1 for k in (1, 2, 3)), \
        err[-4000:]


def test_slots_fill_in_order_and_same_host_slots_run_locally(cluster):
    """node0 slots=2 node1 slots=2: nodes 0,1 on node0, 2,3 on node1."""
    prog = guest("dist-barrier-sum")
    rc, out, err = finish(cluster.hostfile_run([prog], slots=[2, 2, None,
                                                              None],
                                               extra=["--nodes", "4"]))
    assert rc == 0, err[-4000:]
    assert out == stock_output(prog)
    assert sorted(threads_run(err)) == [0, 1, 2, 3]


def rank_env(sim, k, extra):
    env = {key: v for key, v in os.environ.items()
           if not key.startswith(("DQEMU_", "QEMU_", "SLURM_", "OMPI_",
                                  "PMI_"))}
    env.update(extra)
    return env


def run_ranks(cluster, n, per_rank_env, args):
    """Start ranks 0..n-1 on hosts 0..n-1, every one the same command."""
    procs = [cluster.run(k, [cluster.arm, "--stats", *args],
                         env=rank_env(cluster.sim, k, per_rank_env(k)))
             for k in range(n)]
    results = [finish(p) for p in procs]
    return results


def test_srun_style_ranks_meet_on_the_slurm_port(cluster):
    prog = guest("dist-barrier-sum")
    results = run_ranks(cluster, 4, lambda k: {
        "SLURM_PROCID": str(k), "SLURM_NTASKS": "4",
        "SLURM_STEP_NODELIST": "node[0-3]", "SLURM_JOB_ID": "4242",
        "SLURM_STEP_ID": "0"}, ["--cluster-key", cluster.key, prog])
    rc, out, err = results[0]
    assert rc == 0, err[-4000:]
    assert out == stock_output(prog)
    assert sorted(threads_run(err)) == [0, 1, 2, 3], err[-3000:]
    for k, (rc_k, out_k, err_k) in enumerate(results[1:], 1):
        assert rc_k == 0, f"rank {k}: {err_k[-2000:]}"
        assert out_k == "", f"rank {k} wrote to stdout: {out_k!r}"


def test_mpirun_style_ranks_meet_on_master(cluster):
    prog = guest("dist-barrier-sum")
    results = run_ranks(cluster, 4, lambda k: {
        "OMPI_COMM_WORLD_RANK": str(k), "OMPI_COMM_WORLD_SIZE": "4"},
        ["--master", "tcp://node0:7301", "--cluster-key", cluster.key, prog])
    rc, out, err = results[0]
    assert rc == 0, err[-4000:]
    assert out == stock_output(prog)
    assert sorted(threads_run(err)) == [0, 1, 2, 3], err[-3000:]
    assert all(r[0] == 0 for r in results), [r[2][-500:] for r in results]


def test_mpirun_without_master_is_a_clear_error(cluster):
    p = cluster.run(1, [cluster.arm, "--cluster-key", cluster.key,
                        guest("args")],
                    env=rank_env(cluster.sim, 1, {
                        "OMPI_COMM_WORLD_RANK": "1",
                        "OMPI_COMM_WORLD_SIZE": "2"}))
    rc, out, err = finish(p, timeout=30)
    assert rc == 1
    assert "needs --master tcp://HOST:PORT" in err, err


# ---- who may join ------------------------------------------------------------

def intrude(cluster, host, port, cred):
    """A worker on @host that tries to join node0's cluster with @cred."""
    p = cluster.run(host, [cluster.arm, "--worker", "--master",
                           f"tcp://node0:{port}", "--node-id", "1", *cred])
    return finish(p, timeout=60)


def garbage_join(sim, host, port):
    """Raw bytes at the cluster port, as a hostile peer might send."""
    code = ("import socket\n"
            f"s = socket.create_connection(('node0', {port}), timeout=5)\n"
            "s.sendall(b'\\xff' + b'\\0' * 8 + b'\\x7fJOIN node 1 please' * 20)\n"
            "s.settimeout(2)\n"
            "try:\n    s.recv(100)\nexcept OSError:\n    pass\n")
    p = sim.run_on(host, ["/usr/bin/python3", "-c", code])
    assert p.wait(timeout=30) == 0


def test_intruders_are_refused_while_the_cluster_runs(cluster, tmp_path):
    """Rank 0 of 2 waits on port P; a worker without the key, one with
    another key and raw garbage are each refused and logged, then the real
    rank 1 joins and the program completes; the same intrusions during
    the run change nothing."""
    other = tmp_path / "other.key"
    assert subprocess.run([dqemu(), "--gen-cluster-key", other],
                          capture_output=True).returncode == 0
    port = 7302
    env = {"OMPI_COMM_WORLD_SIZE": "2"}
    prog = guest("bench-cpu")
    # Long enough (seconds) for the second round to come during the run.
    work = ["4", "24000000"]
    master = cluster.run(0, [cluster.arm, "--master", f"tcp://node0:{port}",
                             "--cluster-key", cluster.key, "--stats", prog,
                             *work],
                         env=rank_env(cluster.sim, 0, {
                             **env, "OMPI_COMM_WORLD_RANK": "0"}))
    time.sleep(1.0)
    for cred in (["--insecure"], ["--cluster-key", str(other)]):
        rc, _, err = intrude(cluster, 2, port, cred)
        assert rc != 0 and "refused this node" in err, err
    garbage_join(cluster.sim, 3, port)
    worker = cluster.run(1, [cluster.arm, "--master", f"tcp://node0:{port}",
                             "--cluster-key", cluster.key, prog, *work],
                         env=rank_env(cluster.sim, 1, {
                             **env, "OMPI_COMM_WORLD_RANK": "1"}))
    time.sleep(1.5)
    assert master.poll() is None, "the run ended before the second round"
    for cred in (["--insecure"], ["--cluster-key", str(other)]):
        rc, _, err = intrude(cluster, 3, port, cred)
        assert rc != 0 and "refused this node" in err, err
    garbage_join(cluster.sim, 2, port)
    assert master.poll() is None, "the run ended during the second round"
    rc, out, err = finish(master)
    assert rc == 0, err[-4000:]
    assert out == stock_output(prog, *work)
    assert finish(worker)[0] == 0
    refusals = re.findall(r"^dqemu-arm: node 0: refused a connection from "
                          r"(\S+|an unknown address): not a member of this "
                          r"cluster", err, re.M)
    # Six intrusions; the same address and reason within 10 s is said once,
    # and an address read too late is "an unknown address".
    assert len(refusals) >= 3, err[-4000:]
    assert threads_run(err).get(1, 0) >= 1


# ---- failures ------------------------------------------------------------------

def test_link_down_mid_run_is_named_within_the_failure_timeout(tmp_path):
    with simcluster.SimCluster(4) as sim:
        c = Cluster(sim, tmp_path)
        try:
            master = c.hostfile_run([guest("bench-cpu"), "8", "200000000"])
            deadline = time.monotonic() + 60
            # Running once every node's wrapper joined its cgroup.
            while time.monotonic() < deadline and not all(
                    sim.cgroup_pids(k) for k in range(4)):
                time.sleep(0.1)
            time.sleep(1.0)
            assert master.poll() is None, finish(master)[2][-3000:]
            sim.down(2)
            cut = time.monotonic()
            rc, out, err = finish(master, timeout=60)
            took = time.monotonic() - cut
            assert rc == 1, err[-3000:]
            assert re.search(r"node 2 failed \((no traffic for \d+ ms|"
                             r"connection lost)\); stopping the cluster",
                             err), err[-3000:]
            # Not a timing assertion on the run: a bound on a hang.
            assert took < FAILURE_TIMEOUT_S + SLACK_S, took
            assert_no_dqemu_left(sim, within_s=FAILURE_TIMEOUT_S + SLACK_S)
        finally:
            c.cleanup()


def test_each_node_stays_within_its_cpu_quota(tmp_path):
    quota = 0.2
    with simcluster.SimCluster(4, cpu=quota) as sim:
        c = Cluster(sim, tmp_path)
        try:
            before = [sim.cgroup_cpu_usage_ns(k) for k in range(4)]
            t0 = time.monotonic()
            rc, out, err = finish(c.hostfile_run([guest("bench-cpu"), "8",
                                                  "1500000"]), timeout=300)
            wall = time.monotonic() - t0
            assert rc == 0, err[-3000:]
            used = [(sim.cgroup_cpu_usage_ns(k) - before[k]) / 1e9
                    for k in range(4)]
            for k in range(4):
                assert used[k] > 0.05, f"node {k} did no work: {used}"
                # The quota is enforced per 5 ms period: a bound, with the
                # slack of cgroup accounting granularity.
                assert used[k] / wall <= quota * 1.15 + 0.02, \
                    f"node {k} used {used[k]:.2f} s CPU in {wall:.2f} s"
        finally:
            c.cleanup()
        assert_no_dqemu_left(sim)


def cpu_cgroup_of(pid, tid):
    """Name of the cpu cgroup thread @tid of @pid is in ("" when gone)."""
    try:
        for line in Path(f"/proc/{pid}/task/{tid}/cgroup").read_text().splitlines():
            if ":cpu:" in line or line.split(":")[1] == "cpu,cpuacct":
                return line.split(":", 2)[2].rsplit("/", 1)[-1]
    except (OSError, IndexError):
        pass
    return ""


def test_service_threads_get_a_cgroup_of_their_own(tmp_path):
    """With service_cpu, guest threads run in the host's guest cgroup and
    the transport's threads (ZeroMQ's among them) in its service cgroup
    (linux-user-dist/dist-simhost.c), on the master and on a worker."""
    with simcluster.SimCluster(2, cpu=0.2, service_cpu=0.2) as sim:
        c = Cluster(sim, tmp_path)
        try:
            p = c.hostfile_run([guest("bench-cpu"), "4", "3000000"])
            seen = {}
            deadline = time.monotonic() + 60
            while p.poll() is None and time.monotonic() < deadline:
                for k in range(2):
                    for pid in sim.cgroup_pids(k):
                        for t in Path(f"/proc/{pid}/task").glob("*"):
                            try:
                                comm = (t / "comm").read_text().strip()
                            except OSError:
                                continue
                            cg = cpu_cgroup_of(pid, t.name)
                            if cg:
                                seen.setdefault((k, cg), set()).add(comm)
                if all((k, f"node{k}") in seen for k in range(2)):
                    break
                time.sleep(0.2)
            rc, out, err = finish(p, timeout=300)
            assert rc == 0, err[-3000:]
            assert out == stock_output(guest("bench-cpu"), "4", "3000000")
            for k in range(2):
                assert (k, f"node{k}") in seen, f"no guest thread seen: {seen}"
                service = seen.get((k, f"node{k}-service"), set())
                assert any(name.startswith("ZMQbg") for name in service), seen
                assert not any(name.startswith("ZMQbg")
                               for name in seen[(k, f"node{k}")]), seen
                guest_ns = sim.cgroup_cpu_usage_ns(k, "guest")
                service_ns = sim.cgroup_cpu_usage_ns(k, "service")
                assert guest_ns > service_ns > 0, (k, guest_ns, service_ns)
        finally:
            c.cleanup()
        assert_no_dqemu_left(sim)


# ---- bad launches ----------------------------------------------------------------

def launch_error(cluster, hostfile_text, extra=(), timeout=60):
    hf = Path(cluster.sim.tmpdir) / "bad-hostfile"
    hf.write_text(hostfile_text)
    p = cluster.run(0, [cluster.arm, "--hostfile", str(hf), "--launcher",
                        cluster.sim.launcher, "--remote-dqemu", cluster.arm,
                        *extra, guest("args")])
    rc, out, err = finish(p, timeout=timeout)
    assert rc != 0, err
    return err


def test_unknown_host_is_named(cluster):
    err = launch_error(cluster, "node0\nno-such-host-here\n")
    assert "no-such-host-here" in err, err


def test_unreachable_host_is_named_without_a_hang(cluster):
    cluster.sim.down(3)
    try:
        err = launch_error(cluster, "node0\nnode3\n")
    finally:
        cluster.sim.up(3)
    assert "node 1 on host node3" in err, err


def test_missing_remote_dqemu_is_named(cluster):
    err = launch_error(cluster, "node0\nnode1\n",
                       extra=["--remote-dqemu", "/nonexistent/dqemu-arm"])
    assert "node 1 on host node1" in err, err
    assert "/nonexistent/dqemu-arm" in err, err


def test_remote_dqemu_of_another_build_is_named(cluster):
    other = cluster.sim.wrap(dqemu("aarch64"))
    err = launch_error(cluster, "node0\nnode2\n",
                       extra=["--remote-dqemu", other])
    assert "node 1 on host node2" in err, err
    assert "cluster id differs" in err, err


def test_first_host_must_be_this_machine(cluster):
    err = launch_error(cluster, "node1\nnode0\n")
    assert "the first host, node1, must be this machine" in err, err


@pytest.mark.parametrize("sig,extra", [(signal.SIGTERM, []),
                                       (signal.SIGKILL, []),
                                       (signal.SIGKILL, ["--insecure"])])
def test_no_worker_outlives_a_master_ended_by_a_signal(cluster, sig, extra):
    """SIGTERM reaches the guest and ends the run the usual way; SIGKILL
    gives the master no say at all: its pipes close, and every launched
    worker leaves on its own, with a key or without (--insecure)."""
    master = cluster.hostfile_run([guest("bench-cpu"), "8", "200000000"],
                                  extra=extra)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(
            dqemu_on(cluster.sim, k) for k in range(4)):
        time.sleep(0.1)
    assert all(dqemu_on(cluster.sim, k) for k in range(4)), \
        dqemu_pids(cluster.sim)
    time.sleep(1.0)
    master.send_signal(sig)
    rc, out, err = finish(master, timeout=60)
    assert rc == -sig or rc == 128 + sig, (rc, err[-3000:])
    assert_no_dqemu_left(cluster.sim, within_s=FAILURE_TIMEOUT_S + SLACK_S)


def dqemu_on(sim, k):
    return [p for p in dqemu_pids(sim) if p[0] == k]
