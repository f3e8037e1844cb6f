"""Self-tests of the simulated cluster (tests/cluster/simcluster.py).

They check what dqemu's cluster tests rely on: hosts reach each other by
name, ssh between hosts works and lands in the right host, the CPU quota and
the link rate hold, the delay variable reaches every node process, a link can
be cut, and nothing is left on the machine afterwards, also after an
exception, a signal or a killed owner.  Needs root; about 20 s.
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import simcluster  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists(simcluster.SSHD), reason="needs openssh-server"),
]

CPU_FRACTION = 0.2
RATE = "20mbit"
DELAY_US = 250


@pytest.fixture(scope="module")
def sim():
    with simcluster.SimCluster(4, cpu=CPU_FRACTION, rate=RATE, delay_us=DELAY_US) as s:
        yield s
    assert simcluster.leftovers(s.prefix) == []


def run_in(sim, k, argv, timeout=20, **kwargs):
    """Run argv on host k to completion; return (exit status, stdout+stderr)."""
    p = sim.run_on(k, argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate(timeout=5)
        raise AssertionError("timed out: %s\n%s" % (argv, out))
    return p.returncode, out


def ssh(sim, host, command):
    return ["ssh", "-F", sim.ssh_config, host, command]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def read_line(proc, timeout):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no output from child within %s s" % timeout
    return proc.stdout.readline().strip()


@pytest.mark.skipif(not shutil.which("ping"), reason="needs ping (iputils-ping)")
def test_hosts_ping_each_other_by_name(sim):
    for k in range(sim.n):
        script = " && ".join("ping -q -c 1 -W 2 %s >/dev/null" % h for h in sim.hosts)
        status, out = run_in(sim, k, ["sh", "-c", script])
        assert status == 0, "node%d: %s" % (k, out)


def test_names_resolve_in_every_host(sim):
    for k in range(sim.n):
        status, out = run_in(sim, k, ["getent", "hosts"] + sim.hosts + ["localhost"])
        assert status == 0, out
        resolved = {line.split()[1]: line.split()[0] for line in out.splitlines()}
        for j, h in enumerate(sim.hosts):
            assert resolved[h] == sim.addr(j)
        status, out = run_in(sim, k, ["hostname"])
        assert out.strip() == sim.hosts[k]


def test_ssh_from_node0_lands_on_each_host(sim):
    for k in range(1, sim.n):
        status, out = run_in(sim, 0, ssh(sim, sim.hosts[k], "hostname; hostname -I; ip -o -4 addr show dev eth0"))
        assert status == 0, out + sim.sshd_log(k)
        lines = out.split()
        assert lines[0] == sim.hosts[k]
        assert lines[1] == sim.addr(k)
        assert sim.addr(k) + "/24" in out


def test_launcher_and_hostfile(sim):
    status, out = run_in(sim, 0, ["sh", "-c", sim.launcher + " node2 hostname"])
    assert (status, out.strip()) == (0, "node2")
    with open(sim.hostfile(slots=2)) as f:
        assert f.read() == "".join("node%d slots=2\n" % k for k in range(sim.n))
    with open(sim.hostfile()) as f:
        assert f.read().split() == sim.hosts


def test_delay_and_cgroup_variables_reach_ssh_sessions_and_run_on(sim):
    status, out = run_in(sim, 0, ssh(sim, "node3", "echo $DQEMU_SIM_LINK_DELAY $DQEMU_SIM_CGROUP"))
    assert status == 0, out
    delay, cgroups = out.split()
    assert delay == str(DELAY_US)
    assert cgroups == sim.cgroup_env(3)
    status, out = run_in(sim, 1, ["sh", "-c", "echo $DQEMU_SIM_LINK_DELAY $DQEMU_SIM_CGROUP"])
    assert out.split() == [str(DELAY_US), sim.cgroup_env(1)]


def test_sshd_and_plain_processes_stay_outside_the_node_cgroup(sim):
    p = sim.run_on(1, ["sleep", "30"])
    try:
        assert sim.cgroup_pids(1) == []
        assert p.pid in sim.pids(1)
        assert not set(sim.pids(1)) & set(sim.cgroup_pids(1))
    finally:
        p.kill()
        p.wait(timeout=5)


def test_cpu_quota_limits_a_busy_loop(sim):
    busy = sim.run_on(2, [sim.wrap("/bin/sh"), "-c", "while :; do :; done"])
    try:
        wait_until(lambda: busy.pid in sim.cgroup_pids(2), 5, "the busy loop to join its cgroup")
        time.sleep(0.2)
        used0, t0 = sim.cgroup_cpu_usage_ns(2), time.monotonic()
        time.sleep(2)
        used1, t1 = sim.cgroup_cpu_usage_ns(2), time.monotonic()
    finally:
        busy.kill()
        busy.wait(timeout=5)
    share = (used1 - used0) / 1e9 / (t1 - t0)
    assert abs(share - CPU_FRACTION) <= 0.06, "busy loop used %.3f CPU" % share


def test_wrapper_without_cgroup_variable_just_runs(sim):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DQEMU_SIM")}
    out = subprocess.run([sim.wrap("echo"), "a b", "c"], env=env, capture_output=True,
                         text=True, timeout=10)
    assert (out.returncode, out.stdout) == (0, "a b c\n")


RECEIVER = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], 5001))
    s.listen(1)
    s.settimeout(20)
    print("listening", flush=True)
    c, _ = s.accept()
    c.settimeout(20)
    n, first = 0, None
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        if first is None:
            first = time.monotonic()
        n += len(b)
    print(n, time.monotonic() - first, flush=True)
""")

SENDER = textwrap.dedent("""
    import socket, sys
    c = socket.create_connection((sys.argv[1], 5001), timeout=20)
    c.sendall(b"x" * int(sys.argv[2]))
    c.close()
""")


def test_tbf_limits_a_transfer(sim):
    size = 3 * 1000 * 1000
    receiver = sim.run_on(1, [sys.executable, "-c", RECEIVER, sim.addr(1)],
                          stdout=subprocess.PIPE, text=True)
    try:
        assert read_line(receiver, 10) == "listening"
        status, out = run_in(sim, 0, [sys.executable, "-c", SENDER, "node1", str(size)], timeout=30)
        assert status == 0, out
        received, seconds = read_line(receiver, 30).split()
    finally:
        receiver.kill()
        receiver.wait(timeout=5)
    assert int(received) == size
    rate = size * 8 / float(seconds)
    limit = simcluster.tc_rate_bits_per_s(RATE)
    assert rate < 1.3 * limit, "measured %.1f Mbit/s over a %s link" % (rate / 1e6, RATE)


@pytest.mark.skipif(not shutil.which("ping"), reason="needs ping (iputils-ping)")
def test_down_makes_a_host_unreachable_and_up_restores_it(sim):
    sim.down(3)
    try:
        status, _ = run_in(sim, 0, ["ping", "-q", "-c", "1", "-W", "1", "node3"])
        assert status != 0
        status, _ = run_in(sim, 0, ssh(sim, "node3", "true") + ["-o", "ConnectTimeout=1"])
        assert status != 0
    finally:
        sim.up(3)
    status, out = run_in(sim, 0, ["ping", "-q", "-c", "1", "-w", "5", "node3"])
    assert status == 0, out


def test_tc_rate_parsing_and_quota():
    assert simcluster.tc_rate_bits_per_s("20mbit") == 20e6
    assert simcluster.tc_rate_bits_per_s("1gbit") == 1e9
    assert simcluster.tc_rate_bits_per_s("1MBps") == 8e6
    with pytest.raises(ValueError):
        simcluster.tc_rate_bits_per_s("fast")
    assert simcluster.cpu_quota_us(0.2) == (5000, 1000)
    assert simcluster.cpu_quota_us(0.05) == (5000, 1000)
    assert simcluster.cpu_quota_us(1.5) == (5000, 7500)


def test_nothing_left_after_with_block():
    with simcluster.SimCluster(2, cpu=0.5) as s:
        prefix = s.prefix
        kinds = {item.kind for item in simcluster.leftovers(prefix)}
        assert {"netns", "etc", "cgroup", "tmpdir", "mount"} <= kinds
    assert simcluster.leftovers(prefix) == []


def test_nothing_left_after_an_exception_in_the_block():
    with pytest.raises(ZeroDivisionError):
        with simcluster.SimCluster(2, cpu=0.5) as s:
            prefix = s.prefix
            sleeper = s.run_on(1, [s.wrap("sleep"), "60"])
            wait_until(lambda: sleeper.pid in s.cgroup_pids(1), 5, "sleep to join its cgroup")
            1 / 0
    assert sleeper.poll() is not None
    assert simcluster.leftovers(prefix) == []


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    import simcluster
    sim = simcluster.SimCluster(2, cpu=0.5, delay_us=10)
    sleeper = sim.run_on(1, [sim.wrap("sleep"), "60"])
    session = sim.run_on(0, ["ssh", "-F", sim.ssh_config, "node1", sim.wrap("sleep") + " 61"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(sim.cgroup_pids(1)) < 2:
        time.sleep(0.02)
    print(sim.prefix, " ".join(map(str, sim.cgroup_pids(1) + sim.pids(0) + sim.pids(1))), flush=True)
    time.sleep(60)
""")


def start_child_with_sim():
    child = subprocess.Popen([sys.executable, "-c", CHILD, HERE], stdout=subprocess.PIPE,
                             text=True)
    line = read_line(child, 30).split()
    prefix, pids = line[0], [int(p) for p in line[1:]]
    assert len(pids) >= 6          # 2 wrapped sleeps, 2 sshd, ssh client, sshd session
    assert simcluster.leftovers(prefix)
    return child, prefix, pids


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_nothing_left_after_a_signal_to_the_owner(signum):
    child, prefix, pids = start_child_with_sim()
    child.send_signal(signum)
    child.wait(timeout=30)
    assert child.returncode == -signum
    assert simcluster.leftovers(prefix) == []
    assert not [p for p in pids if simcluster._pid_alive(p)]


def test_cleanup_removes_what_a_killed_owner_left():
    child, prefix, pids = start_child_with_sim()
    child.kill()
    child.wait(timeout=10)
    assert simcluster.leftovers(prefix)
    purged, errors = simcluster.cleanup_dead_instances()
    assert prefix in purged and errors == []
    assert simcluster.leftovers(prefix) == []
    assert not [p for p in pids if simcluster._pid_alive(p)]


def test_cli_runs_a_command_on_node0_and_returns_its_status():
    cli = subprocess.run(
        [sys.executable, os.path.join(HERE, "simcluster.py"), "--nodes", "2", "--quiet",
         "--wrap", "/bin/true", "--",
         "sh", "-c", 'hostname && $SIMCLUSTER_LAUNCHER node1 hostname && '
                     'cat "$SIMCLUSTER_HOSTFILE" && "$SIMCLUSTER_WRAP_true" && exit 7'],
        capture_output=True, text=True, timeout=60)
    assert cli.returncode == 7, cli.stderr
    assert cli.stdout.split() == ["node0", "node1", "node0", "node1"]
    orphans = [item for item in simcluster.leftovers()
               if not simcluster._pid_alive(item.owner_pid)]
    assert orphans == []
