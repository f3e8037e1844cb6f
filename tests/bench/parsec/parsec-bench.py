#!/usr/bin/env python3
"""PARSEC on dqemu over simulated hosts: speedups, and where the time went.

Why: the one question users of a distributed emulator ask is how much
faster their program gets on N nodes, and if not, why not.  This builds
the PARSEC programs for the guest (build-parsec.sh), then runs each one on
N = 1, 2, 4, 8 simulated hosts (tests/cluster/simcluster.py) of 1/5 of a
CPU each, on links of 1 Gbit/s with 50 us one-way delay, and stock qemu in
one 1/5-CPU host as the single-node reference.  Every run's output is
checked against stock qemu's on the same input and thread count (run once,
untimed, without a quota); a wrong or crashed run is reported, never timed.
Each dqemu run writes --stats-json; its counters give faults per second and
the share of thread time spent waiting for pages and delegated syscalls.

Writes OUT/parsec.md (tables), OUT/parsec-speedup.png,
OUT/parsec-breakdown.png and OUT/parsec.json (every run), prints progress,
the tables and one `bench: parsec_PROG_nN_speedup = X x` line per program
and N.  Never fails on a timing; exits non-zero only when nothing could be
measured (no PARSEC, nothing built, no dqemu).  Run as root.

Settings (flags, or the environment as make bench-parsec passes it):
  --size full|quick|test   BENCH_QUICK=1 means quick: smaller inputs, one
                           run each, N = 1, 2, 4, no --insecure column
  --nodes 1,2,4,8          BENCH_NODES
  --cpu 0.2                BENCH_NODE_CPU (fraction of a CPU per host)
  --link 1gbit/50us        BENCH_LINK: RATE/DELAY, RATE tc syntax or
                           "none", DELAY in us ("50us" or "50")
  --runs 3                 BENCH_RUNS
  --isas arm               BENCH_ISAS (arm,aarch64,riscv64)
  --programs a,b           BENCH_PROGRAMS (default: the six the bench is
                           about; "all" adds bodytrack, freqmine, dedup)
  --timeout S              one run's limit (default: 5x one node's median,
                           3x when quick, at least 30 s); a run past it is stopped and
                           reported, and larger N are not tried
A cell more than 3x slower than one node is run once, not --runs times.
PARSEC comes from PARSEC_DIR or PARSEC_TARBALL (see build-parsec.sh).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOP = HERE.parent.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(TOP / "tests" / "cluster"))
import programs as progtab  # noqa: E402

STOCK = "stock"
DQEMU = "dqemu"
INSECURE = "dqemu-insecure"


def log(msg):
    print("[parsec] " + msg, flush=True)


def clean_reason(text):
    """A reason for a table cell: one line, no pipes, and none of the
    words the table reserves for runs that went wrong."""
    text = " ".join(str(text).split())
    text = re.sub(r"(?i)fail(ed|ure|s)?", "error", text)
    return text.replace("|", "/")[:160]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---- settings --------------------------------------------------------------

def parse_link(text):
    """RATE/DELAY -> (tc rate or None, delay in us)."""
    rate, _, delay = text.partition("/")
    rate = None if rate in ("", "none") else rate
    delay = delay.strip().lower()
    if delay.endswith("us"):
        delay = delay[:-2]
    try:
        delay_us = int(delay or 0)
    except ValueError:
        raise SystemExit("parsec: bad BENCH_LINK %r: want RATE/DELAY, e.g. "
                         "1gbit/50us" % text)
    return rate, delay_us


def settings():
    env = os.environ
    quick = env.get("BENCH_QUICK", "") not in ("", "0")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dqemu-dir", required=True,
                    help="directory with dqemu-ISA binaries (build/)")
    ap.add_argument("--out", default=None, help="default DQEMU_DIR/bench")
    ap.add_argument("--stock-dir", default=env.get("STOCK_QEMU_DIR", "/usr/bin"))
    ap.add_argument("--size", choices=["full", "quick", "test"],
                    default="quick" if quick else "full")
    ap.add_argument("--nodes", default=env.get("BENCH_NODES",
                                               "1,2,4" if quick else "1,2,4,8"))
    ap.add_argument("--cpu", type=float,
                    default=float(env.get("BENCH_NODE_CPU", "0.2")))
    ap.add_argument("--service-cpu", default=env.get("BENCH_SERVICE_CPU", "same"),
                    help="quota of dqemu's service threads, apart from the "
                         "guest threads' (same: --cpu; none: one cgroup)")
    ap.add_argument("--link", default=env.get("BENCH_LINK", "1gbit/50us"))
    ap.add_argument("--runs", type=int,
                    default=int(env.get("BENCH_RUNS", "1" if quick else "3")))
    ap.add_argument("--isas", default=env.get("BENCH_ISAS", "arm"))
    ap.add_argument("--programs", default=env.get("BENCH_PROGRAMS", ""))
    ap.add_argument("--insecure", choices=["yes", "no"],
                    default="no" if quick else "yes",
                    help="the extra --insecure column at the largest N")
    ap.add_argument("--timeout", type=float, default=None)
    ap.add_argument("--render", action="store_true",
                    help="only redo the tables and plots of OUT/parsec.json")
    a = ap.parse_args()
    try:
        a.node_counts = sorted({int(x) for x in a.nodes.split(",") if x})
    except ValueError:
        ap.error("--nodes/BENCH_NODES: a comma-separated list of numbers, "
                 "not %r" % a.nodes)
    if not a.node_counts or a.node_counts[0] < 1 or a.node_counts[-1] > 64:
        ap.error("--nodes/BENCH_NODES: node counts from 1 to 64")
    if 1 not in a.node_counts:
        a.node_counts.insert(0, 1)   # speedups are over one node
    if not 0 < a.cpu <= 64:
        ap.error("--cpu/BENCH_NODE_CPU: a positive fraction of a CPU")
    if a.runs < 1:
        ap.error("--runs/BENCH_RUNS: at least 1")
    a.rate, a.delay_us = parse_link(a.link)
    if a.service_cpu == "same":
        a.service_cpu = a.cpu
    elif a.service_cpu in ("none", "0", ""):
        a.service_cpu = None
    else:
        try:
            a.service_cpu = float(a.service_cpu)
        except ValueError:
            ap.error("--service-cpu/BENCH_SERVICE_CPU: same, none or a fraction "
                     "of a CPU, not %r" % a.service_cpu)
    a.isa_list = [x for x in a.isas.split(",") if x]
    for isa in a.isa_list:
        if isa not in ("arm", "aarch64", "riscv64"):
            ap.error("--isas/BENCH_ISAS: arm, aarch64 or riscv64, not %r" % isa)
    a.program_list = [x for x in a.programs.split(",") if x]
    for p in a.program_list:
        if p not in progtab.PROGRAMS and a.program_list != ["all"]:
            ap.error("--programs/BENCH_PROGRAMS: no program %r (have %s)" %
                     (p, ", ".join(sorted(progtab.PROGRAMS))))
    a.dqemu_dir = os.path.abspath(a.dqemu_dir)
    a.out = os.path.abspath(a.out or os.path.join(a.dqemu_dir, "bench"))
    return a


# ---- building and inputs ---------------------------------------------------

def build(a, isa):
    """Build the programs; return ({name: binary}, {name: reason})."""
    work = os.path.join(a.out, "parsec-build")
    names = a.program_list or sorted(n for n, p in progtab.PROGRAMS.items()
                                     if p.default)
    if names == ["all"]:
        names = sorted(progtab.PROGRAMS)
    log("building %s for %s (log: %s/%s/NAME.log)" %
        (", ".join(names), isa, work, isa))
    p = subprocess.run(["sh", str(HERE / "build-parsec.sh"), isa, work] + names)
    built, skipped = {}, {}
    for name in names:
        binary = os.path.join(work, isa, "bin", name)
        fail = os.path.join(work, isa, name + ".fail")
        if os.path.exists(fail):
            with open(fail) as f:
                skipped[name] = f.read().strip()
        elif os.access(binary, os.X_OK):
            built[name] = binary
        else:
            skipped[name] = "not built (build-parsec.sh exit %d)" % p.returncode
    return built, skipped


def prepare_inputs(a, isa, prog, binary):
    """The input directory of a program at a.size: a copy of PARSEC's
    input set, and whatever prepare() generates."""
    work = os.path.join(a.out, "parsec-build")
    src = os.path.join(work, "inputs", prog.name, prog.input_set(a.size))
    dest = os.path.join(a.out, "parsec-inputs", isa, prog.name, a.size)
    stamp = os.path.join(dest, ".ready")
    if os.path.exists(stamp):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    if os.path.isdir(src):
        # Copies, not links: dedup opens its input with O_NOFOLLOW, and
        # PARSEC's input sets are a few MB at most.
        for entry in os.listdir(src):
            if entry.startswith("."):
                continue
            if os.path.isdir(os.path.join(src, entry)):
                shutil.copytree(os.path.join(src, entry), os.path.join(dest, entry))
            else:
                shutil.copy2(os.path.join(src, entry), os.path.join(dest, entry))
    if prog.prepare:
        prog.prepare(a.size, dest, os.path.dirname(binary))
    Path(stamp).touch()
    return dest


# ---- one run -----------------------------------------------------------------

class Run:
    """What one run did: wall seconds, or the reason it went wrong."""

    def __init__(self, config, nodes, threads, k):
        self.config, self.nodes, self.threads, self.k = config, nodes, threads, k
        self.seconds = None
        self.error = None
        self.timed_out = False
        self.stats = None

    def to_json(self):
        return {"config": self.config, "nodes": self.nodes,
                "threads": self.threads, "run": self.k,
                "seconds": self.seconds, "error": self.error,
                "stats": self.stats}


def execute(argv, cwd, timeout, popen, env):
    """Run argv in cwd with stdout/stderr to files; (status, seconds) or
    (None, timeout) when it had to be stopped."""
    with open(os.path.join(cwd, "stdout"), "wb") as out, \
            open(os.path.join(cwd, "stderr"), "wb") as err:
        t0 = time.monotonic()
        p = popen(argv, cwd=cwd, stdout=out, stderr=err, env=env,
                  stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            status = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Ours by pid: the master; its launched workers end with it.
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            return None, timeout
        return status, time.monotonic() - t0


def last_stderr_line(run_dir):
    try:
        with open(os.path.join(run_dir, "stderr"), errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def reference(a, isa, prog, binary, inputs, threads):
    """Stock qemu's outputs for this input and thread count (cached)."""
    args = prog.args(a.size, threads, inputs)
    stock = os.path.join(a.stock_dir, "qemu-" + isa)
    key = hashlib.sha256(json.dumps([sha256_file(binary), args,
                                     sha256_file(stock)]).encode()).hexdigest()
    d = os.path.join(a.out, "parsec-ref", isa, prog.name, "%s-t%d" % (a.size, threads))
    stamp = os.path.join(d, ".key")
    if os.path.exists(stamp) and open(stamp).read() == key:
        return d, None
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    log("%s: reference output from stock qemu-%s, %d threads" %
        (prog.name, isa, threads))
    if prog.setup:
        prog.setup(d, inputs)
    status, secs = execute([stock, binary] + args, d, 3600, subprocess.Popen,
                           dict(os.environ, **prog.env(threads)))
    if status != 0:
        return None, ("stock qemu-%s itself exits with %s: %s" %
                      (isa, status, last_stderr_line(d)))
    with open(stamp, "w") as f:
        f.write(key)
    return d, None


def summarize_stats(path, seconds):
    """The figures the tables need from a --stats-json document."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    totals = doc.get("totals", {})
    st, dsm = totals.get("stats", {}), totals.get("dsm", {})
    faults = sum(dsm.get(k, 0) for k in ("read_faults", "write_faults",
                                         "upgrade_faults"))
    thread_ns = st.get("thread_ns", 0)

    def share(ns):
        return ns / thread_ns if thread_ns else None
    return {
        "faults": faults,
        "faults_per_s": faults / seconds if seconds else None,
        "fault_share": share(dsm.get("fault_ns", 0)),
        "syscall_share": share(st.get("delegated_wait_ns", 0)),
        "atomic_share": share(st.get("atomic_step_ns", 0) +
                              st.get("atomic_pause_ns", 0)),
        "bytes": dsm.get("bytes_sent", 0),
        "messages": dsm.get("msgs_sent", 0),
        "delegated": st.get("syscalls_delegated", 0),
        "thread_ns": thread_ns,
        "nodes": doc.get("nodes"),
    }


def one_run(a, sim, isa, prog, binary, inputs, run, ref_dir, timeout):
    run_dir = os.path.join(a.out, "parsec-runs", isa, prog.name,
                           "%s-n%d-r%d" % (run.config, run.nodes, run.k))
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    args = prog.args(a.size, run.threads, inputs)
    stats_path = os.path.join(run_dir, "stats.json")
    if run.config == STOCK:
        argv = [sim.wrap(os.path.join(a.stock_dir, "qemu-" + isa)), binary]
    else:
        wrapper = sim.wrap(os.path.join(a.dqemu_dir, "dqemu-" + isa))
        if run.nodes == 1:
            argv = [wrapper, "--nodes", "1"]
        else:
            argv = [wrapper, "--hostfile", sim.hostfile(), "--launcher",
                    sim.launcher, "--remote-dqemu", wrapper]
        if run.config == INSECURE:
            argv.append("--insecure")
        argv += ["--stats-json", stats_path, binary]
    argv += args

    def popen(argv, **kw):
        return sim.run_on(0, argv, **kw)
    if prog.setup:
        prog.setup(run_dir, inputs)
    status, secs = execute(argv, run_dir, timeout, popen,
                           dict(os.environ, **prog.env(run.threads)))
    where = "N=%d" % run.nodes
    if status is None:
        run.timed_out = True
        run.error = "%s: no result after %.0f s%s" % (
            where, secs, "" if a.timeout else
            " (%dx one node's time)" % limit_factor(a))
    elif status != 0:
        run.error = "%s: exit status %d: %s" % (where, status,
                                                last_stderr_line(run_dir))
    else:
        why = prog.check(ref_dir, run_dir, prog)
        if why:
            run.error = "%s: wrong output: %s" % (where, why)
        else:
            run.seconds = secs
    if run.error is None and run.config != STOCK:
        run.stats = summarize_stats(stats_path, secs)
    return run


# ---- the bench ---------------------------------------------------------------

def configs(a):
    out = [(STOCK, 1)] + [(DQEMU, n) for n in a.node_counts]
    if a.insecure == "yes" and a.node_counts[-1] > 1:
        out.append((INSECURE, a.node_counts[-1]))
    return out


def run_program(a, isa, prog, binary, started, results):
    import simcluster
    inputs = prepare_inputs(a, isa, prog, binary)
    refs = {}
    cells = results.setdefault(prog.name, {})
    over_limit = None      # the node count that ran out of time
    for config, n in configs(a):
        threads = prog.threads(1 if config == STOCK else n)
        runs = cells.setdefault((config, n), [])
        if over_limit is not None and n > over_limit:
            r = Run(config, n, threads, 1)
            r.error = ("N=%d: not run, N=%d already ran out of time" %
                       (n, over_limit))
            runs.append(r)
            log("%s %s N=%d: %s" % (prog.name, config, n, r.error))
            continue
        if threads not in refs:
            refs[threads] = reference(a, isa, prog, binary, inputs, threads)
        ref_dir, ref_error = refs[threads]
        if ref_error:
            r = Run(config, n, threads, 1)
            r.error = "N=%d: %s" % (n, ref_error)
            runs.append(r)
            log("%s %s N=%d: %s" % (prog.name, config, n, r.error))
            continue
        try:
            sim = simcluster.SimCluster(
                n, cpu=a.cpu, rate=a.rate,
                delay_us=0 if config == STOCK else a.delay_us,
                service_cpu=None if config == STOCK else a.service_cpu)
        except Exception as e:   # a host that cannot be made is this cell's
            r = Run(config, n, threads, 1)
            r.error = "N=%d: simulated cluster: %s" % (n, e)
            runs.append(r)
            log("%s %s N=%d: %s" % (prog.name, config, n, r.error))
            continue
        with sim:
            for k in range(1, a.runs + 1):
                limit = a.timeout or run_limit(a, cells, config, n)
                log("%s %s N=%d (%d threads): run %d of %d ... (elapsed %s)" %
                    (prog.name, config, n, threads, k, a.runs,
                     elapsed(started)))
                r = one_run(a, sim, isa, prog, binary, inputs,
                            Run(config, n, threads, k), ref_dir, limit)
                runs.append(r)
                if r.error:
                    log("%s %s N=%d: run %d: %s" % (prog.name, config, n, k,
                                                    r.error))
                    if r.timed_out and config != STOCK and n > 1:
                        over_limit = n    # more nodes would not be faster
                    break     # the same setup will not do better: next N
                log("%s %s N=%d: run %d: %.1f s" % (prog.name, config, n, k,
                                                   r.seconds))
                if k == 1 and a.runs > 1 and too_slow_to_repeat(cells, r):
                    log("%s %s N=%d: over %dx one node's time: run once" %
                        (prog.name, config, n, SLOW_FACTOR))
                    break


# A cell this many times slower than one node is run once: its median
# would tell nothing more, and three runs of it can take an hour.
SLOW_FACTOR = 3


def too_slow_to_repeat(cells, run):
    if run.config == STOCK or run.nodes == 1:
        return False
    one = [r.seconds for r in cells.get((DQEMU, 1), []) if r.seconds]
    return bool(one) and run.seconds > SLOW_FACTOR * statistics.median(one)


# A run more than this many times slower than one node (3 in a quick
# bench) is stopped and reported; the references themselves (stock, one
# node) get 30 minutes.
LIMIT_FACTOR = 5
LIMIT_FLOOR_S = 30.0


def limit_factor(a):
    # BENCH_QUICK must stay under 10 minutes.
    return 3 if a.size == "quick" else LIMIT_FACTOR


def run_limit(a, cells, config, n):
    one = [r.seconds for r in cells.get((DQEMU, 1), []) if r.seconds]
    if config == STOCK or n == 1 or not one:
        return 1800.0
    return max(LIMIT_FLOOR_S, limit_factor(a) * statistics.median(one))


def elapsed(started):
    s = int(time.monotonic() - started)
    return "%dm%02ds" % (s // 60, s % 60)


# ---- figures -------------------------------------------------------------------

def cell(runs):
    """(median seconds, stats of the median run, error) of one config."""
    errors = [r.error for r in runs if r.error]
    if errors:
        return None, None, errors[0]
    if not runs:
        return None, None, "not run"
    ok = sorted(runs, key=lambda r: r.seconds)
    med = statistics.median(r.seconds for r in ok)
    mid = ok[len(ok) // 2]
    return med, mid.stats, None


def figures(a, results):
    """Per program and config: time, speedups, efficiency, shares."""
    table = {}
    for name, cells in results.items():
        rows = []
        stock_t, _, stock_err = cell(cells.get((STOCK, 1), []))
        one_t, _, _ = cell(cells.get((DQEMU, 1), []))
        for (config, n), runs in cells.items():
            t, st, err = cell(runs)
            row = {"config": config, "nodes": n,
                   "threads": runs[0].threads if runs else None,
                   "seconds": t, "error": err,
                   "runs": [r.seconds for r in runs if r.seconds]}
            if t:
                row["vs_one"] = one_t / t if one_t and config != STOCK else None
                row["vs_stock"] = stock_t / t if stock_t else None
                row["efficiency"] = (row["vs_one"] / n
                                     if row["vs_one"] and config == DQEMU else None)
                row["stats"] = st
            rows.append(row)
        table[name] = rows
    return table


def time_shares(row):
    """The threads' time at one cell: waiting for pages, for delegated
    calls, and what is left (running, or waiting for locks and CPU)."""
    st = row.get("stats") or {}
    if st.get("fault_share") is None:
        return ""
    return "pages %s, syscalls %s, atomics %s" % (
        pct(st["fault_share"]), pct(st.get("syscall_share")),
        pct(st.get("atomic_share")))


def fmt(v, spec, unit=""):
    return "" if v is None else format(v, spec) + unit


def pct(v):
    return "" if v is None else "%.1f%%" % (100 * v)


def config_label(config, n, isa):
    if config == STOCK:
        return "stock qemu-%s" % isa
    if config == INSECURE:
        return "dqemu N=%d --insecure" % n
    return "dqemu N=%d" % n


def markdown(a, isa, table, skipped, arguments, started_at):
    L = []
    L.append("# PARSEC on dqemu-%s over simulated hosts" % isa)
    L.append("")
    L.append("Measured %s on %s (%s, %d CPUs). Each host: %g CPU for guest "
             "threads, %s for dqemu's service threads, link %s, %s us one-way "
             "delay. Size `%s`, %d run(s) per cell, median. Threads: 2 per "
             "node unless the program says otherwise; stock qemu runs the "
             "1-node count in one host. Made by `make bench-parsec` "
             "(docs/parsec.md)."
             % (started_at, platform.node(), platform.machine(),
                os.cpu_count(), a.cpu,
                "%g CPU apart" % a.service_cpu if a.service_cpu else "the same",
                a.rate or "unlimited", a.delay_us, a.size, a.runs))
    L.append("")
    L.append("Speedup is over dqemu on one node (same program, same input); "
             "\"vs stock\" is over stock qemu in one host. Fault share and "
             "syscall share: time threads waited for remote pages and for "
             "delegated system calls, over the threads' summed lifetime.")
    L.append("")
    counts = [n for n in a.node_counts if n > 1]
    L.append("## Speedup over one node")
    L.append("")
    L.append("| program | " + " | ".join("N=%d" % n for n in counts) +
             " | where the time went at the largest N measured |")
    L.append("|---|" + "---|" * len(counts) + "---|")
    for name, rows in sorted(table.items()):
        by = {(r["config"], r["nodes"]): r for r in rows}
        cells = []
        where = ""
        for n in counts:
            r = by.get((DQEMU, n))
            if r is None:
                cells.append("")
            elif r["error"]:
                cells.append("FAIL")
            else:
                cells.append(fmt(r.get("vs_one"), ".2f", "x"))
                where = time_shares(r)
        L.append("| %s | %s | %s |" % (name, " | ".join(cells), where))
    for name in sorted(skipped):
        L.append("| %s | %s | |" % (name, " | ".join(
            ["not built"] * len(counts))))
    L.append("")
    curve = [(name, {(r["config"], r["nodes"]): r for r in rows})
             for name, rows in sorted(table.items())]
    top = a.node_counts[-1]
    curve = [(name, by[(DQEMU, top)], by[(INSECURE, top)]) for name, by in curve
             if (INSECURE, top) in by and (DQEMU, top) in by]
    if curve:
        L.append("## What encryption costs at N=%d" % top)
        L.append("")
        L.append("| program | CURVE (default) | --insecure | CURVE time / insecure time |")
        L.append("|---|---|---|---|")
        for name, sec, ins in curve:
            if sec["error"] or ins["error"]:
                L.append("| %s | %s | %s | FAIL |" % (
                    name, "FAIL" if sec["error"] else "%.1f s" % sec["seconds"],
                    "FAIL" if ins["error"] else "%.1f s" % ins["seconds"]))
            else:
                L.append("| %s | %.1f s | %.1f s | %.2f |" % (
                    name, sec["seconds"], ins["seconds"],
                    sec["seconds"] / ins["seconds"]))
        L.append("")
    for name, rows in sorted(table.items()):
        L.append("## %s" % name)
        L.append("")
        L.append("Arguments: `%s`" % " ".join(arguments.get(name, [])))
        L.append("")
        L.append("| run | threads | time | vs 1 node | vs stock | efficiency "
                 "| faults/s | fault share | syscall share | atomics share "
                 "| runs (s) |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            label = config_label(r["config"], r["nodes"], isa)
            if r["error"]:
                bad = "FAIL (%s)" % clean_reason(r["error"])
                L.append("| %s | %s | %s |%s" % (
                    label, r["threads"], bad, " FAIL |" * 8))
                continue
            st = r.get("stats") or {}
            L.append("| %s | %d | %.1f s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label, r["threads"], r["seconds"],
                fmt(r.get("vs_one"), ".2f", "x"),
                fmt(r.get("vs_stock"), ".2f", "x"),
                pct(r.get("efficiency")),
                fmt(st.get("faults_per_s"), ".0f"),
                pct(st.get("fault_share")), pct(st.get("syscall_share")),
                pct(st.get("atomic_share")),
                " ".join("%.1f" % s for s in r["runs"])))
        L.append("")
    if skipped:
        L.append("## Not built")
        L.append("")
        for name, why in sorted(skipped.items()):
            L.append("- %s: %s" % (name, clean_reason(why)))
        L.append("")
    return "\n".join(L)


def plots(a, table, out_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("python3-matplotlib is missing: run 'make deps' as root; no plots")
        return []
    counts = a.node_counts
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot(counts, counts, "k--", label="ideal")
    for name, rows in sorted(table.items()):
        pts = [(r["nodes"], r["vs_one"]) for r in rows
               if r["config"] == DQEMU and not r["error"] and r.get("vs_one")]
        if pts:
            ax.plot(*zip(*sorted(pts)), marker="o", label=name)
    ax.set_xlabel("nodes (%g CPU each)" % a.cpu)
    ax.set_ylabel("speedup over 1 node")
    ax.set_xticks(counts)
    ax.set_title("PARSEC on dqemu: speedup vs nodes")
    ax.grid(True, alpha=0.3)
    ax.legend()
    speedup = os.path.join(out_dir, "parsec-speedup.png")
    fig.savefig(speedup, dpi=100, bbox_inches="tight")
    plt.close(fig)

    names = sorted(table)
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * len(names) * len(counts)), 5))
    width = 0.8 / max(1, len(counts))
    parts = [("fault_share", "waiting for pages", "tab:red"),
             ("syscall_share", "waiting for delegated syscalls", "tab:orange"),
             ("atomic_share", "atomic steps", "tab:purple")]
    rest_label = "the rest: running, or waiting for CPU or locks"
    labelled = set()
    ticks, ticklabels = [], []
    for i, name in enumerate(names):
        by = {(r["config"], r["nodes"]): r for r in table[name]}
        ax.text(i, -0.09, name, ha="center", va="top", fontsize=8,
                transform=ax.get_xaxis_transform())
        for j, n in enumerate(counts):
            x = i + (j - (len(counts) - 1) / 2) * width
            ticks.append(x)
            ticklabels.append(str(n))
            r = by.get((DQEMU, n))
            st = (r or {}).get("stats") or {}
            if not r or r["error"] or not st:
                ax.text(x, 0.02, "x", ha="center", color="black")
                continue
            bottom = 0.0
            for key, label, color in parts:
                v = min(1.0, st.get(key) or 0.0)
                ax.bar(x, v, width, bottom=bottom, color=color,
                       label=None if label in labelled else label)
                labelled.add(label)
                bottom += v
            ax.bar(x, max(0.0, 1.0 - bottom), width, bottom=bottom,
                   color="tab:green", alpha=0.5,
                   label=None if rest_label in labelled else rest_label)
            labelled.add(rest_label)
    ax.set_xticks(ticks)
    ax.set_xticklabels(ticklabels, fontsize=7)
    ax.set_xlabel("nodes, per program (x: no result)", labelpad=24)
    ax.set_ylabel("share of the threads' time")
    ax.set_ylim(0, 1)
    ax.set_title("PARSEC on dqemu: where the threads' time went")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
    breakdown = os.path.join(out_dir, "parsec-breakdown.png")
    fig.savefig(breakdown, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [speedup, breakdown]


def report(a, isa, table, skipped, arguments, started_at):
    """Write parsec[-ISA].md and the plots, print the tables and the
    bench: lines; the number of speedups measured."""
    suffix = "" if isa == "arm" else "-" + isa
    md = markdown(a, isa, table, skipped, arguments, started_at)
    md_path = os.path.join(a.out, "parsec%s.md" % suffix)
    with open(md_path, "w") as f:
        f.write(md + "\n")
    pngs = plots(a, table, a.out) if isa == "arm" else []
    print()
    print(md)
    print()
    measured = 0
    for name, rows in sorted(table.items()):
        for r in rows:
            if r["config"] == DQEMU and r.get("vs_one") and not r["error"]:
                measured += 1
                tag = name if isa == "arm" else "%s_%s" % (name, isa)
                print("bench: parsec_%s_n%d_speedup = %.2f x" %
                      (tag, r["nodes"], r["vs_one"]))
    log("wrote %s%s" % (md_path, "".join(", " + p for p in pngs)))
    return measured


def render_again(a):
    """--render: the tables and plots of an earlier run's parsec.json,
    with the settings given again on the command line."""
    path = os.path.join(a.out, "parsec.json")
    try:
        with open(path) as f:
            docs = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("parsec: cannot read %s: %s" % (path, e))
    when = datetime.datetime.fromtimestamp(os.path.getmtime(path))
    for doc in docs:
        a.size = doc.get("size", a.size)
        st = doc.get("settings", {})
        a.cpu, a.service_cpu = st.get("cpu", a.cpu), st.get("service_cpu", a.service_cpu)
        a.rate, a.delay_us = st.get("rate", a.rate), st.get("delay_us", a.delay_us)
        a.runs, a.node_counts = st.get("runs", a.runs), st.get("nodes", a.node_counts)
        started_at = doc.get("measured", when.strftime("%Y-%m-%d %H:%M"))
        arguments = {n: progtab.PROGRAMS[n].args(a.size, 2, "INPUTS")
                     for n in doc["table"] if n in progtab.PROGRAMS}
        report(a, doc["isa"], doc["table"], doc["skipped"], arguments,
               started_at)


def main():
    a = settings()
    if a.render:
        render_again(a)
        return
    if os.geteuid() != 0:
        sys.exit("parsec: the simulated cluster needs root")
    os.makedirs(a.out, exist_ok=True)
    started = time.monotonic()
    started_at = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    measured = 0
    docs = []
    for isa in a.isa_list:
        dq = os.path.join(a.dqemu_dir, "dqemu-" + isa)
        stock = os.path.join(a.stock_dir, "qemu-" + isa)
        for path, what in ((dq, "dqemu"), (stock, "stock qemu")):
            if not os.access(path, os.X_OK):
                sys.exit("parsec: %s %s not found (run make, and make deps "
                         "as root)" % (what, path))
        built, skipped = build(a, isa)
        if not built:
            log("nothing built for %s" % isa)
            continue
        results, arguments = {}, {}
        for name in sorted(built):
            prog = progtab.PROGRAMS[name]
            arguments[name] = prog.args(a.size, 2, "INPUTS")
            run_program(a, isa, prog, built[name], started, results)
        table = figures(a, results)
        docs.append({"isa": isa, "size": a.size, "measured": started_at,
                     "settings": {"cpu": a.cpu, "service_cpu": a.service_cpu,
                                  "rate": a.rate, "delay_us": a.delay_us,
                                  "runs": a.runs, "nodes": a.node_counts},
                     "table": table, "skipped": skipped,
                     "runs": {n: [r.to_json() for runs in c.values() for r in runs]
                              for n, c in results.items()}})
        measured += report(a, isa, table, skipped, arguments, started_at)
    with open(os.path.join(a.out, "parsec.json"), "w") as f:
        json.dump(docs, f, indent=1, default=str)
    log("done in %s" % elapsed(started))
    if measured == 0:
        sys.exit("parsec: no program could be measured")


if __name__ == "__main__":
    main()
