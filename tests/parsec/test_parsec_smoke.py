"""The PARSEC bench's harness, end to end, on one small program.

make bench-parsec takes an hour; this runs the same harness on
blackscholes' PARSEC test input at N = 1 and 2 simulated hosts: it builds
the program from the PARSEC tarball, runs stock qemu and dqemu, checks the
output, reads --stats-json and writes the tables and plots.  The test then
checks those files itself: the guest's output against stock qemu-arm's,
the JSON's shape and counts, the table free of FAIL.  No timing is
asserted.  Also: a wrong output is caught, a missing PARSEC tree and a
program that does not build are reported by name.

Needs root (simulated hosts) and the PARSEC tarball: PARSEC_TARBALL, or
../shared/parsec/parsec-3.0-subset.tar.xz next to the project.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BENCH = REPO / "tests" / "bench" / "parsec"
BUILD = Path(os.environ.get("DQEMU_BUILD_DIR") or REPO / "build").absolute()
STOCK_QEMU = os.environ.get("STOCK_QEMU_DIR", "/usr/bin")
OUT = BUILD / "parsec-smoke"
PYTHON = sys.executable
sys.path.insert(0, str(BENCH))
import programs  # noqa: E402


def tarball():
    candidates = [os.environ.get("PARSEC_TARBALL"),
                  str(REPO.parent / "shared" / "parsec" / "parsec-3.0-subset.tar.xz")]
    for c in candidates:
        if c and os.path.isfile(c):
            return c
    pytest.skip("no PARSEC tarball (tried %s): set PARSEC_TARBALL"
                % ", ".join(c for c in candidates if c))


@pytest.fixture(scope="module")
def harness_run():
    """One run of parsec-bench.py on blackscholes' test input, N = 1, 2."""
    if os.geteuid() != 0:
        pytest.fail("the simulated cluster needs root")
    env = dict(os.environ, PARSEC_TARBALL=tarball())
    for var in ("BENCH_QUICK", "BENCH_NODES", "BENCH_PROGRAMS", "PARSEC_DIR"):
        env.pop(var, None)
    for stale in ("parsec-runs", "parsec.md", "parsec.json",
                  "parsec-speedup.png", "parsec-breakdown.png"):
        p = OUT / stale
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    r = subprocess.run(
        [PYTHON, str(BENCH / "parsec-bench.py"), "--dqemu-dir", str(BUILD),
         "--out", str(OUT), "--stock-dir", STOCK_QEMU, "--size", "test",
         "--nodes", "1,2", "--runs", "1", "--programs", "blackscholes",
         "--insecure", "no", "--timeout", "300"],
        capture_output=True, text=True, env=env, timeout=1200,
        stdin=subprocess.DEVNULL)
    return r


def test_harness_runs_and_reports(harness_run):
    r = harness_run
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    md = (OUT / "parsec.md").read_text()
    assert "FAIL" not in md, md
    assert "| blackscholes |" in md
    assert "| dqemu N=2 | 4 |" in md
    assert "bench: parsec_blackscholes_n2_speedup = " in r.stdout
    for png in ("parsec-speedup.png", "parsec-breakdown.png"):
        with open(OUT / png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", png


def stock_prices(threads, tmp_path):
    """blackscholes run here under stock qemu-arm, not through the harness."""
    binary = OUT / "parsec-build" / "arm" / "bin" / "blackscholes"
    inp = OUT / "parsec-build" / "inputs" / "blackscholes" / "test" / "in_4.txt"
    d = tmp_path / ("stock-t%d" % threads)
    d.mkdir()
    r = subprocess.run([f"{STOCK_QEMU}/qemu-arm", str(binary), str(threads),
                        str(inp), "prices.txt"], cwd=d, capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return (d / "prices.txt").read_text(), r.stdout


@pytest.mark.parametrize("nodes", [1, 2])
def test_guest_output_matches_stock_qemu(harness_run, nodes, tmp_path):
    assert harness_run.returncode == 0, harness_run.stderr[-2000:]
    run = OUT / "parsec-runs" / "arm" / "blackscholes" / f"dqemu-n{nodes}-r1"
    prices, stdout = stock_prices(2 * nodes, tmp_path)
    assert (run / "prices.txt").read_text() == prices
    assert (run / "stdout").read_text() == stdout
    assert len(prices.splitlines()) == 5      # the count, then 4 prices


@pytest.mark.parametrize("nodes", [1, 2])
def test_stats_json_shape(harness_run, nodes):
    assert harness_run.returncode == 0, harness_run.stderr[-2000:]
    run = OUT / "parsec-runs" / "arm" / "blackscholes" / f"dqemu-n{nodes}-r1"
    doc = json.loads((run / "stats.json").read_text())
    assert doc["nodes"] == nodes
    assert len(doc["per_node"]) == nodes
    assert [n["node"] for n in doc["per_node"]] == list(range(nodes))
    for part in ("stats", "dsm"):
        for name, total in doc["totals"][part].items():
            if isinstance(total, (int, float)):
                assert total == sum(n[part][name] for n in doc["per_node"]), name
    stats = doc["totals"]["stats"]
    # The main thread and blackscholes' 2 per node.
    assert stats["threads_run"] == 2 * nodes + 1
    assert stats["thread_ns"] > 0 and doc["wall_time_ns"] > 0
    if nodes > 1:
        assert doc["per_node"][1]["stats"]["threads_run"] > 0
        dsm = doc["totals"]["dsm"]
        assert dsm["read_faults"] + dsm["write_faults"] + dsm["upgrade_faults"] > 0


def test_wrong_output_is_caught(harness_run, tmp_path):
    assert harness_run.returncode == 0, harness_run.stderr[-2000:]
    prog = programs.PROGRAMS["blackscholes"]
    good = OUT / "parsec-runs" / "arm" / "blackscholes" / "dqemu-n2-r1"
    ref = OUT / "parsec-ref" / "arm" / "blackscholes" / "test-t4"
    assert prog.check(str(ref), str(good), prog) is None
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    text = (bad / "prices.txt").read_text().splitlines()
    text[2] = text[2][:-1] + ("1" if text[2][-1] != "1" else "2")
    (bad / "prices.txt").write_text("\n".join(text) + "\n")
    assert "prices.txt differs" in prog.check(str(ref), str(bad), prog)
    (bad / "prices.txt").unlink()
    assert "no output file prices.txt" in prog.check(str(ref), str(bad), prog)


def test_numbers_within_tolerance():
    assert programs.numbers_close("cost 100.0 x", "cost 100.4 x", 0.01, 0, "t") is None
    assert "number 1" in programs.numbers_close("cost 100.0", "cost 103", 0.01, 0, "t")
    assert "other text" in programs.numbers_close("cost 1", "price 1", 0.01, 0, "t")


def test_missing_parsec_is_named(tmp_path):
    missing = tmp_path / "nowhere.tar.xz"
    r = subprocess.run(["sh", str(BENCH / "build-parsec.sh"), "arm",
                        str(tmp_path / "out"), "blackscholes"],
                       env=dict(os.environ, PARSEC_TARBALL=str(missing)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert str(missing) in r.stderr and "PARSEC_DIR" in r.stderr
    r = subprocess.run(["sh", str(BENCH / "build-parsec.sh"), "arm",
                        str(tmp_path / "out"), "blackscholes"],
                       env=dict(os.environ, PARSEC_DIR=str(tmp_path)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "not a PARSEC tree" in r.stderr and str(tmp_path) in r.stderr


def test_program_that_does_not_build_is_skipped(harness_run, tmp_path):
    """A user's tree where blackscholes is broken: reported with the
    compiler's reason, not a crash of the harness."""
    tree = tmp_path / "parsec-3.0"
    src = OUT / "parsec-build" / "parsec-3.0" / "pkgs" / "apps" / "blackscholes"
    shutil.copytree(src, tree / "pkgs" / "apps" / "blackscholes")
    (tree / "pkgs" / "apps" / "blackscholes" / "src" / "blackscholes.c").write_text(
        "this is not C\n")
    out = tmp_path / "out"
    r = subprocess.run(["sh", str(BENCH / "build-parsec.sh"), "arm", str(out),
                        "blackscholes"], env=dict(os.environ, PARSEC_DIR=str(tree)),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "blackscholes: skipped: build failed" in r.stderr
    assert "no PARSEC program built for arm" in r.stderr
    reason = (out / "arm" / "blackscholes.fail").read_text()
    assert "this is not C" in reason or "error" in reason, reason
