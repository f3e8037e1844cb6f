#!/usr/bin/env python3
"""Scaling of one CPU-bound threaded guest over simulated hosts.

On a 2-core machine, N local nodes share the same two cores, so more nodes
can only look slower (make bench-dist).  Here every node is a simulated
host (tests/cluster/simcluster.py) held to the same CPU quota, 1/5 of a
CPU by default, so N nodes have N times the CPU of one: the ratio to one
node is a real speedup of like with like (8 such nodes use 1.6 CPUs and
leave the rest to the kernel, sshd and this script).  Nodes 2.. are
started over ssh from a hostfile, as on a real cluster.

The default size (12M numbers, 256 chunks) gives each chunk about 80 ms
of work on a 1/5-CPU node.  Each chunk also costs two remote page faults
(the chunk counter and the results array), and under a CFS quota a fault
waits for throttled nodes' next period: 10-60 ms here, against 0.2-1 ms
without quotas.  With 3M numbers those faults are as long as the work
and 8 nodes are no faster than one (measured: 0.95x); pass --size to see.

Prints every run, the median per node count, and the speedup over one
node, each also as a `bench: NAME = VALUE UNIT` line.  Never fails on a
timing; fails only when a run fails.  Run as root.

usage: cluster-scaling.py DQEMU GUEST [--nodes 1,2,4,8] [--cpu 0.2]
                          [--runs 3] [--threads 8] [--size 12000000]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))
import simcluster  # noqa: E402


def run_once(sim, wrapper, n, guest, args):
    if n == 1:
        argv = [wrapper, "--nodes", "1", guest, *args]
    else:
        argv = [wrapper, "--hostfile", sim.hostfile(), "--launcher",
                sim.launcher, "--remote-dqemu", wrapper, guest, *args]
    t0 = time.monotonic()
    p = sim.run_on(0, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   text=True, stdin=subprocess.DEVNULL)
    out, err = p.communicate(timeout=900)
    ms = (time.monotonic() - t0) * 1000
    if p.returncode != 0:
        sys.exit(f"bench: run on {n} nodes failed (status {p.returncode}):\n"
                 f"{err[-3000:]}")
    return ms, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dqemu")
    ap.add_argument("guest")
    ap.add_argument("--nodes", default="1,2,4,8")
    ap.add_argument("--cpu", type=float, default=0.2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--size", type=int, default=12000000)
    a = ap.parse_args()
    counts = [int(x) for x in a.nodes.split(",")]
    args = [str(a.threads), str(a.size)]
    print(f"bench: {os.path.basename(a.guest)} {' '.join(args)} on "
          f"simulated hosts of {a.cpu:g} CPU each, N = {a.nodes}, "
          f"{a.runs} runs each")
    times = {}
    checksum = None
    for n in counts:
        with simcluster.SimCluster(n, cpu=a.cpu) as sim:
            wrapper = sim.wrap(a.dqemu)
            for r in range(a.runs):
                ms, out = run_once(sim, wrapper, n, a.guest, args)
                if checksum is None:
                    checksum = out
                elif out != checksum:
                    sys.exit(f"bench: {n} nodes printed another result:\n"
                             f"{out}\nnot\n{checksum}")
                times.setdefault(n, []).append(ms)
                print(f"bench: N={n} run {r + 1}: {ms:.0f} ms", flush=True)
    base = statistics.median(times[counts[0]])
    print()
    print("| nodes | CPU in all | wall time (median) | speedup |")
    print("|---|---|---|---|")
    for n in counts:
        m = statistics.median(times[n])
        print(f"| {n} | {n * a.cpu:.1f} | {m:.0f} ms | {base / m:.2f}x |")
    print()
    for n in counts:
        m = statistics.median(times[n])
        print(f"bench: cluster_wall_n{n} = {m:.0f} ms")
        print(f"bench: cluster_speedup_n{n} = {base / m:.2f} x")


if __name__ == "__main__":
    main()
