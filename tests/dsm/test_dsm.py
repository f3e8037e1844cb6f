"""The coherence engine (dqemu/dsm.c) with real node processes.

Each test starts K dsm-test processes (tests/dsm/dsm-test.c) on 127.0.0.1
that map one region at the same address and resolve their SIGSEGVs through
dq_dsm_fault(): the master binds an ephemeral port and prints it, the
workers join it.  Every wait has a timeout, every process the test started
is killed and reaped at the end (by pid, never by name).

`make test-dsm` runs this file twice: on the -O2 build, then on the ASan +
UBSan build (DSM_BUILD_DIR=build/dsm-asan, DSM_SANITIZED=1) with fewer,
smaller cases that still reach every scenario, home policy and failure
path.  A sanitizer report on any node's stderr fails the test.
"""
import os
import pathlib
import re
import signal
import time

import pytest

from nodeproc import (BUILD, SANITIZED, NodeProcess, cases,
                      check_unfinished)

PROG = BUILD / "dsm-test"

EXIT_TIMEOUT = 90.0
# Failure detection is 2000 ms of silence (or a lost connection at once);
# allow the poll tick and a loaded machine on top.
DETECT_BOUND = 2.5
EXIT_PEER = 3


def lease_default_us():
    """DQ_DSM_LEASE_DEFAULT_NS from dqemu/dsm.h, in us."""
    h = pathlib.Path(__file__).resolve().parents[2] / "dqemu" / "dsm.h"
    m = re.search(r"#define DQ_DSM_LEASE_DEFAULT_NS\s+\((\d+)u \* 1000u\)",
                  h.read_text())
    assert m, "DQ_DSM_LEASE_DEFAULT_NS not found in dsm.h"
    return int(m.group(1))


LEASE = lease_default_us()


def Node(args):
    return NodeProcess(PROG, args, EXIT_TIMEOUT)


@pytest.fixture
def cluster():
    started = []

    def start(k, args):
        master = Node(["--node", 0, "--nodes", k] + list(args))
        started.append(master)
        ep = master.expect("node 0: endpoint")[1].split()[-1]
        nodes = [master]
        for i in range(1, k):
            w = Node(["--node", i, "--nodes", k, "--master", ep] +
                     list(args))
            started.append(w)
            nodes.append(w)
        return nodes

    yield start
    for n in started:
        n.kill()
    check_unfinished(started)


def run_ok(nodes, scenario):
    results = [n.finish() for n in nodes]
    for i, (rc, out, err) in enumerate(results):
        assert rc == 0, f"node {i} rc={rc}\n{out}\n{err}"
        assert f"node {i}: done {scenario}" in out, out
        assert "dqemu:" not in err, err
        assert any(line.startswith(f"node {i}: shutdown 0")
                   for line in out), out
    assert f"node 0: verified {scenario}" in results[0][1]
    # No event the directory refused, on any node.
    for rc, out, err in results:
        assert any(line.endswith(" errors 0") for line in out), out


def test_dsm_test_binary_was_built():
    assert PROG.exists(), f"{PROG} missing: run `make dsm-build`"


@pytest.mark.parametrize("home", ["master", "hash"])
@pytest.mark.parametrize("k", cases([2, 3, 4, 8], [3, 8]))
def test_consumers_see_all_producer_data_once_the_flag_is_set(cluster, k,
                                                              home):
    run_ok(cluster(k, ["--scenario", "prodcons", "--pages", 8,
                       "--home", home]), "prodcons")


@pytest.mark.parametrize("k", cases([2, 4, 8], [3, 8]))
def test_false_sharing_writers_of_one_page_keep_every_increment(cluster, k):
    run_ok(cluster(k, ["--scenario", "false", "--iters", 2000 // k * 2]),
           "false")


@pytest.mark.parametrize("home", ["master", "hash"])
@pytest.mark.parametrize("k,iters", cases([(2, 8000), (3, 5000), (4, 4000),
                                           (8, 800)],
                                          [(3, 2000), (8, 400)]))
def test_random_reads_and_writes_end_with_exact_checksums(cluster, k, iters,
                                                          home):
    run_ok(cluster(k, ["--scenario", "stress", "--pages", 8, "--iters",
                       iters, "--home", home, "--seed", k * 7 + 1]),
           "stress")


@pytest.mark.parametrize("victim,home", cases(
    [(0, "master"), (0, "hash"), (2, "master"), (2, "hash")],
    [(0, "master"), (2, "hash")]))
def test_killed_node_is_reported_within_2s_and_the_others_exit(cluster,
                                                               victim, home):
    k = 4
    nodes = cluster(k, ["--scenario", "stress", "--pages", 8, "--iters",
                        10 ** 8, "--home", home])
    for i, n in enumerate(nodes):
        n.expect(f"node {i}: running", timeout=30)
    t_kill = time.monotonic()
    os.kill(nodes[victim].proc.pid, signal.SIGKILL)
    nodes[victim].proc.wait(timeout=10)
    for i, n in enumerate(nodes):
        if i == victim:
            continue
        t, line = n.expect(f"node {i}: peer-failed {victim}",
                           timeout=DETECT_BOUND + 5)
        assert t - t_kill < DETECT_BOUND, f"node {i}: {line} after " \
            f"{t - t_kill:.2f}s"
    for i, n in enumerate(nodes):
        if i == victim:
            continue
        rc, out, err = n.finish(timeout=15)
        assert rc == EXIT_PEER, f"node {i} rc={rc}\n{out}\n{err}"
        assert f"dqemu: node {i}: peer failed: lost contact with node " \
            f"{victim}" in err, err


def test_pages_of_a_killed_node_are_intact_elsewhere_or_refused(cluster):
    """Node 2 dies holding data page 0 alone (M) and page 1, which the
    home read back before: both survivors, the home (local path) and
    node 1 (remote path), read page 1 exactly and are refused page 0."""
    nodes = cluster(3, ["--scenario", "lost", "--pages", 2])
    nodes[0].expect("node 0: read back", timeout=30)
    os.kill(nodes[2].proc.pid, signal.SIGKILL)
    nodes[2].proc.wait(timeout=10)
    for i in (0, 1):
        rc, out, err = nodes[i].finish(timeout=30)
        assert rc == EXIT_PEER, f"node {i} rc={rc}\n{out}\n{err}"
        assert f"node {i}: page 0: page lost: its only copy died with a " \
            "node" in out, out
        assert f"node {i}: page 1: intact" in out, out


def stats_of(out):
    """The dq_dsm_counters_print() report in @out as {name: value}, and
    the histogram as {bucket: count}."""
    stats, hist = {}, {}
    for line in out:
        m = re.match(r"dqemu: node \d+: dsm: (\w+) +(\d+) \w+$", line)
        if m:
            stats[m.group(1)] = int(m.group(2))
        elif "fault latency us" in line:
            for b, c in re.findall(r" ([^ :]+):(\d+)", line.split(":", 2)[2]):
                hist[b] = int(c)
    return stats, hist


@pytest.mark.parametrize("home", ["master", "hash"])
def test_statistics_add_up_across_the_cluster(cluster, home):
    k = 3
    nodes = cluster(k, ["--scenario", "stress", "--pages", 8, "--iters",
                        cases(3000, 1000), "--home", home, "--seed", 5])
    results = [n.finish() for n in nodes]
    total = {}
    for i, (rc, out, err) in enumerate(results):
        assert rc == 0, f"node {i} rc={rc}\n{out}\n{err}"
        stats, hist = stats_of(out)
        faults = (stats["read_faults"] + stats["write_faults"] +
                  stats["upgrade_faults"])
        # Every request this node made is one histogram sample.
        assert sum(hist.values()) == faults, (stats, hist)
        assert faults > 0 and stats["fault_ns"] > 0, stats
        assert stats["proto_errors"] == 0 and stats["data_lost"] == 0
        for name, v in stats.items():
            total[name] = total.get(name, 0) + v
    # Each request reaches its home once, plus once per retry.
    assert total["home_requests"] == (total["read_faults"] +
                                      total["write_faults"] +
                                      total["upgrade_faults"] +
                                      total["retries"]), total
    # Every message sent was received, but for heartbeats crossing the
    # moments the nodes took their snapshots (at most a few per pair).
    slack = 2 * k * k
    assert total["msgs_sent"] > 0, total
    assert abs(total["msgs_sent"] - total["msgs_received"]) <= slack, total
    assert abs(total["bytes_sent"] - total["bytes_received"]) <= \
        slack * 64, total
    # Remote invalidations and recalls were both exercised and obeyed
    # (homes also invalidate and recall their own copies, counted only
    # on the obeying side).
    assert 0 < total["invals_sent"] <= total["invals"], total
    assert 0 < total["recalls_sent"], total


def atomic_args(lease_us, threads, iters, home="master"):
    # A pause between increments keeps the nodes asking for the word all
    # along (a thread alone does thousands of increments per ms), so
    # recalls really meet leases.
    return ["--scenario", "atomic", "--threads", threads, "--iters", iters,
            "--lease-us", lease_us, "--home", home, "--pause-us", 5]


@pytest.mark.parametrize("k,lease_us,home,attach", cases(
    [(2, 0, "master", False), (2, LEASE, "master", False),
     (4, 0, "master", False), (4, LEASE, "master", False),
     (4, LEASE, "hash", False), (2, LEASE, "master", True),
     (4, 200, "master", True)],
    [(2, LEASE, "master", True), (4, LEASE, "master", False),
     (4, 0, "hash", False)]))
def test_atomic_increments_of_one_word_from_every_node_are_all_kept(
        cluster, k, lease_us, home, attach):
    """Threads of every node increment ONE word (CAS loops, fetch_add),
    their faults passed as atomic: the final value is exact, every run
    ends, a lease starts on every node that got the word for an atomic
    (lease > 0) and never otherwise, and each held-back recall was
    answered."""
    threads, iters = cases((3, 1000), (2, 300))
    args = atomic_args(lease_us, threads, iters, home)
    if attach:
        args.append("--attach")
    nodes = cluster(k, args)
    run_ok(nodes, "atomic")
    for i, n in enumerate(nodes):
        s, _ = stats_of(n.out)
        assert any(f"node {i}: atomic {threads * iters} ops" in line
                   for line in n.out), n.out
        if lease_us == 0:
            assert s["lease_grants"] == 0, s
            assert s["lease_deferrals"] == 0 and s["lease_wait_ns"] == 0, s
        else:
            # The word starts I everywhere: each node's first increment
            # is an atomic write fault granted M.
            assert s["lease_grants"] >= 1, s
            # Deferred, then answered (counted in recalls) at the end.
            assert s["lease_deferrals"] <= s["recalls"], s
        if s["lease_deferrals"] == 0:
            assert s["lease_wait_ns"] == 0, s
        assert s["data_lost"] == 0, s


@pytest.mark.parametrize("victim", cases([0, 2], [2]))
def test_node_killed_while_hammering_leased_pages_ends_with_a_report(
        cluster, victim):
    """A node dies in the middle of the hammer, maybe holding the word
    under a lease: the others report the failure (the page refused as
    lost, or its home gone) and exit, never hang."""
    k = 4
    nodes = cluster(k, atomic_args(200, 2, 10 ** 8))
    for i, n in enumerate(nodes):
        n.expect(f"node {i}: running", timeout=30)
    time.sleep(0.3)
    os.kill(nodes[victim].proc.pid, signal.SIGKILL)
    nodes[victim].proc.wait(timeout=10)
    for i, n in enumerate(nodes):
        if i == victim:
            continue
        rc, out, err = n.finish(timeout=20)
        assert rc == EXIT_PEER, f"node {i} rc={rc}\n{out}\n{err}"
        assert f"dqemu: node {i}: peer failed: lost contact with node " \
            f"{victim}" in err, err


def test_attached_engine_claims_drops_bounds_and_reports_drops(cluster):
    """The program owns the transport (dq_dsm_attach), CALLs steer node 1.
    Node 0 loads an image into a fresh mapping and claims it, node 1
    reads it through faults; a page bounded PROT_NONE or written beyond a
    read-only bound is NOT_OURS; node 1 writes a page (the home's own
    copy is reported dropped), node 0 maps it anew and claims it again,
    node 1 drops its copy and reads node 0's new data; node 0 writes a
    page node 1 shares and node 1 is told; a page node 1 drops in M
    without a claim is refused as lost, then claimed back; a 200 KB CALL
    is echoed."""
    nodes = cluster(2, ["--scenario", "attach"])
    run_ok(nodes, "attach")
    out0 = nodes[0].out
    for step in ("loaded", "bounds", "read", "written", "reclaimed",
                 "invalidated", "lost", "echoed"):
        assert f"node 0: step {step}" in out0, out0
    s0, _ = stats_of(out0)
    s1, _ = stats_of(nodes[1].out)
    assert s0["claims"] == 7 and s0["claims_busy"] == 0, s0
    assert s0["data_lost"] == 1, s0
    assert s1["claims"] == 0 and s1["drops"] == 2, s1
    assert s1["invals"] >= 1 and s0["proto_errors"] == 0, (s0, s1)


def test_attaching_to_a_4_gib_region_is_cheap():
    """A 32-bit guest's whole space, 1 Mi pages homed on the master: the
    per-page tables must cost nothing until pages are used."""
    n = Node(["--node", 0, "--nodes", 1, "--scenario", "cost"])
    rc, out, err = n.finish(timeout=60)
    assert rc == 0, f"rc={rc}\n{out}\n{err}"
    line = next(x for x in out if x.startswith("node 0: cost attach"))
    m = re.match(r"node 0: cost attach ([\d.]+) ms rss (-?\d+) kB pages "
                 r"(\d+) claim\+bound ([\d.]+) us/page", line)
    assert m, line
    ms, rss_kb, pages = float(m.group(1)), int(m.group(2)), int(m.group(3))
    print(line)
    assert pages == 1 << 20, line
    assert rss_kb < 16 * 1024, line
    # Generous (the budget is 200 ms), and not checked under ASan.
    assert SANITIZED or ms < 100, line
