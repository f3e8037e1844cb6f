"""One node process of a host-only cluster test, shared by tests/dsm/.

test_membership.py (dsm-node) and test_dsm.py (dsm-test) both start real
node processes, read their stdout line by line while they run and reap
them with a bound.  This is that part, once.  `make test-dsm` runs the
suites on the -O2 build and again on the ASan + UBSan one
(DSM_BUILD_DIR=build/dsm-asan, DSM_SANITIZED=1); a sanitizer report on a
node's stderr fails the test.
"""
import os
import pathlib
import queue
import re
import subprocess
import threading
import time

import pytest

BUILD = pathlib.Path(os.environ.get(
    "DSM_BUILD_DIR",
    pathlib.Path(__file__).resolve().parents[2] / "build" / "dsm"))
SANITIZED = os.environ.get("DSM_SANITIZED") == "1"
SANITIZER_REPORT = re.compile(r"Sanitizer|runtime error")

# Generous: a 2-core machine may run other suites at the same time.
START_TIMEOUT = 15.0


def cases(full, sanitized):
    """@full normally, the smaller @sanitized set under ASan + UBSan."""
    return sanitized if SANITIZED else full


def assert_no_sanitizer_report(args, err):
    if SANITIZER_REPORT.search(err):
        pytest.fail(f"{args}: sanitizer report:\n{err}", pytrace=False)


class NodeProcess:
    """One node: @prog with @args; threads collect stdout (with arrival
    times) and stderr."""

    def __init__(self, prog, args, exit_timeout):
        self.args = [str(prog)] + [str(a) for a in args]
        self.exit_timeout = exit_timeout
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.out = []
        self.err = ""
        self.finished = False
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        self._e = threading.Thread(target=self._read_err, daemon=True)
        self._e.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), line.rstrip("\n")))

    def _read_err(self):
        self.err = self.proc.stderr.read()

    def expect(self, prefix, timeout=START_TIMEOUT):
        """(arrival time, line) of the next stdout line starting with
        @prefix (the others are kept in self.out)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{self.args}: no '{prefix}' within {timeout}s; "
                    f"saw {self.out}\n{self.err}")
            try:
                t, line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.out.append(line)
            if line.startswith(prefix):
                return t, line

    def finish(self, timeout=None):
        """Wait for exit; return (exit code, stdout lines, stderr).  A
        node still running after the timeout is killed and the test fails
        with what it printed, so a hang can be told from a slow node."""
        timeout = self.exit_timeout if timeout is None else timeout
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            rc = None
        self._t.join(timeout=5)
        self._e.join(timeout=5)
        while not self.lines.empty():
            self.out.append(self.lines.get_nowait()[1])
        self.finished = True
        if rc is None:
            pytest.fail(f"{self.args}: still running after {timeout}s; "
                        f"stdout {self.out}\nstderr:\n{self.err}",
                        pytrace=False)
        assert_no_sanitizer_report(self.args, self.err)
        return rc, self.out, self.err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._e.join(timeout=5)


def check_unfinished(nodes):
    """After a test: the nodes it killed without finish() still must not
    have printed a sanitizer report."""
    for n in nodes:
        if not n.finished:
            assert_no_sanitizer_report(n.args, n.err)
