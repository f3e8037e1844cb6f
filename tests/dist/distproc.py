"""Run one emulator process and everything it starts, for tests/dist/.

A dqemu cluster is the master process plus the worker processes it
starts; a test must see all of them, bound how long they run, find the
workers to kill one, and prove that none is left behind.  ProcTree does
that for one command:

  - the command starts in a session of its own (start_new_session), so
    its session id is its pid and every process it starts without
    setsid() belongs to that session;
  - while it runs, its descendants (by PPid) are recorded now and then
    with their start time, so a process that left the session is still
    known, and a recycled pid is never taken for it;
  - stdout and stderr are read by threads, line by line, so a test can
    wait for a line while the process runs and a process that keeps a
    pipe open cannot block the reading;
  - finish() waits for the master with a bound, then gives the rest a
    grace period to exit, records what is still alive (leftovers), and
    kills it: the process group with SIGKILL, then every recorded
    descendant still alive, by pid.

Only processes this module started, or that descend from them, are ever
signalled.
"""
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

# How often the process tree is scanned while the master runs (seconds).
SCAN_INTERVAL = 0.25


def read_stat(pid):
    """(state, ppid, session, start time) of @pid from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    # The command name is in parentheses and may hold anything: split
    # after the last ')'.
    fields = data[data.rfind(")") + 2:].split()
    try:
        # state ppid pgrp session ... starttime is field 22 of the line,
        # index 19 after the command name.
        return fields[0], int(fields[1]), int(fields[3]), int(fields[19])
    except (IndexError, ValueError):
        return None


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def all_stats():
    """{pid: (state, ppid, session, start time)} of every process."""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None:
                stats[int(name)] = st
    return stats


def same_executable(pid, path):
    """True when process @pid runs the file @path (even if replaced)."""
    try:
        a = os.stat(f"/proc/{pid}/exe")
        b = os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def max_nodes(variable="DQEMU_DIST_MAX_NODES"):
    """The largest cluster a suite runs: @variable of the environment
    (DQEMU_DIST_MAX_NODES for tests/dist), default 4."""
    text = os.environ.get(variable) or "4"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{variable}={text!r}: want a node count >= 1")
    return n


@dataclass
class Outcome:
    """What one run did, as plain data (the stock runs are cached as JSON)."""
    cmd: list
    rc: object                  # exit status, -N for signal N, None on timeout
    elapsed: float              # seconds from start to the master's exit
    stdout: str
    stderr: str
    leftovers: list = field(default_factory=list)   # [pid, cmdline] after exit

    def status(self):
        if self.rc is None:
            return "TIMEOUT (killed)"
        if self.rc < 0:
            return f"killed by signal {-self.rc}"
        return str(self.rc)

    def describe(self, label):
        text = (f"--- {label}: {' '.join(map(str, self.cmd))[:400]}\n"
                f"exit status: {self.status()} after {self.elapsed:.2f}s\n")
        if self.leftovers:
            text += "left running after the master exited (killed):\n" + "".join(
                f"  pid {pid}: {' '.join(cmd)[:200]}\n" for pid, cmd in self.leftovers)
        return text + f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}\n"


@dataclass
class Known:
    start: int                  # start time, /proc/PID/stat field 22
    cmd: list = field(default_factory=list)


class ProcTree:
    """One command started in its own session, and its descendants."""

    def __init__(self, cmd, env=None, cwd=None):
        self.cmd = [str(c) for c in cmd]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd, start_new_session=True)
        self.pid = self.proc.pid
        self.known = {}             # pid -> Known, descendants ever seen
        self.rc = None              # exit status, -N for signal N
        self.exited_at = None       # monotonic time of the master's exit
        self.timed_out = False
        self.leftovers = []         # (pid, cmdline) alive after the grace period
        self._out = []
        self._err = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._out),
                             daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._err),
                             daemon=True),
        ]
        for t in self._readers:
            t.start()
        st = read_stat(self.pid)
        if st is not None:
            self.known[self.pid] = Known(st[3], self.cmd)

    # ---- output ----

    def _read(self, pipe, lines):
        for line in iter(pipe.readline, b""):
            with self._cond:
                lines.append(line.decode(errors="replace"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def stdout(self):
        with self._cond:
            return "".join(self._out)

    @property
    def stderr(self):
        with self._cond:
            return "".join(self._err)

    def wait_for_stdout(self, prefix, timeout):
        """The first stdout line starting with @prefix, or None if none came
        within @timeout seconds or the master exited first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._out:
                    if line.startswith(prefix):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self._cond.wait(min(left, SCAN_INTERVAL))

    # ---- the process tree ----

    def scan(self):
        """Record every live descendant of the master, and every process of
        its session; return {pid: stat} of those alive now."""
        stats = all_stats()
        children = {}
        for pid, (_state, ppid, _sid, _start) in stats.items():
            children.setdefault(ppid, []).append(pid)
        found = {}
        todo = [self.pid] if self.pid in stats else []
        todo += [p for p, st in stats.items() if st[2] == self.pid]
        while todo:
            pid = todo.pop()
            if pid in found:
                continue
            found[pid] = stats[pid]
            todo.extend(children.get(pid, []))
        for pid, st in found.items():
            k = self.known.get(pid)
            if k is None or k.start != st[3]:
                self.known[pid] = Known(st[3], cmdline(pid))
        return found

    def alive(self, include_master=False):
        """Recorded processes still alive (not zombies): {pid: Known}."""
        self.scan()
        live = {}
        for pid, k in self.known.items():
            if pid == self.pid and not include_master:
                continue
            st = read_stat(pid)
            if st is not None and st[3] == k.start and st[0] != "Z":
                live[pid] = k
        return live

    def descendants_running(self, path):
        """Live descendants (master excluded) running the executable @path."""
        return {pid: k for pid, k in self.alive().items() if same_executable(pid, path)}

    # ---- waiting and cleaning up ----

    def wait(self, timeout):
        """Wait up to @timeout s for the master to exit, scanning the tree
        meanwhile; its exit status, or None if it is still running."""
        deadline = time.monotonic() + timeout
        first = True
        while True:
            rc = self.proc.poll()
            if rc is not None:
                if self.exited_at is None:
                    self.exited_at = time.monotonic()
                    self.rc = rc
                return rc
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self.proc.wait(timeout=min(left, 0.05 if first else SCAN_INTERVAL))
            except subprocess.TimeoutExpired:
                pass
            if self.proc.poll() is None:
                self.scan()
            first = False

    def finish(self, timeout, grace=5.0):
        """Wait up to @timeout s for the master, then up to @grace s for the
        processes it started; kill whatever is left.  Sets rc (None on a
        timeout), leftovers, stdout and stderr are complete afterwards."""
        if self.wait(timeout) is None:
            self.timed_out = True
        else:
            deadline = time.monotonic() + grace
            while True:
                live = self.alive()
                if not live or time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
            self.leftovers = [(pid, k.cmd) for pid, k in sorted(live.items())]
        self.kill_all()
        for t in self._readers:
            t.join(timeout=10)
        return self.rc

    def kill_all(self):
        """SIGKILL the master's process group (while the master is not
        reaped, so its pid cannot have been reused), then every recorded
        descendant still alive; reap the master."""
        if self.proc.returncode is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in self.alive(include_master=True):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.rc is None and self.exited_at is None and not self.timed_out:
            self.rc = self.proc.returncode

    def elapsed(self):
        end = self.exited_at if self.exited_at is not None else time.monotonic()
        return end - self.started

    def outcome(self):
        return Outcome(self.cmd, None if self.timed_out else self.rc, self.elapsed(),
                       self.stdout, self.stderr, [list(x) for x in self.leftovers])

    def describe(self, label):
        return self.outcome().describe(label)


def run(cmd, env, cwd, timeout, grace=5.0):
    """Run @cmd to completion (bounded by @timeout s, then killed with all
    it started); its Outcome."""
    tree = ProcTree(cmd, env, cwd)
    try:
        tree.finish(timeout, grace)
    finally:
        tree.kill_all()
    return tree.outcome()
