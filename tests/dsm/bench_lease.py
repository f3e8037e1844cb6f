#!/usr/bin/python3
"""What the lease for atomics buys: ops/s of one contended word.

K dsm-test processes (tests/dsm/dsm-test.c, scenario atomic) on 127.0.0.1,
T threads each, every thread doing R increments of ONE word on DSM memory
(CAS loops and fetch_add alternating, faults passed as atomic), for each
lease length.  Cluster ops/s is every node's ops over the slowest node's
time.  Each cell is the median of --runs runs (the other columns are
that median run's); slow/fast is the slowest node's time over the
fastest's, 1.0 when every node got its share.  Prints; fails only when a
run fails (wrong final value, a node's error), never on a timing.

Each thread sleeps --pause-us between two increments (default 5, which
nanosleep's 50 us timer slack makes ~55): a thread alone does an
increment in tens of ns and a page moves in hundreds of us, so without a
pause each node does its rounds in a few ms of its own CPU time slice and
the nodes hardly contend; with it they ask for the word all run long,
which is what leases are for.  --pause-us 0 measures that other case.

    make bench-lease          (or: tests/dsm/bench_lease.py --help)
"""
import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

BUILD = pathlib.Path(os.environ.get(
    "DSM_BUILD_DIR",
    pathlib.Path(__file__).resolve().parents[2] / "build" / "dsm"))
PROG = BUILD / "dsm-test"
TIMEOUT = 300.0

OPS = re.compile(r"node (\d+): atomic (\d+) ops in ([\d.]+) s, (\d+) cas")
STAT = re.compile(r"dqemu: node \d+: dsm: (\w+) +(\d+) \w+$")


def start(args):
    return subprocess.Popen([str(PROG)] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def run_once(k, threads, rounds, lease_us, home, pause_us):
    """One cluster run: (ops/s, faults per op, deferrals, retries per op,
    slowest node's time over the fastest's) or raise with what the nodes
    said."""
    common = ["--nodes", k, "--scenario", "atomic", "--threads", threads,
              "--iters", rounds, "--lease-us", lease_us, "--home", home,
              "--pause-us", pause_us]
    procs = [start(["--node", 0] + common)]
    try:
        line = procs[0].stdout.readline()
        if "endpoint" not in line:
            raise RuntimeError(f"master said {line!r}")
        ep = line.split()[-1]
        for i in range(1, k):
            procs.append(start(["--node", i, "--master", ep] + common))
        outs = []
        deadline = time.monotonic() + TIMEOUT
        for p in procs:
            out, err = p.communicate(
                timeout=max(1.0, deadline - time.monotonic()))
            outs.append((p.returncode, line + out if p is procs[0] else out,
                         err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    ops, secs, retries, faults, deferrals = 0, 0.0, 0, 0, 0
    fastest = float("inf")
    for i, (rc, out, err) in enumerate(outs):
        m = OPS.search(out)
        if rc != 0 or m is None:
            raise RuntimeError(f"node {i} rc={rc}\n{out}\n{err}")
        ops += int(m.group(2))
        secs = max(secs, float(m.group(3)))
        fastest = min(fastest, float(m.group(3)))
        retries += int(m.group(4))
        stats = dict((s.group(1), int(s.group(2)))
                     for s in map(STAT.match, out.splitlines()) if s)
        faults += (stats["read_faults"] + stats["write_faults"] +
                   stats["upgrade_faults"])
        deferrals += stats["lease_deferrals"]
    return ops / secs, faults / ops, deferrals, retries / ops, secs / fastest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", default="2,4")
    ap.add_argument("--leases", default="0,10,20,50,100,200",
                    help="lease lengths, us")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--home", default="master")
    ap.add_argument("--pause-us", type=int, default=5,
                    help="each thread sleeps this long between increments")
    a = ap.parse_args()
    if not PROG.exists():
        sys.exit(f"{PROG} missing: run `make dsm-build`")
    print(f"lease bench: one word, {a.threads} threads per node, "
          f"{a.rounds} increments per thread (CAS loop / fetch_add), "
          f"pause {a.pause_us} us, homes {a.home}, median of {a.runs} runs, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'nodes':>5} {'lease us':>8} {'ops/s':>9} {'min':>8} "
          f"{'max':>8} {'faults/op':>9} {'cas retries/op':>14} "
          f"{'deferrals':>9} {'slow/fast':>9}")
    for k in (int(x) for x in a.nodes.split(",")):
        for lease in (int(x) for x in a.leases.split(",")):
            res = [run_once(k, a.threads, a.rounds, lease, a.home,
                            a.pause_us)
                   for _ in range(a.runs)]
            rate = [r[0] for r in res]
            mid = sorted(res, key=lambda r: r[0])[len(res) // 2]
            print(f"{k:>5} {lease:>8} {statistics.median(rate):>9.0f} "
                  f"{min(rate):>8.0f} {max(rate):>8.0f} {mid[1]:>9.4f} "
                  f"{mid[3]:>14.2f} {mid[2]:>9} {mid[4]:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
