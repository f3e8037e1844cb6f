#!/usr/bin/env python3
"""A simulated cluster of N hosts on this one machine, for dqemu's tests and benchmarks.

Why: dqemu runs one guest program on nodes spread over several machines,
launched over ssh from a hostfile.  To test that for real (name resolution,
ssh launch, link rates, link failure) and to measure speedups honestly on a
small box, each "host" here is a network namespace on a private bridge with
its own sshd, an /etc/hosts naming every host `nodeK`, an optional tbf rate
limit on its link, an optional one-way delay (injected by dqemu's transport,
since this kernel has no netem) and an optional CPU quota (a cgroup that only
the dqemu node processes join, through a small wrapper script).

Layout of one instance (prefix `dqsim<owner pid>-<counter>-`, so that two
sims can coexist and leftovers of dead owners can be found and removed):

    netns   <prefix>switch       bridge br0, one port nodeK per host
    netns   <prefix>nodeK        eth0 = 10.213.X.(K+1)/24, lo, sshd on port 22
    /etc/netns/<prefix>nodeK/    hosts, hostname (bind-mounted by `ip netns exec`)
    cgroup  <hierarchy>/<prefix>cluster/nodeK   (cpu and cpuacct, or cgroup v2)
    tmpdir  /tmp/<prefix>XXXX/   keys, sshd configs and logs, wrappers, hostfile

Everything started in a host (sshd, run_on) runs under `ip netns exec` in
its own UTS namespace whose hostname is nodeK.

`ip netns exec` remounts /sys, which hides /sys/fs/cgroup from everything
started in a host.  So the cluster cgroup of each hierarchy is bind-mounted
into the temp dir (`<tmp>/cgroup/<label>`), a path that is the same inside
and outside the hosts; DQEMU_SIM_CGROUP names those paths (colon-separated
when there are two v1 hierarchies).

Library use:

    with SimCluster(4, cpu=0.2, rate="100mbit", delay_us=50) as sim:
        wrapper = sim.wrap("build/dqemu-arm")
        master = sim.run_on(0, [wrapper, "--hostfile", sim.hostfile(),
                                "--launcher", sim.launcher,
                                "--remote-dqemu", wrapper, "prog"])

CLI: `simcluster.py --nodes N [--cpu F] [--rate R] [--delay-us D]
[--wrap BIN]... -- CMD ARGS...`, `simcluster.py --leftovers`,
`simcluster.py --cleanup`.  Must run as root.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import ipaddress
import itertools
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

NAME_STEM = "dqsim"
# Every name an instance creates starts with its prefix, e.g. "dqsim4242-0-".
INSTANCE_NAME = re.compile(r"(dqsim(\d+)-(\d+)-)")
SUBNET_BASE = "10.213"
SSH_PORT = 22
CPU_PERIOD_US = 5000          # the kernel refuses quotas under 1 ms
CPU_MIN_QUOTA_US = 1000
TBF_LATENCY = "50ms"
ETC_NETNS = "/etc/netns"
RUN_NETNS = "/run/netns"
SSHD = "/usr/sbin/sshd"
COMMAND_TIMEOUT_S = 30
SETUP_TIMEOUT_S = 20


# ---------------------------------------------------------------------------
# Small helpers

def _run(argv, check=True, timeout=COMMAND_TIMEOUT_S):
    """Run a short command, return CompletedProcess; raise with its stderr on failure."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError("simcluster: command failed (%d): %s\n%s" % (
            proc.returncode, shlex.join(argv), proc.stderr.strip()))
    return proc


def _write(path, text, mode=None):
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def _write_cgroup_file(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def _per_host(value, n, what):
    """A scalar applies to every host; a list or tuple gives one value per host."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError("simcluster: %s has %d values for %d hosts" % (what, len(value), n))
        return list(value)
    return [value] * n


_TC_RATE_UNITS = {
    "": 1, "bit": 1, "bps": 8,
    "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
    "kibit": 1024, "mibit": 1024 ** 2, "gibit": 1024 ** 3, "tibit": 1024 ** 4,
    "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "tbps": 8e12,
    "kibps": 8 * 1024, "mibps": 8 * 1024 ** 2, "gibps": 8 * 1024 ** 3, "tibps": 8 * 1024 ** 4,
}


def tc_rate_bits_per_s(rate: str) -> float:
    """Parse a tc rate string ("20mbit", "1gbit", "500kbps" = bytes) into bits per second."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(rate))
    if not m or m.group(2).lower() not in _TC_RATE_UNITS:
        raise ValueError("simcluster: not a tc rate: %r" % (rate,))
    bits = float(m.group(1)) * _TC_RATE_UNITS[m.group(2).lower()]
    if bits <= 0:
        raise ValueError("simcluster: rate must be positive: %r" % (rate,))
    return bits


def cpu_quota_us(fraction: float) -> tuple[int, int]:
    """(period, quota) in microseconds for a node limited to `fraction` of one CPU."""
    if fraction <= 0:
        raise ValueError("simcluster: cpu fraction must be positive: %r" % (fraction,))
    return CPU_PERIOD_US, max(CPU_MIN_QUOTA_US, round(fraction * CPU_PERIOD_US))


def _pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True
    state = stat.rpartition(")")[2].split()[0:1]
    return state != ["Z"] and state != ["X"]


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mountinfo():
    """(mount point, fstype, super options) for every mount of this mount namespace."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rest = right.split()
            if len(fields) < 5 or len(rest) < 3:
                continue
            yield _unescape_mountinfo(fields[4]), rest[0], set(rest[2].split(","))


# ---------------------------------------------------------------------------
# cgroups

class CgroupLayout:
    """Where the CPU quota and CPU accounting live on this machine.

    hierarchies: list of (label, mount point) in which a cluster cgroup is
    made; cpu_label / acct_label: which of them holds the quota and the usage.
    """

    def __init__(self, version, hierarchies, cpu_label, acct_label):
        self.version = version
        self.hierarchies = hierarchies
        self.cpu_label = cpu_label
        self.acct_label = acct_label

    def mount(self, label):
        return dict(self.hierarchies)[label]

    @staticmethod
    def detect(version=None):
        """cgroup v1 `cpu` (+ `cpuacct`) if mounted, else the v2 unified hierarchy.

        Returns None when no usable cgroup file system is mounted."""
        v1_cpu = v1_acct = v2 = None
        for mnt, fstype, opts in _mountinfo():
            if fstype == "cgroup":
                if "cpu" in opts and v1_cpu is None:
                    v1_cpu = mnt
                if "cpuacct" in opts and v1_acct is None:
                    v1_acct = mnt
            elif fstype == "cgroup2" and v2 is None:
                v2 = mnt
        if version in (None, 1) and v1_cpu:
            hierarchies = [("cpu", v1_cpu)]
            acct_label = "cpu"
            if v1_acct and v1_acct != v1_cpu:
                hierarchies.append(("cpuacct", v1_acct))
                acct_label = "cpuacct"
            elif not v1_acct:
                acct_label = None
            return CgroupLayout(1, hierarchies, "cpu", acct_label)
        if version in (None, 2) and v2:
            try:
                with open(os.path.join(v2, "cgroup.controllers")) as f:
                    has_cpu = "cpu" in f.read().split()
            except OSError:
                has_cpu = False
            return CgroupLayout(2, [("unified", v2)], "unified" if has_cpu else None, "unified")
        return None


def _cgroup_roots():
    """Mount points of every cgroup hierarchy (v1 and v2), for leftover scans."""
    seen = []
    for mnt, fstype, _ in _mountinfo():
        # (our own bind mounts of cluster cgroups are not hierarchy roots)
        if fstype in ("cgroup", "cgroup2") and mnt not in seen and not INSTANCE_NAME.search(mnt):
            seen.append(mnt)
    return seen


def _cgroup_procs(path):
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return {int(x) for x in f.read().split()}
    except OSError:
        return set()


def _cgroup_tree(path):
    """path and its descendant cgroup directories, deepest first."""
    out = []
    for dirpath, dirnames, _ in os.walk(path):
        out.append(dirpath)
    return sorted(out, key=lambda p: p.count("/"), reverse=True)


# ---------------------------------------------------------------------------
# Finding and removing what instances left behind

Leftover = collections.namedtuple("Leftover", "kind name owner_pid")
Leftover.__str__ = lambda self: "%s %s (owner pid %d)" % (self.kind, self.name, self.owner_pid)


def _owner(name):
    m = INSTANCE_NAME.search(name)
    return (m.group(1), int(m.group(2))) if m else (None, None)


def _matches(name, prefix):
    p, _ = _owner(name)
    return p is not None and (prefix is None or p == prefix)


def _netns_names():
    try:
        return sorted(os.listdir(RUN_NETNS))
    except FileNotFoundError:
        return []


def _netns_pids(ns):
    proc = _run(["ip", "netns", "pids", ns], check=False)
    return {int(x) for x in proc.stdout.split() if x.isdigit()}


def _cmdline_pids(prefix):
    """Processes whose command line names an instance (e.g. its sshd -f <tmp>/...)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        m = INSTANCE_NAME.search(cmd)
        if m and (prefix is None or m.group(1) == prefix):
            found[int(entry)] = (m.group(1), cmd.strip())
    return found


def leftovers(prefix=None):
    """Everything any sim instance (or the one with `prefix`) still has on this machine.

    Lists network namespaces, /etc/netns dirs, cgroups, temp dirs, mounts,
    root-namespace links and processes whose names carry an instance prefix."""
    found = []

    def add(kind, name):
        p, owner = _owner(name)
        if p is not None and (prefix is None or p == prefix):
            found.append(Leftover(kind, name, owner))

    for ns in _netns_names():
        add("netns", ns)
    if os.path.isdir(ETC_NETNS):
        for d in sorted(os.listdir(ETC_NETNS)):
            add("etc", os.path.join(ETC_NETNS, d))
    for root in _cgroup_roots():
        try:
            entries = sorted(os.listdir(root))
        except OSError:
            continue
        for d in entries:
            if os.path.isdir(os.path.join(root, d)):
                add("cgroup", os.path.join(root, d))
    tmp = tempfile.gettempdir()
    for d in sorted(os.listdir(tmp)):
        if d.startswith(NAME_STEM):
            add("tmpdir", os.path.join(tmp, d))
    for mnt, _, _ in _mountinfo():
        if INSTANCE_NAME.search(mnt) and not mnt.startswith(RUN_NETNS):
            add("mount", mnt)
    links = _run(["ip", "-o", "link", "show"], check=False).stdout
    for line in links.splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            add("link", parts[1].strip().split("@")[0])
    for pid, (p, cmd) in sorted(_cmdline_pids(prefix).items()):
        if pid != os.getpid():
            add("process", "%d %s" % (pid, p))
    return found


def _terminate(pids, grace_s=1.5, kill_wait_s=3.0):
    """SIGTERM the given pids, then SIGKILL what is still alive; bounded waits."""
    pids = {p for p in pids if p != os.getpid() and p > 1}
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, kill_wait_s)):
        alive = {p for p in pids if _pid_alive(p)}
        if not alive:
            return
        for p in alive:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(_pid_alive(p) for p in alive):
            time.sleep(0.02)


def _safe_rmtree(path):
    """rmtree that never descends into a mount (a bind-mounted cgroup, say)."""
    if not os.path.isdir(path):
        return
    for mnt, _, _ in _mountinfo():
        if mnt == path or mnt.startswith(path.rstrip("/") + "/"):
            raise RuntimeError("simcluster: %s still has a mount at %s" % (path, mnt))
    shutil.rmtree(path, ignore_errors=True)


def purge(prefix):
    """Remove every trace of the instance `prefix` (processes first). Returns error strings."""
    errors = []
    namespaces = [ns for ns in _netns_names() if _matches(ns, prefix)]
    cgroups = []
    for root in _cgroup_roots():
        try:
            cgroups += [os.path.join(root, d) for d in os.listdir(root) if _matches(d, prefix)]
        except OSError:
            pass

    pids = set()
    for ns in namespaces:
        pids |= _netns_pids(ns)
    for cg in cgroups:
        for d in _cgroup_tree(cg):
            pids |= _cgroup_procs(d)
    pids |= set(_cmdline_pids(prefix))
    _terminate(pids)

    for ns in namespaces:
        proc = _run(["ip", "netns", "delete", ns], check=False)
        if proc.returncode != 0 and os.path.exists(os.path.join(RUN_NETNS, ns)):
            errors.append("netns %s: %s" % (ns, proc.stderr.strip()))

    mounts = [m for m, _, _ in _mountinfo() if _matches(m, prefix) and not m.startswith(RUN_NETNS)]
    for mnt in sorted(mounts, key=len, reverse=True):
        proc = _run(["umount", "-l", mnt], check=False)
        if proc.returncode != 0:
            errors.append("umount %s: %s" % (mnt, proc.stderr.strip()))

    for cg in cgroups:
        for d in _cgroup_tree(cg):
            deadline = time.monotonic() + 3.0
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if time.monotonic() > deadline:
                        errors.append("cgroup %s: %s (procs %s)" % (d, e, sorted(_cgroup_procs(d))))
                        break
                    _terminate(_cgroup_procs(d), grace_s=0.1, kill_wait_s=0.5)
                    time.sleep(0.05)

    if os.path.isdir(ETC_NETNS):
        for d in os.listdir(ETC_NETNS):
            if _matches(d, prefix):
                shutil.rmtree(os.path.join(ETC_NETNS, d), ignore_errors=True)
        try:
            os.rmdir(ETC_NETNS)          # only succeeds when no instance is left in it
        except OSError:
            pass

    tmp = tempfile.gettempdir()
    for d in os.listdir(tmp):
        if d.startswith(NAME_STEM) and _matches(d, prefix):
            try:
                _safe_rmtree(os.path.join(tmp, d))
            except RuntimeError as e:
                errors.append(str(e))
    return errors


def cleanup_dead_instances():
    """Purge the leftovers of every instance whose owner process is gone.

    Returns (purged prefixes, error strings)."""
    prefixes = {}
    for item in leftovers():
        p, owner = _owner(item.name)
        prefixes[p] = owner
    purged, errors = [], []
    for p, owner in sorted(prefixes.items()):
        if owner == os.getpid() or _pid_alive(owner):
            continue
        errors += purge(p)
        purged.append(p)
    return purged, errors


# ---------------------------------------------------------------------------
# Tearing down on exit and on signals

_live_clusters: list["SimCluster"] = []
_previous_handlers: dict = {}
_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_instance_counter = itertools.count()


def _close_all():
    """Close every live cluster of this process (not of a forked parent)."""
    for sim in list(_live_clusters):
        if sim.owner_pid == os.getpid():
            try:
                sim.close()
            except Exception as e:          # keep going: the others must go too
                print(e, file=sys.stderr)


def _on_signal(signum, frame):
    _close_all()
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    _restore_signal_handlers()
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        os.kill(os.getpid(), signum)      # die of the same signal
        time.sleep(1)
        raise SystemExit(128 + signum)


def _install_signal_handlers():
    import threading
    if _previous_handlers or threading.current_thread() is not threading.main_thread():
        return
    for sig in _HANDLED_SIGNALS:
        previous = signal.getsignal(sig)
        if previous == signal.SIG_IGN:
            continue
        _previous_handlers[sig] = previous
        signal.signal(sig, _on_signal)


def _restore_signal_handlers():
    import threading
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, previous in list(_previous_handlers.items()):
        if signal.getsignal(sig) is _on_signal:
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
    _previous_handlers.clear()


atexit.register(_close_all)


# ---------------------------------------------------------------------------
# The simulated cluster

def _pick_subnet():
    """A 10.213.X.0/24 that overlaps no route of the root namespace (cosmetic:
    the hosts' namespaces are separate anyway)."""
    routes = []
    for line in _run(["ip", "-4", "route", "show", "table", "all"], check=False).stdout.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("default", "broadcast", "local", "unreachable", "prohibit", "blackhole"):
            word = line.split()[1] if len(line.split()) > 1 else ""
        try:
            routes.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            pass
    candidates = list(range(1, 255))
    random.shuffle(candidates)
    for x in candidates:
        net = ipaddress.ip_network("%s.%d.0/24" % (SUBNET_BASE, x))
        if not any(net.overlaps(r) for r in routes if r.prefixlen > 0):
            return net
    raise RuntimeError("simcluster: no free %s.X.0/24 subnet" % SUBNET_BASE)


WRAPPER_TEMPLATE = """#!/bin/sh
# simcluster wrapper: join the simulated node's cgroup(s) named by
# DQEMU_SIM_CGROUP (colon-separated directories), then run the real program.
if [ -n "${DQEMU_SIM_CGROUP:-}" ]; then
    IFS=:
    for simcluster_cg in $DQEMU_SIM_CGROUP; do
        echo $$ > "$simcluster_cg/cgroup.procs" || {
            echo "simcluster wrapper: cannot join cgroup $simcluster_cg" >&2
            exit 126
        }
    done
    unset IFS simcluster_cg
fi
exec %s "$@"
"""

CONNECT_CHECK = """
import socket, sys, time
addrs = sys.argv[2:]
port = int(sys.argv[1])
deadline = time.monotonic() + float(%r)
pending = list(addrs)
while pending and time.monotonic() < deadline:
    for a in list(pending):
        try:
            socket.create_connection((a, port), timeout=1).close()
            pending.remove(a)
        except OSError:
            pass
    if pending:
        time.sleep(0.05)
print(" ".join(pending))
sys.exit(1 if pending else 0)
""" % SETUP_TIMEOUT_S


class SimCluster:
    """N simulated hosts node0..node{N-1}; see the module docstring.

    cpu: fraction of one CPU per node (None: no quota), rate: tc rate string
    per link direction (None: unlimited), delay_us: one-way delay that dqemu's
    transport injects (0: none).  Each may be a scalar or a per-host list.
    service_cpu: give dqemu's service threads (transport, proxies: what
    answers other nodes) a cgroup of their own with this quota, next to the
    guest threads' `cpu` (cgroup v1 only; None: one cgroup for the whole
    process).  Why: see linux-user-dist/dist-simhost.c.
    cgroup_version: force 1 or 2 (default: v1 `cpu` if mounted, else v2).
    """

    def __init__(self, n, cpu=None, rate=None, delay_us=0, cgroup_version=None,
                 check_ssh=True, service_cpu=None):
        if os.geteuid() != 0:
            raise PermissionError("simcluster: must run as root")
        if not 1 <= n <= 250:
            raise ValueError("simcluster: 1..250 hosts, not %r" % (n,))
        self.n = n
        self.cpu = _per_host(cpu, n, "cpu")
        self.service_cpu = _per_host(service_cpu, n, "service_cpu")
        self.rate = _per_host(rate, n, "rate")
        self.delay_us = [int(d or 0) for d in _per_host(delay_us, n, "delay_us")]
        for r in self.rate:
            if r is not None:
                tc_rate_bits_per_s(r)
        for c in self.cpu + self.service_cpu:
            if c is not None:
                cpu_quota_us(c)
        self.owner_pid = os.getpid()
        self.prefix = "%s%d-%d-" % (NAME_STEM, self.owner_pid, next(_instance_counter))
        self.hosts = ["node%d" % k for k in range(n)]
        self.switch_ns = self.prefix + "switch"
        self.tmpdir = None
        self.subnet = None
        self.cgroups = None            # CgroupLayout or None
        self._sshd = {}                # k -> Popen
        self._procs = []               # Popens from run_on
        self._wrappers = {}            # real path -> wrapper path
        self._closed = False
        self._cgroup_version = cgroup_version
        self._check_ssh = check_ssh
        _live_clusters.append(self)
        _install_signal_handlers()
        try:
            self._start()
        except BaseException:
            self.close(raise_errors=False)
            raise

    # -- names and paths --------------------------------------------------

    def ns(self, k):
        """Network namespace name of host k."""
        return "%snode%d" % (self.prefix, k)

    def addr(self, k):
        """IPv4 address of host k."""
        return str(self.subnet.network_address + k + 1)

    def _host_dir(self, k):
        return os.path.join(self.tmpdir, "node%d" % k)

    @property
    def ssh_config(self):
        return os.path.join(self.tmpdir, "ssh", "config")

    @property
    def launcher(self):
        """dqemu's --launcher value: dqemu appends the host name as one more word."""
        return "ssh -F %s" % shlex.quote(self.ssh_config)

    @property
    def split_service(self):
        return any(c is not None for c in self.service_cpu)

    def _cgroup_view(self, name):
        return ":".join(os.path.join(self.tmpdir, "cgroup", label, name)
                        for label, _ in self.cgroups.hierarchies)

    def cgroup_env(self, k):
        """Value of DQEMU_SIM_CGROUP for host k, the cgroup(s) the wrapper
        joins: the service ones with service_cpu (None without cgroups)."""
        if self.cgroups is None:
            return None
        return self._cgroup_view("node%d%s" % (k, "-service" if self.split_service else ""))

    def guest_cgroup_env(self, k):
        """Value of DQEMU_SIM_GUEST_CGROUP for host k (None: no split)."""
        if self.cgroups is None or not self.split_service:
            return None
        return self._cgroup_view("node%d" % k)

    def _cgroup_dir(self, label, k=None):
        """Real path (under /sys/fs/cgroup) of the cluster cgroup or host k's."""
        d = os.path.join(self.cgroups.mount(label), self.prefix + "cluster")
        return d if k is None else os.path.join(d, "node%d" % k)

    # -- setup -------------------------------------------------------------

    def _start(self):
        # A dead instance with our pid and counter (pid reuse) would clash.
        purge(self.prefix)
        self.tmpdir = tempfile.mkdtemp(prefix=self.prefix)
        os.chmod(self.tmpdir, 0o755)
        self.subnet = _pick_subnet()
        self._make_keys()
        self._make_network()
        self._make_cgroups()
        os.makedirs(os.path.join(self.tmpdir, "bin"))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)   # sshd's privilege-separation dir
        for k in range(self.n):
            self._start_sshd(k)
        self._check_connectivity()
        if self._check_ssh:
            self._check_ssh_logins()

    def _make_keys(self):
        d = os.path.join(self.tmpdir, "ssh")
        os.makedirs(d, mode=0o700)
        host_key = os.path.join(d, "host_ed25519")
        client_key = os.path.join(d, "id_ed25519")
        for key in (host_key, client_key):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.prefix + "sim",
                  "-f", key])
        with open(client_key + ".pub") as f:
            _write(os.path.join(d, "authorized_keys"), f.read(), 0o600)
        with open(host_key + ".pub") as f:
            host_pub = " ".join(f.read().split()[:2])
        _write(os.path.join(d, "known_hosts"), "".join(
            "%s,%s %s\n" % (self.hosts[k], self.addr(k), host_pub) for k in range(self.n)))
        _write(self.ssh_config, "\n".join([
            "Host *",
            "    User root",
            "    IdentityFile %s" % client_key,
            "    IdentitiesOnly yes",
            "    UserKnownHostsFile %s" % os.path.join(d, "known_hosts"),
            "    GlobalKnownHostsFile /dev/null",
            "    StrictHostKeyChecking yes",
            "    BatchMode yes",
            "    LogLevel ERROR",
            "    ConnectTimeout 5",
            "    ServerAliveInterval 5",
            "    ServerAliveCountMax 3",
            ""]))

    def _make_network(self):
        sw = self.switch_ns
        _run(["ip", "netns", "add", sw])
        _run(["ip", "-n", sw, "link", "set", "lo", "up"])
        _run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", sw, "link", "set", "br0", "up"])
        hosts_file = "".join(["127.0.0.1\tlocalhost\n",
                              "::1\tlocalhost ip6-localhost ip6-loopback\n"] +
                             ["%s\t%s\n" % (self.addr(k), self.hosts[k]) for k in range(self.n)])
        for k in range(self.n):
            ns, port = self.ns(k), "node%d" % k
            etc = os.path.join(ETC_NETNS, ns)
            for _ in range(3):      # another instance may rmdir an empty /etc/netns meanwhile
                try:
                    os.makedirs(etc, exist_ok=True)
                    break
                except FileNotFoundError:
                    time.sleep(0.01)
            _write(os.path.join(etc, "hosts"), hosts_file, 0o644)
            _write(os.path.join(etc, "hostname"), self.hosts[k] + "\n", 0o644)
            os.makedirs(self._host_dir(k))
            _run(["ip", "netns", "add", ns])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            # Made inside the switch, the host end moved straight into the host:
            # the root namespace never sees either end.
            _run(["ip", "-n", sw, "link", "add", port, "type", "veth",
                  "peer", "name", "eth0", "netns", ns])
            _run(["ip", "-n", sw, "link", "set", port, "master", "br0"])
            _run(["ip", "-n", sw, "link", "set", port, "up"])
            _run(["ip", "-n", ns, "addr", "add", "%s/%d" % (self.addr(k), self.subnet.prefixlen),
                  "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            if self.rate[k] is not None:
                self._limit_rate(ns, "eth0", self.rate[k])
                self._limit_rate(sw, port, self.rate[k])

    @staticmethod
    def _limit_rate(ns, dev, rate):
        bits = tc_rate_bits_per_s(rate)
        # Enough tokens for one timer tick at 250 Hz and for 64 KiB GSO packets
        # split into MTU-size segments.
        burst = max(int(bits / 8 / 250), 32 * 1024)
        _run(["tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf",
              "rate", "%dbit" % int(bits), "burst", str(burst), "latency", TBF_LATENCY])

    def _make_cgroups(self):
        wants_quota = any(c is not None for c in self.cpu)
        self.cgroups = CgroupLayout.detect(self._cgroup_version)
        if self.cgroups is None:
            if wants_quota:
                raise RuntimeError("simcluster: no cgroup file system mounted, cannot limit CPU")
            return
        if self.split_service and self.cgroups.version != 1:
            raise RuntimeError("simcluster: service_cpu needs cgroup v1 (threads of one "
                               "process in two sibling cgroups)")
        if wants_quota and self.cgroups.cpu_label is None:
            raise RuntimeError("simcluster: the cgroup v2 hierarchy at %s offers no cpu controller"
                               % self.cgroups.mount("unified"))
        for label, mount in self.cgroups.hierarchies:
            cluster = self._cgroup_dir(label)
            if self.cgroups.version == 2 and self.cgroups.cpu_label:
                self._enable_v2_cpu(mount)
            os.mkdir(cluster)
            if self.cgroups.version == 2 and self.cgroups.cpu_label:
                self._enable_v2_cpu(cluster)
            for k in range(self.n):
                os.mkdir(self._cgroup_dir(label, k))
                if self.split_service:
                    os.mkdir(self._cgroup_dir(label, k) + "-service")
            # `ip netns exec` hides /sys/fs/cgroup; this path is seen everywhere.
            view = os.path.join(self.tmpdir, "cgroup", label)
            os.makedirs(view)
            _run(["mount", "--bind", cluster, view])
        quotas = [(self._cgroup_dir(self.cgroups.cpu_label, k), c)
                  for k, c in enumerate(self.cpu)]
        if self.split_service:
            quotas += [(self._cgroup_dir(self.cgroups.cpu_label, k) + "-service", c)
                       for k, c in enumerate(self.service_cpu)]
        for d, fraction in quotas:
            if fraction is None:
                continue
            period, quota = cpu_quota_us(fraction)
            if self.cgroups.version == 1:
                _write_cgroup_file(os.path.join(d, "cpu.cfs_period_us"), period)
                _write_cgroup_file(os.path.join(d, "cpu.cfs_quota_us"), quota)
            else:
                _write_cgroup_file(os.path.join(d, "cpu.max"), "%d %d" % (quota, period))

    @staticmethod
    def _enable_v2_cpu(cgroup_dir):
        control = os.path.join(cgroup_dir, "cgroup.subtree_control")
        with open(control) as f:
            if "cpu" in f.read().split():
                return
        try:
            _write_cgroup_file(control, "+cpu")
        except OSError as e:
            raise RuntimeError("simcluster: cannot enable the cpu controller in %s: %s"
                               % (cgroup_dir, e)) from e

    def _sshd_config(self, k):
        ssh = os.path.join(self.tmpdir, "ssh")
        setenv = []
        if self.cgroups is not None:
            setenv.append("DQEMU_SIM_CGROUP=%s" % self.cgroup_env(k))
        if self.guest_cgroup_env(k):
            setenv.append("DQEMU_SIM_GUEST_CGROUP=%s" % self.guest_cgroup_env(k))
        if self.delay_us[k] > 0:
            setenv.append("DQEMU_SIM_LINK_DELAY=%d" % self.delay_us[k])
        lines = [
            "ListenAddress %s:%d" % (self.addr(k), SSH_PORT),
            "AddressFamily inet",
            "HostKey %s" % os.path.join(ssh, "host_ed25519"),
            "PidFile %s" % os.path.join(self._host_dir(k), "sshd.pid"),
            "AuthorizedKeysFile %s" % os.path.join(ssh, "authorized_keys"),
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            # /tmp is world-writable: StrictModes would refuse the key file.
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "MaxStartups 100:30:200",
            "MaxSessions 100",
            "LoginGraceTime 20",
            "LogLevel INFO",
        ]
        if setenv:
            lines.append("SetEnv " + " ".join(setenv))
        path = os.path.join(self._host_dir(k), "sshd_config")
        _write(path, "\n".join(lines) + "\n", 0o600)
        return path

    def _in_host(self, k, argv):
        """argv run in host k: its netns, /etc/netns files, and a UTS namespace named nodeK."""
        return ["ip", "netns", "exec", self.ns(k), "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', self.hosts[k]] + list(argv)

    def _start_sshd(self, k):
        config = self._sshd_config(k)
        log = open(os.path.join(self._host_dir(k), "sshd.log"), "ab")
        try:
            self._sshd[k] = subprocess.Popen(
                self._in_host(k, [SSHD, "-D", "-e", "-f", config]),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self._clean_env(),
                start_new_session=True)
        finally:
            log.close()

    def sshd_log(self, k):
        try:
            with open(os.path.join(self._host_dir(k), "sshd.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _check_connectivity(self):
        """Every host reaches every host's sshd (so the network and sshd are up)."""
        checks = []
        for k in range(self.n):
            addrs = [self.addr(j) for j in range(self.n)]
            checks.append(self.run_on(k, [sys.executable, "-c", CONNECT_CHECK, str(SSH_PORT)] + addrs,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        failures = []
        for k, p in enumerate(checks):
            try:
                out, _ = p.communicate(timeout=SETUP_TIMEOUT_S + 10)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate(timeout=5)
            if p.returncode != 0:
                failures.append("node%d cannot reach %s" % (k, out.strip()))
        if failures:
            dead = [k for k, p in self._sshd.items() if p.poll() is not None]
            raise RuntimeError("simcluster: network check failed: %s%s" % (
                "; ".join(failures),
                "".join("\nsshd of node%d exited:\n%s" % (k, self.sshd_log(k)[-2000:]) for k in dead)))

    def _check_ssh_logins(self):
        logins = [self.run_on(0, ["ssh", "-F", self.ssh_config, h, "true"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                  for h in self.hosts]
        failures = []
        for k, p in enumerate(logins):
            try:
                out, _ = p.communicate(timeout=SETUP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate(timeout=5)
            if p.returncode != 0:
                failures.append("node%d (exit %s): %s\n%s" % (
                    k, p.returncode, out.strip(), self.sshd_log(k)[-1500:]))
        if failures:
            hint = ""
            try:
                with open("/etc/shadow") as f:
                    if any(l.startswith("root:!") for l in f):
                        hint = ("\nroot's account is locked ('!' in /etc/shadow) and sshd runs "
                                "with UsePAM no: `usermod -p '*' root` allows key logins")
            except OSError:
                pass
            raise RuntimeError("simcluster: ssh login check failed:\n" + "\n".join(failures) + hint)

    # -- running things ----------------------------------------------------

    @staticmethod
    def _clean_env(base=None):
        env = dict(os.environ if base is None else base)
        for var in ("DQEMU_SIM_CGROUP", "DQEMU_SIM_GUEST_CGROUP", "DQEMU_SIM_LINK_DELAY"):
            env.pop(var, None)
        return env

    def host_env(self, k, base=None):
        """Environment for a process on host k: base plus the simulator's variables."""
        env = self._clean_env(base)
        if self.cgroups is not None:
            env["DQEMU_SIM_CGROUP"] = self.cgroup_env(k)
        if self.guest_cgroup_env(k):
            env["DQEMU_SIM_GUEST_CGROUP"] = self.guest_cgroup_env(k)
        if self.delay_us[k] > 0:
            env["DQEMU_SIM_LINK_DELAY"] = str(self.delay_us[k])
        return env

    def run_on(self, k, argv, **popen_kwargs):
        """subprocess.Popen of argv inside host k (netns, /etc/hosts, hostname nodeK).

        The environment (popen_kwargs["env"] or ours) gets DQEMU_SIM_CGROUP and,
        with a delay, DQEMU_SIM_LINK_DELAY.  The process is not put in the
        node's cgroup: run a wrapper from wrap() for that.  Popen.pid is the
        pid of argv's program itself (every step execs)."""
        if self._closed:
            raise RuntimeError("simcluster: cluster %s is closed" % self.prefix)
        if not 0 <= k < self.n:
            raise IndexError("simcluster: no host %r" % (k,))
        popen_kwargs["env"] = self.host_env(k, popen_kwargs.get("env"))
        proc = subprocess.Popen(self._in_host(k, argv), **popen_kwargs)
        self._procs = [p for p in self._procs if p.poll() is None] + [proc]
        return proc

    def wrap(self, binary):
        """Path of a wrapper that joins DQEMU_SIM_CGROUP's cgroups, then execs binary.

        One wrapper per real binary; the same path works on every host."""
        real = binary if "/" in binary else shutil.which(binary)
        if real is None:
            raise FileNotFoundError("simcluster: %s not found" % binary)
        real = os.path.abspath(real)
        if real in self._wrappers:
            return self._wrappers[real]
        bindir = os.path.join(self.tmpdir, "bin")
        name = os.path.basename(real)
        path = os.path.join(bindir, name)
        suffix = 2
        while os.path.exists(path):
            path = os.path.join(bindir, "%s-%d" % (name, suffix))
            suffix += 1
        _write(path, WRAPPER_TEMPLATE % shlex.quote(real), 0o755)
        self._wrappers[real] = path
        return path

    def hostfile(self, slots=None):
        """Write an Open MPI style hostfile ("nodeK slots=S") and return its path."""
        path = os.path.join(self.tmpdir, "hostfile")
        slots = _per_host(slots, self.n, "slots")
        _write(path, "".join((h if s is None else "%s slots=%d" % (h, s)) + "\n"
                             for h, s in zip(self.hosts, slots)))
        return path

    def pids(self, k):
        """Pids of every process in host k's network namespace."""
        return sorted(_netns_pids(self.ns(k)))

    def cgroup_cpu_usage_ns(self, k=None, which="all"):
        """CPU time used so far by host k's cgroup (k=None: the whole cluster), in ns.

        which: "all", or with service_cpu "guest" or "service" (host k only)."""
        if self.cgroups is None or self.cgroups.acct_label is None:
            raise RuntimeError("simcluster: no CPU accounting cgroup on this machine")
        if which not in ("all", "guest", "service"):
            raise ValueError("simcluster: which is all, guest or service, not %r" % (which,))
        d = self._cgroup_dir(self.cgroups.acct_label, k)
        if k is None or not self.split_service:
            if which != "all":
                raise ValueError("simcluster: guest/service usage needs a host and service_cpu")
            return self._cpu_usage_ns(d)
        guest, service = self._cpu_usage_ns(d), self._cpu_usage_ns(d + "-service")
        return {"all": guest + service, "guest": guest, "service": service}[which]

    def _cpu_usage_ns(self, d):
        if self.cgroups.version == 1:
            with open(os.path.join(d, "cpuacct.usage")) as f:
                return int(f.read())
        with open(os.path.join(d, "cpu.stat")) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) * 1000
        raise RuntimeError("simcluster: no usage_usec in %s/cpu.stat" % d)

    def cgroup_pids(self, k):
        """Pids in host k's cgroup (the dqemu node processes started through a wrapper)."""
        if self.cgroups is None:
            return []
        d = self._cgroup_dir(self.cgroups.hierarchies[0][0], k)
        pids = _cgroup_procs(d)
        if self.split_service:
            pids |= _cgroup_procs(d + "-service")
        return sorted(pids)

    def down(self, k):
        """Cut host k's link (its switch port goes down; the host keeps its address)."""
        _run(["ip", "-n", self.switch_ns, "link", "set", "node%d" % k, "down"])

    def up(self, k):
        """Restore host k's link and wait (bounded) for the carrier."""
        _run(["ip", "-n", self.switch_ns, "link", "set", "node%d" % k, "up"])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            out = _run(["ip", "-n", self.ns(k), "-o", "link", "show", "eth0"], check=False).stdout
            if "LOWER_UP" in out:
                return
            time.sleep(0.02)
        raise RuntimeError("simcluster: node%d's link did not come back up" % k)

    # -- teardown ------------------------------------------------------------

    def close(self, raise_errors=True):
        """Remove everything this instance made. Idempotent; safe after a partial setup
        and when re-entered from a signal handler."""
        if self._closed:
            return
        own = [p for p in list(self._procs) + list(self._sshd.values()) if p.poll() is None]
        for p in own:
            try:
                p.terminate()
            except OSError:
                pass
        errors = purge(self.prefix)
        for p in own:
            try:
                p.wait(timeout=1)
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
        self._closed = True
        if self in _live_clusters:
            _live_clusters.remove(self)
        if not _live_clusters:
            _restore_signal_handlers()
        if errors:
            message = "simcluster: teardown of %s incomplete:\n%s" % (self.prefix, "\n".join(errors))
            if raise_errors:
                raise RuntimeError(message)
            print(message, file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # A teardown error must not hide the exception that ended the block.
        self.close(raise_errors=exc_type is None)
        return False

    def describe(self):
        lines = ["simcluster %s: %d hosts on %s" % (self.prefix, self.n, self.subnet)]
        for k in range(self.n):
            extras = []
            if self.cpu[k] is not None:
                extras.append("cpu %s" % self.cpu[k])
            if self.service_cpu[k] is not None:
                extras.append("service cpu %s" % self.service_cpu[k])
            if self.rate[k] is not None:
                extras.append("rate %s" % self.rate[k])
            if self.delay_us[k]:
                extras.append("delay %d us" % self.delay_us[k])
            lines.append("  %s %s %s" % (self.hosts[k], self.addr(k), ", ".join(extras)))
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Command line

def _wrap_env_name(binary):
    return "SIMCLUSTER_WRAP_" + re.sub(r"\W", "_", os.path.basename(binary))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    command = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1:]
    parser = argparse.ArgumentParser(
        description="Run CMD on host node0 of a simulated cluster of network namespaces "
                    "with sshd, then tear everything down.",
        usage="%(prog)s --nodes N [--cpu F] [--rate R] [--delay-us D] [--wrap BIN]... -- CMD ARGS...\n"
              "       %(prog)s --leftovers | --cleanup")
    parser.add_argument("--nodes", type=int, help="number of hosts")
    parser.add_argument("--cpu", type=float, help="CPU quota per node, fraction of one CPU")
    parser.add_argument("--service-cpu", type=float,
                        help="a separate quota for dqemu's service threads (cgroup v1)")
    parser.add_argument("--rate", help="tc rate of each host's link, e.g. 100mbit")
    parser.add_argument("--delay-us", type=int, default=0,
                        help="one-way link delay (DQEMU_SIM_LINK_DELAY) in microseconds")
    parser.add_argument("--slots", type=int, help="slots per host in the hostfile")
    parser.add_argument("--wrap", action="append", default=[], metavar="BIN",
                        help="make a cgroup wrapper for BIN; exported as SIMCLUSTER_WRAP_<name>")
    parser.add_argument("--quiet", action="store_true", help="no description on stderr")
    parser.add_argument("--leftovers", action="store_true",
                        help="list what sim instances left behind; exit 1 if anything")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove the leftovers of instances whose owner process is gone")
    args = parser.parse_args(argv)

    if args.leftovers:
        items = leftovers()
        for item in items:
            print(item)
        return 1 if items else 0
    if args.cleanup:
        purged, errors = cleanup_dead_instances()
        for p in purged:
            print("removed %s*" % p)
        for e in errors:
            print("error: %s" % e, file=sys.stderr)
        return 1 if errors else 0
    if not args.nodes or not command:
        parser.error("--nodes N and -- CMD are required")

    with SimCluster(args.nodes, cpu=args.cpu, rate=args.rate, delay_us=args.delay_us,
                    service_cpu=args.service_cpu) as sim:
        env = dict(os.environ)
        env["SIMCLUSTER_HOSTFILE"] = sim.hostfile(args.slots)
        env["SIMCLUSTER_LAUNCHER"] = sim.launcher
        env["SIMCLUSTER_SSH_CONFIG"] = sim.ssh_config
        env["SIMCLUSTER_HOSTS"] = " ".join(sim.hosts)
        for binary in args.wrap:
            env[_wrap_env_name(binary)] = sim.wrap(binary)
        if not args.quiet:
            print(sim.describe(), file=sys.stderr)
            for name in sorted(env):
                if name.startswith("SIMCLUSTER_"):
                    print("  %s=%s" % (name, env[name]), file=sys.stderr)
        proc = sim.run_on(0, command, env=env)
        try:
            status = proc.wait()
        except KeyboardInterrupt:
            status = -signal.SIGINT
    return 128 - status if status < 0 else status


if __name__ == "__main__":
    sys.exit(main())
