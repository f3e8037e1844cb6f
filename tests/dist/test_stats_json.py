"""Test --stats-json FILE: the one JSON document the master writes at exit.

A threaded guest runs on 1 node (with and without --nodes 1) and on 2 and
4 nodes, with --stats too, and the document must parse, have an entry per
node with every counter the --stats text shows for that node, totals that
are the sums of the entries, as many threads run as the guest ran (main
and the threads it created), and thread time on every node that ran a
thread.  It is written, with the guest's status, when a thread on a
worker calls exit(); it names the signal a guest dies of; a FILE that
cannot be written is an error before the guest runs, and one that can no
longer be written at exit is reported and fails a guest that succeeded.

Only > 0 is asserted of times.  Environment as for test_dist.py.
"""
import json
import os
import re
import shutil
import signal
import time

import pytest

import distproc
import test_dist as dist
import test_guest as guest

guest_binaries = dist.guest_binaries

MAX_NODES = distproc.max_nodes()
ISA = "arm"

# "dqemu: node K: stats: NAME VALUE UNIT" and the "dsm:" lines of --stats.
TEXT_LINE = re.compile(r"^dqemu: node (\d+): (stats|dsm): (\w+)\s+\d+ \S+$",
                       re.MULTILINE)


def cluster_params(sizes):
    """pytest params for @sizes (None: no --nodes) up to MAX_NODES."""
    sizes = [n for i, n in enumerate(sizes) if n not in sizes[:i]]
    return [pytest.param(n, id="default" if n is None else f"n{n}",
                         marks=dist.node_marks(n or 1))
            for n in sizes if (n or 1) <= MAX_NODES]


def run_guest(guest_dir, tmp_path, program, args, opts, nodes, env=None):
    """Run @program of the guest corpus under dqemu-arm with @opts on
    @nodes nodes (None: no --nodes); its Outcome."""
    binary = dist.binary_path(guest_dir, ISA, program, "static")
    dist.require_tools(ISA, binary)
    cluster = [] if nodes is None else ["--nodes", str(nodes)]
    full_env = dist.base_env()
    full_env.update(env or {})
    got = dist.run_in(tmp_path / "work", [dist.dqemu_path(ISA), *cluster, *opts,
                                          binary, *args], full_env)
    assert not got.leftovers, got.describe("dqemu")
    return got


def text_names(stderr):
    """{node: {"stats": names, "dsm": names}} from the --stats lines."""
    names = {}
    for m in TEXT_LINE.finditer(stderr):
        names.setdefault(int(m[1]), {"stats": set(), "dsm": set()})[m[2]].add(m[3])
    return names


def hist_sum(entries):
    """{(lo, hi): count} summed over fault_hist_us lists."""
    total = {}
    for hist in entries:
        for lo, hi, count in hist:
            total[(lo, hi)] = total.get((lo, hi), 0) + count
    return total


def load(path, got):
    assert path.is_file(), f"no {path}\n" + got.describe("dqemu")
    assert not path.with_name(path.name + ".tmp").exists()
    return json.loads(path.read_text())


def check_document(doc, nodes):
    """The shape every document has; returns per_node."""
    assert doc["format"] == "dqemu-stats"
    assert doc["version"] == 1
    assert doc["nodes"] == nodes
    assert doc["wall_time_ns"] > 0
    per_node = doc["per_node"]
    assert [e["node"] for e in per_node] == list(range(nodes))
    for e in per_node:
        assert "error" not in e, e
        assert e["stats"]["wall_time_ns"] > 0
        if e["stats"]["threads_run"] > 0:
            assert e["stats"]["thread_ns"] > 0, e
    totals = doc["totals"]
    for part in ("stats", "dsm"):
        keys = set(per_node[0][part]) - {"fault_hist_us"}
        assert set(totals[part]) - {"fault_hist_us"} == keys
        for key in keys:
            assert totals[part][key] == sum(e[part][key] for e in per_node), key
    assert hist_sum([totals["dsm"]["fault_hist_us"]]) == hist_sum(
        e["dsm"]["fault_hist_us"] for e in per_node)
    return per_node


@pytest.mark.parametrize("nodes", cluster_params([None, 1, 2, 4]))
def test_document_has_every_node_counter_and_sum(nodes, guest_binaries, tmp_path):
    out = tmp_path / "stats.json"
    got = run_guest(guest_binaries, tmp_path, "threads", [], ["--stats", "--stats-json", out],
                    nodes)
    assert got.rc == 0, got.describe("dqemu")
    assert "PASS threads" in got.stdout.splitlines()
    n = nodes or 1
    doc = load(out, got)
    per_node = check_document(doc, n)
    assert doc["exit_status"] == 0

    text = text_names(got.stderr)
    assert sorted(text) == list(range(n)), got.stderr
    for e in per_node:
        names = text[e["node"]]
        assert "thread_ns" in names["stats"]
        assert set(e["stats"]) == names["stats"]
        if n > 1:
            assert set(e["dsm"]) - {"fault_hist_us"} == names["dsm"]
        else:
            # No engine on one node: its counters are there, all zero.
            assert not names["dsm"]
            assert e["dsm"]["fault_hist_us"] == []
            assert not any(v for k, v in e["dsm"].items() if k != "fault_hist_us")

    totals = doc["totals"]["stats"]
    # threads.c's main thread and every thread it created ran somewhere.
    assert totals["threads_created"] >= 64
    assert totals["threads_run"] == 1 + totals["threads_created"]
    if n > 1:
        assert any(e["stats"]["threads_run"] for e in per_node[1:]), per_node


@pytest.mark.parametrize("nodes", cluster_params([1, 2, MAX_NODES]))
def test_written_when_a_thread_on_a_worker_calls_exit(nodes, guest_binaries,
                                                      tmp_path):
    """args.c --exit-from-thread: its second thread (on node 1 at N >= 2,
    round-robin) calls exit() while main waits in pthread_join."""
    out = tmp_path / "stats.json"
    args = ["stats", "--exit-from-thread"]
    status = guest.args_exit_status(args)
    got = run_guest(guest_binaries, tmp_path, "args", args,
                    ["--stats-json", out, "--placement", "round-robin"], nodes)
    assert got.rc == status, got.describe("dqemu")
    doc = load(out, got)
    per_node = check_document(doc, nodes)
    assert doc["exit_status"] == status
    assert "exit_signal" not in doc
    assert doc["totals"]["stats"]["threads_run"] == 2
    if nodes > 1:
        assert per_node[1]["stats"]["threads_run"] == 1, per_node


@pytest.mark.parametrize("nodes", cluster_params([1, 2]))
def test_names_the_signal_the_guest_dies_of(nodes, guest_binaries, tmp_path):
    out = tmp_path / "stats.json"
    got = run_guest(guest_binaries, tmp_path, "dist-kill-thread", ["segv-in-thread"],
                    ["--stats-json", out], nodes)
    assert got.rc == -signal.SIGSEGV, got.describe("dqemu")
    doc = load(out, got)
    check_document(doc, nodes)
    assert doc["exit_signal"] == signal.SIGSEGV
    assert "exit_status" not in doc


@pytest.mark.parametrize("nodes", cluster_params([1, 2]))
@pytest.mark.parametrize("how", ["missing-dir", "missing-dir-env", "directory"])
def test_unwritable_file_is_an_error_before_the_guest_runs(how, nodes, guest_binaries,
                                                           tmp_path):
    target = tmp_path / "no-such-dir" / "stats.json"
    opts, env = ["--stats-json", target], {}
    reason = "No such file or directory"
    if how == "missing-dir-env":
        opts, env = [], {"DQEMU_STATS_JSON": str(target)}
    elif how == "directory":
        target = tmp_path / "a-dir"
        target.mkdir()
        opts, reason = ["--stats-json", target], "Is a directory"
    got = run_guest(guest_binaries, tmp_path, "args", ["x"], opts, nodes, env)
    assert got.rc == 1, got.describe("dqemu")
    assert f"--stats-json: cannot write {target}" in got.stderr
    assert reason in got.stderr
    assert got.stdout == "", "the guest ran"
    assert not (tmp_path / "no-such-dir").exists()


def test_lost_file_at_exit_is_reported_and_fails_the_run(guest_binaries, tmp_path):
    """The directory goes away while the guest runs: the guest still ends
    normally, the master says which file it could not write, exits 1."""
    binary = dist.binary_path(guest_binaries, ISA, "bench-cpu", "static")
    dist.require_tools(ISA, binary)
    where = tmp_path / "stats"
    where.mkdir()
    out = where / "stats.json"
    tree = distproc.ProcTree([dist.dqemu_path(ISA), "--stats-json", out, binary,
                              "4", "3000000"], dist.base_env(), tmp_path)
    try:
        # Guest threads running (main and QEMU's RCU thread are two):
        # start-up, and its check of FILE, is over.
        deadline = time.monotonic() + dist.START_TIMEOUT
        while len(os.listdir(f"/proc/{tree.pid}/task")) < 4:
            assert time.monotonic() < deadline, "the guest never started its threads"
            assert tree.proc.poll() is None, tree.stderr
            time.sleep(0.01)
        shutil.rmtree(where)
        tree.finish(dist.TIMEOUT, dist.GRACE)
    finally:
        tree.kill_all()
    got = tree.outcome()
    assert "PASS bench-cpu" in got.stdout, got.describe("dqemu")
    assert got.rc == 1, got.describe("dqemu")
    assert f"--stats-json: cannot write {out}: No such file or directory" in got.stderr
