"""How to run and check each PARSEC program the bench builds.

Why a table: the bench (parsec-bench.py) and the smoke test in make test
must agree on a program's command line, its input sizes and what counts as
a right answer.  One entry per program says:

  args(size, threads, inputs)  the guest's arguments; `inputs` is the
                               directory with the size's input files
  prepare(size, inputs, bins)  makes generated inputs (blackscholes) in
                               `inputs`; `bins` holds the built programs
  outputs                      files the run writes in its cwd, compared
  check                        how a run's outputs compare with stock
                               qemu's on the same input and thread count
  threads(nodes)               the thread count at N nodes: 2 per node,
                               or the program's own rule

Sizes: "test" (PARSEC's test input, seconds), "quick" (about 1.5 s of CPU
under stock qemu-arm) and "full" (about 8 s of CPU: 40 s on one 1/5-CPU
node).  A check returns None when the run is right, else a short reason.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Optional


def two_per_node(nodes: int) -> int:
    return 2 * nodes


@dataclass
class Program:
    name: str
    args: Callable[[str, int, str], list]
    check: Callable[[str, str, "Program"], Optional[str]]
    outputs: list = field(default_factory=list)
    prepare: Optional[Callable[[str, str, str], None]] = None
    threads: Callable[[int], int] = two_per_node
    # stdout lines that vary from run to run (timings) and are not compared
    stdout_ignore: Optional[re.Pattern] = None
    # stderr lines that are the program's results (dqemu's own messages
    # share stderr), compared like stdout; None: stderr is not compared
    stderr_keep: Optional[re.Pattern] = None
    # the input directory a size reads: PARSEC's "test" or "simdev"
    input_set: Callable[[str], str] = lambda size: "test" if size == "test" else "simdev"
    # the guest's extra environment at a thread count
    env: Callable[[int], dict] = lambda threads: {}
    # readies a run's own directory (a program that writes into its input)
    setup: Optional[Callable[[str, str], None]] = None
    # run unless the user names the programs; False: only when named (or
    # with "all"): it adds time to a bench that takes an hour already
    default: bool = True


# ---- output comparison -----------------------------------------------------

def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _stdout_lines(run_dir, prog):
    text = _read(os.path.join(run_dir, "stdout")).decode("utf-8", "replace")
    lines = text.splitlines()
    if prog.stdout_ignore is not None:
        lines = [l for l in lines if not prog.stdout_ignore.search(l)]
    return lines


def _first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def _stderr_lines(run_dir, prog):
    if prog.stderr_keep is None:
        return []
    text = _read(os.path.join(run_dir, "stderr")).decode("utf-8", "replace")
    return [l for l in text.splitlines() if prog.stderr_keep.search(l)]


def check_exact(ref_dir, run_dir, prog):
    """Outputs and stdout byte for byte (minus stdout_ignore lines), and
    the result lines of stderr."""
    for stream, lines in (("stdout", _stdout_lines), ("stderr", _stderr_lines)):
        a, b = lines(ref_dir, prog), lines(run_dir, prog)
        if a != b:
            i = _first_difference(a, b)
            got = b[i] if i < len(b) else "<end of output>"
            return "%s line %d differs: %r" % (stream, i + 1, got[:80])
    for name in prog.outputs:
        path = os.path.join(run_dir, name)
        if not os.path.exists(path):
            return "no output file %s" % name
        if _read(os.path.join(ref_dir, name)) != _read(path):
            return "%s differs from stock qemu's" % name
    return None


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)")


def numbers_close(a_text, b_text, rel, abs_tol, what):
    """Same text but for numbers, which agree within rel (relative) or abs_tol."""
    a_words, b_words = NUMBER.split(a_text), NUMBER.split(b_text)
    a_nums, b_nums = NUMBER.findall(a_text), NUMBER.findall(b_text)
    if len(a_nums) != len(b_nums) or a_words != b_words:
        return "%s: other text or number count (%d vs %d numbers)" % (
            what, len(b_nums), len(a_nums))
    for i, (x, y) in enumerate(zip(a_nums, b_nums)):
        fx, fy = float(x), float(y)
        if math.isnan(fx) or math.isnan(fy):
            if math.isnan(fx) != math.isnan(fy):
                return "%s: number %d is %s, stock qemu's %s" % (what, i + 1, y, x)
            continue
        if not math.isclose(fx, fy, rel_tol=rel, abs_tol=abs_tol):
            return "%s: number %d is %s, stock qemu's %s" % (what, i + 1, y, x)
    return None


def check_numbers(rel, abs_tol=0.0):
    """stdout and output files as text whose numbers may differ a little
    (float sums whose order follows the threads)."""
    def check(ref_dir, run_dir, prog):
        a = "\n".join(_stdout_lines(ref_dir, prog))
        b = "\n".join(_stdout_lines(run_dir, prog))
        why = numbers_close(a, b, rel, abs_tol, "stdout")
        if why:
            return why
        for name in prog.outputs:
            path = os.path.join(run_dir, name)
            if not os.path.exists(path):
                return "no output file %s" % name
            why = numbers_close(_read(os.path.join(ref_dir, name)).decode(),
                                _read(path).decode(), rel, abs_tol, name)
            if why:
                return why
        return None
    return check


# ---- blackscholes ----------------------------------------------------------

BLACKSCHOLES_OPTIONS = {"quick": 18000, "full": 100000}


def _blackscholes_prepare(size, inputs, bins):
    if size == "test":
        return
    subprocess.run([os.path.join(bins, "blackscholes-inputgen"),
                    str(BLACKSCHOLES_OPTIONS[size]),
                    os.path.join(inputs, "options.txt")],
                   check=True, stdout=subprocess.DEVNULL)


def _blackscholes_args(size, threads, inputs):
    name = "in_4.txt" if size == "test" else "options.txt"
    return [str(threads), os.path.join(inputs, name), "prices.txt"]


# ---- fluidanimate ---------------------------------------------------------

def _fluid_load(path):
    """A .fluid file: (restParticlesPerMeter, particles as 9-float tuples:
    position, half-step velocity, velocity)."""
    data = _read(path)
    if len(data) < 8:
        raise ValueError("%s: %d bytes, not a .fluid file" % (path, len(data)))
    rest, n = struct.unpack_from("<fi", data, 0)
    if n < 0 or len(data) != 8 + 36 * n:
        raise ValueError("%s: %d bytes for %d particles" % (path, len(data), n))
    return rest, [struct.unpack_from("<9f", data, 8 + 36 * i) for i in range(n)]


def _fluid_summary(particles):
    n = len(particles)
    com = [sum(p[k] for p in particles) / n for k in range(3)]
    vel = [sum(p[k] for p in particles) / n for k in range(6, 9)]
    v2 = sum(p[6] ** 2 + p[7] ** 2 + p[8] ** 2 for p in particles) / n
    return com, vel, v2


# The simulation box (fluid.hpp's domainMin/domainMax), with a little room.
FLUID_BOX = ((-0.066, 0.066), (-0.081, 0.101), (-0.066, 0.066))


def check_fluid(ref_dir, run_dir, prog):
    """Particles come out in an order that follows the threads, and float
    sums differ with it, so a particle-by-particle comparison means
    nothing past one thread.  Compared instead: the header, every value
    finite and inside the box, and the centre of mass, mean velocity and
    mean squared speed against stock qemu's.  Measured: thread order moves
    them by at most 6e-6, 3.4e-4 and 0.4%; one frame more or less moves
    them by 2.5e-4, 0.015 and 0.6%... the bounds sit between."""
    name = prog.outputs[0]
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        return "no output file %s" % name
    try:
        ref_rest, ref = _fluid_load(os.path.join(ref_dir, name))
        rest, got = _fluid_load(path)
    except ValueError as e:
        return str(e)
    if rest != ref_rest or len(got) != len(ref):
        return "%s: header %g/%d, stock qemu's %g/%d" % (
            name, rest, len(got), ref_rest, len(ref))
    for i, p in enumerate(got):
        if not all(math.isfinite(v) for v in p):
            return "%s: particle %d is not finite" % (name, i)
        for axis, (lo, hi) in enumerate(FLUID_BOX):
            if not lo <= p[axis] <= hi:
                return "%s: particle %d outside the box" % (name, i)
    (rc, rv, r2), (gc, gv, g2) = _fluid_summary(ref), _fluid_summary(got)
    for axis in range(3):
        if abs(gc[axis] - rc[axis]) > 5e-5:
            return "%s: centre of mass %g, stock qemu's %g" % (
                name, gc[axis], rc[axis])
        if abs(gv[axis] - rv[axis]) > 2e-3:
            return "%s: mean velocity %g, stock qemu's %g" % (
                name, gv[axis], rv[axis])
    if not math.isclose(g2, r2, rel_tol=0.02):
        return "%s: mean squared speed %g, stock qemu's %g" % (name, g2, r2)
    return None


FLUID_FRAMES = {"test": 1, "quick": 8, "full": 55}


def _fluid_args(size, threads, inputs):
    name = "in_5K.fluid" if size == "test" else "in_15K.fluid"
    return [str(threads), str(FLUID_FRAMES[size]), os.path.join(inputs, name),
            "out.fluid"]


# ---- swaptions, streamcluster, canneal -------------------------------------

SWAPTIONS_ARGS = {"test": ["-ns", "16", "-sm", "160"],
                  "quick": ["-ns", "64", "-sm", "2400"],
                  "full": ["-ns", "64", "-sm", "12800"]}


def _swaptions_args(size, threads, inputs):
    return SWAPTIONS_ARGS[size] + ["-nt", str(threads)]


# k1 k2 dimensions points chunk-size centre-budget
STREAMCLUSTER_ARGS = {"test": ["2", "5", "1", "10", "10", "5"],
                      "quick": ["10", "20", "32", "3200", "3200", "1000"],
                      "full": ["10", "20", "32", "10000", "10000", "1000"]}


def _streamcluster_args(size, threads, inputs):
    return STREAMCLUSTER_ARGS[size] + ["none", "centres.txt", str(threads)]


# swaps per temperature step, start temperature, netlist, steps
CANNEAL_ARGS = {"test": ["10000", "300", "100.nets", "20"],
                "quick": ["60000", "300", "100.nets", "40"],
                "full": ["300000", "300", "100.nets", "40"]}


def _canneal_args(size, threads, inputs):
    swaps, temp, nets, steps = CANNEAL_ARGS[size]
    return [str(threads), swaps, temp, os.path.join(inputs, nets), steps]


# ---- x264, bodytrack, freqmine, dedup -----------------------------------------

# PARSEC's simdev encoder settings; --qp (no rate control) keeps the
# stream the same run after run at a thread count.
X264_OPTIONS = ["--quiet", "--qp", "20", "--partitions", "b8x8,i4x4", "--ref",
                "5", "--direct", "auto", "--b-pyramid", "--weightb",
                "--mixed-refs", "--no-fast-pskip", "--me", "umh", "--subme",
                "7", "--analyse", "b8x8,i4x4"]
# copies of simdev's 3 frames of 64x36 (test: PARSEC's 1 frame)
X264_COPIES = {"quick": 100, "full": 450}


def _x264_prepare(size, inputs, bins):
    if size != "test":
        subprocess.run([os.path.join(bins, "x264-inputgen"),
                        os.path.join(inputs, "eledream_64x36_3.y4m"),
                        str(X264_COPIES[size]), os.path.join(inputs, "clip.y4m")],
                       check=True)


def _x264_args(size, threads, inputs):
    clip = "eledream_32x18_1.y4m" if size == "test" else "clip.y4m"
    return X264_OPTIONS + ["--threads", str(threads), "-o", "eledream.264",
                           os.path.join(inputs, clip)]


# particles, annealing layers (one frame: the inputs have one)
BODYTRACK_ARGS = {"test": ["5", "1"], "quick": ["700", "5"], "full": ["5700", "5"]}


def _bodytrack_setup(run_dir, inputs):
    # It writes poses.txt into the dataset: each run gets its own copy.
    shutil.copytree(os.path.join(inputs, "sequenceB_1"),
                    os.path.join(run_dir, "sequenceB_1"))


def _bodytrack_args(size, threads, inputs):
    particles, layers = BODYTRACK_ARGS[size]
    return ["sequenceB_1", "4", "1", particles, layers, "0", str(threads)]


# copies of simdev's 1000 transactions, minimum support
FREQMINE_ARGS = {"quick": (100, 10), "full": (200, 2)}


def _freqmine_prepare(size, inputs, bins):
    if size != "test":
        subprocess.run([os.path.join(bins, "freqmine-inputgen"),
                        os.path.join(inputs, "T10I4D100K_1k.dat"),
                        str(FREQMINE_ARGS[size][0]),
                        os.path.join(inputs, "transactions.dat")], check=True)


def _freqmine_args(size, threads, inputs):
    if size == "test":
        return [os.path.join(inputs, "T10I4D100K_3.dat"), "1"]
    return [os.path.join(inputs, "transactions.dat"), str(FREQMINE_ARGS[size][1])]


# copies of hamlet.dat (1 MB, 15 ms of CPU a copy under qemu-arm)
DEDUP_COPIES = {"quick": 40, "full": 100}


def _dedup_prepare(size, inputs, bins):
    if size != "test":
        with open(os.path.join(inputs, "hamlet.dat"), "rb") as f:
            text = f.read()
        with open(os.path.join(inputs, "data.dat"), "wb") as f:
            for _ in range(DEDUP_COPIES[size]):
                f.write(text)


def _dedup_args(size, threads, inputs):
    name = "test.dat" if size == "test" else "data.dat"
    return ["-c", "-p", "-v", "-w", "none", "-t", str(threads), "-i",
            os.path.join(inputs, name), "-o", "output.dat.ddp"]


PROGRAMS = {
    # Each option is priced alone: the prices do not depend on the threads.
    "blackscholes": Program("blackscholes", _blackscholes_args, check_exact,
                            outputs=["prices.txt"],
                            prepare=_blackscholes_prepare),
    # Each swaption has its own seed: prices (on stderr) do not depend on
    # the threads, and stdout names the thread count.
    "swaptions": Program("swaptions", _swaptions_args, check_exact,
                         stderr_keep=re.compile(r"^Swaption \d+:")),
    # Generated points (fixed seed); the centres came out identical for
    # 2..16 threads, runs and ISAs, so they are compared exactly.
    "streamcluster": Program("streamcluster", _streamcluster_args, check_exact,
                             outputs=["centres.txt"]),
    # The swaps of the threads interleave: the final routing cost varies
    # by up to 4% between runs (1979-2072 at these sizes); the unannealed
    # placement costs 3443.  8% apart from stock qemu's is wrong.
    "canneal": Program("canneal", _canneal_args, check_numbers(0.08),
                       input_set=lambda size: "simdev"),
    "fluidanimate": Program("fluidanimate", _fluid_args, check_fluid,
                            outputs=["out.fluid"]),
    # A stream per thread count (its SEI names the count), the same run
    # after run; stderr has the frame rate, a timing: not compared.
    "x264": Program("x264", _x264_args, check_exact, outputs=["eledream.264"],
                    prepare=_x264_prepare),
    # The poses came out identical for 1..16 threads.
    "bodytrack": Program("bodytrack", _bodytrack_args, check_exact,
                         outputs=["sequenceB_1/poses.txt"],
                         setup=_bodytrack_setup, default=False),
    # OpenMP; the itemset counts do not depend on the threads.
    "freqmine": Program("freqmine", _freqmine_args, check_exact,
                        env=lambda threads: {"OMP_NUM_THREADS": str(threads)},
                        stdout_ignore=re.compile(r"cost .* seconds"),
                        default=False),
    # -t is per pipeline stage (3 of them run threads): one per node.
    # Without a guest zlib it runs with compression off, and its inputs
    # give only about 1.5 s of work: run only when named.
    "dedup": Program("dedup", _dedup_args, check_exact,
                     outputs=["output.dat.ddp"], prepare=_dedup_prepare,
                     threads=lambda nodes: nodes, default=False),
}

# The programs the issue asks to run; the others run when they build.
REQUIRED = ["blackscholes", "swaptions", "streamcluster", "fluidanimate",
            "canneal", "x264"]
