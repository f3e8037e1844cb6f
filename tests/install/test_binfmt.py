"""Test dqemu-binfmt, which registers dqemu with the kernel's binfmt_misc.

Argument errors and the exact register lines (--dry-run: QEMU's magic and
mask, flags P) are checked everywhere.  Real registrations go to a private
binfmt_misc instance mounted in a new user namespace (Linux >= 6.7), which
nobody else sees and which vanishes with the namespace, so the test never
clobbers the machine's entries.  Without that, the machine's own
/proc/sys/fs/binfmt_misc is used only when we are root, it is mounted, and
no entry there claims the same programs; the entries are always removed.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from install_helpers import BUILD, ISAS, REPO, clean_env, make, run

SCRIPT = REPO / "dqemu" / "tools" / "dqemu-binfmt"
CONF = BUILD / "qemu-src" / "scripts" / "qemu-binfmt-conf.sh"
GUEST = BUILD / "guest" / "arm" / "args-static"
SYSTEM_BINFMT = Path("/proc/sys/fs/binfmt_misc")


def qemu_magics():
    """{isa: (magic, mask)} as QEMU's qemu-binfmt-conf.sh spells them."""
    if not CONF.is_file():
        pytest.skip(f"{CONF} missing (QEMU's source comes with `make`)")
    text = CONF.read_text()
    out = {}
    for isa in ISAS:
        magic = re.search(rf"^{isa}_magic='([^']*)'", text, re.M).group(1)
        mask = re.search(rf"^{isa}_mask='([^']*)'", text, re.M).group(1)
        out[isa] = (magic, mask)
    return out


def binfmt(*args, cwd=None):
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, env=clean_env(), cwd=cwd, timeout=60)


@pytest.mark.parametrize("args, status, message", [
    ([], 2, "usage: dqemu-binfmt install|remove|status"),
    (["bogus"], 2, "unknown argument 'bogus'"),
    (["install", "remove"], 2, "one command only"),
    (["install", "--dqemu-dir"], 2, "--dqemu-dir needs a directory"),
    (["status", "--binfmt-dir"], 2, "--binfmt-dir needs a directory"),
    (["install", "--dry-run", "--dqemu-dir", "/nonexistent/dqemu"], 1,
     "no directory '/nonexistent/dqemu'"),
    (["install", "--dry-run", "--dqemu-dir", "/"], 1, "no executable /dqemu-arm"),
    (["install", "--dry-run"], 1, f"no executable {SCRIPT.parent}/dqemu-arm"),
])
def test_argument_errors(args, status, message):
    r = binfmt(*args)
    assert r.returncode == status and message in r.stderr, r.stdout + r.stderr


def test_help():
    r = binfmt("--help")
    assert r.returncode == 0 and "usage: dqemu-binfmt" in r.stdout


def test_dry_run_register_lines_are_qemus_magic_and_mask():
    magics = qemu_magics()
    # A relative --dqemu-dir becomes absolute: the kernel needs that.
    r = binfmt("install", "--dry-run", "--dqemu-dir", "build", cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f":dqemu-{isa}:M::{magics[isa][0]}:{magics[isa][1]}:{BUILD}/dqemu-{isa}:P"
        for isa in ISAS]
    # Debian's qemu-user-binfmt data, where installed, says the same.
    for isa in ISAS:
        deb = Path(f"/usr/share/binfmts/qemu-{isa}")
        if deb.is_file():
            fields = dict(line.split(" ", 1) for line in deb.read_text().splitlines()
                          if " " in line)
            assert (fields["magic"], fields["mask"]) == magics[isa], deb


def test_status_when_not_mounted(tmp_path):
    r = binfmt("status", "--binfmt-dir", tmp_path)
    assert r.returncode == 0 and f"not mounted at {tmp_path}" in r.stdout


def test_install_needs_a_mounted_binfmt_misc(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the root check comes first; test_install_needs_root covers it")
    r = binfmt("install", "--dqemu-dir", BUILD, "--binfmt-dir", tmp_path)
    assert r.returncode == 1, r.stdout
    assert f"mount -t binfmt_misc binfmt_misc {tmp_path}" in r.stderr


def test_install_needs_root():
    # An unmapped user namespace makes even root uid 65534 (nobody).
    cmd = [SCRIPT, "install", "--dqemu-dir", BUILD]
    if os.geteuid() == 0:
        if not shutil.which("unshare") or run(["unshare", "--user", "true"]).returncode:
            pytest.skip("as root, and `unshare --user` is unavailable to drop it")
        cmd = ["unshare", "--user", *cmd]
    r = run(cmd)
    assert r.returncode == 1 and "install needs root" in r.stderr, r.stderr


# ---- real registrations --------------------------------------------------

PREAMBLE = r"""
set -u
S=$1 B=$2 T=$3
if [ "$MODE" = private ]; then mount -t binfmt_misc binfmt_misc "$B" || exit 90; fi
trap '"$S" remove --binfmt-dir "$B" >/dev/null 2>&1' EXIT
step() { n=$1; shift; "$@" >"$T/$n.out" 2>"$T/$n.err"; echo $? >"$T/$n.rc"; }
"""


@pytest.fixture(scope="module")
def binfmt_mode(tmp_path_factory):
    """'private' (own instance in a user namespace) or 'system'."""
    mnt = tmp_path_factory.mktemp("probe")
    if shutil.which("unshare"):
        r = run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                 'mount -t binfmt_misc binfmt_misc "$0" && test -e "$0/register"', mnt])
        if r.returncode == 0:
            return "private"
    why = "no private binfmt_misc (needs unshare and Linux >= 6.7)"
    if os.geteuid() != 0 or not os.access(SYSTEM_BINFMT / "register", os.W_OK):
        pytest.skip(f"{why}, and {SYSTEM_BINFMT} is not mounted and writable by us")
    status = binfmt("status").stdout
    if "also claimed" in status or status.count("not registered") != len(ISAS):
        pytest.skip(f"{why}; {SYSTEM_BINFMT} already has entries for these "
                    f"programs, which this test must not touch:\n{status}")
    return "system"


def in_binfmt(mode, tmp_path, body):
    """Run sh @body with $S, $B, $T and step(); {step: (rc, out, err)}."""
    mnt = tmp_path / "binfmt"
    mnt.mkdir()
    cmd = ["sh", "-c", PREAMBLE + body, "sh", SCRIPT,
           mnt if mode == "private" else SYSTEM_BINFMT, tmp_path]
    if mode == "private":
        cmd = ["unshare", "--user", "--map-root-user", "--mount"] + cmd
    try:
        r = run(cmd, timeout=300, MODE=mode)
    finally:
        if mode == "system":
            binfmt("remove")
    assert r.returncode == 0, r.stdout + r.stderr
    return {p.stem: (int(p.read_text()), (tmp_path / f"{p.stem}.out").read_text(),
                     (tmp_path / f"{p.stem}.err").read_text())
            for p in tmp_path.glob("*.rc")}


@pytest.fixture(scope="module")
def guest():
    if not GUEST.is_file():
        make(str(GUEST))
    return GUEST


def test_registered_program_runs_under_dqemu(binfmt_mode, tmp_path, guest):
    res = in_binfmt(binfmt_mode, tmp_path, f"""
        step install "$S" install --dqemu-dir {BUILD} --binfmt-dir "$B"
        step entry cat "$B/dqemu-arm"
        step status "$S" status --binfmt-dir "$B"
        step direct env DQEMU_NODES=2 DQEMU_STATS=1 {guest} a 'b c'
        step again "$S" install --dqemu-dir {BUILD} --binfmt-dir "$B"
        step remove "$S" remove --binfmt-dir "$B"
        step after ls "$B"
    """)
    assert res["install"][0] == 0, res["install"]
    magic = "7f454c4601010100000000000000000002002800"
    assert res["entry"][1].splitlines() == [
        "enabled", f"interpreter {BUILD}/dqemu-arm", "flags: P", "offset 0",
        f"magic {magic}", "mask ffffffffffffff00fffffffffffffffffeffffff"]
    for isa in ISAS:
        assert f"dqemu-{isa}: enabled, interpreter {BUILD}/dqemu-{isa}, flags P" \
            in res["status"][1]

    ref = run([BUILD / "dqemu-arm", "--nodes", "2", guest, "a", "b c"])
    assert "PASS args" in ref.stdout
    assert res["direct"][:2] == (ref.returncode, ref.stdout), res["direct"]
    assert "node 1: stats" in res["direct"][2], "not run on 2 nodes"

    assert res["again"][0] == 1 and "run 'dqemu-binfmt remove' first" in res["again"][2]
    assert res["remove"][0] == 0
    assert res["after"][1].split() == ["register", "status"]


def test_install_refuses_entries_claiming_the_same_programs(binfmt_mode, tmp_path):
    if binfmt_mode != "private":
        pytest.skip("registers look-alike entries: only in a private binfmt_misc")
    arm = qemu_magics()["arm"]
    res = in_binfmt(binfmt_mode, tmp_path, rf"""
        # Not arm's (nor this host's): big-endian 64-bit ELF, and a .jar entry.
        printf '%s\n' ':elf64be:M::\x7fELF\x02\x02::/bin/false:' >"$B/register"
        printf '%s\n' ':jar:E::jar::/bin/false:' >"$B/register"
        printf '%s\n' ':qemu-arm:M::{arm[0]}:{arm[1]}:/usr/bin/qemu-arm:' >"$B/register"
        step same "$S" install --dqemu-dir {BUILD} --binfmt-dir "$B"
        step status "$S" status --binfmt-dir "$B"
        echo 0 >"$B/qemu-arm"
        # Every 32-bit little-endian ELF: claims arm programs too.
        printf '%s\n' ':elf32le:M::\x7fELF\x01\x01::/bin/false:' >"$B/register"
        step wider "$S" install --dqemu-dir {BUILD} --binfmt-dir "$B"
        echo 0 >"$B/elf32le"
        step disabled "$S" install --dqemu-dir {BUILD} --binfmt-dir "$B"
        step after ls "$B"
    """)
    rc, out, err = res["same"]
    assert rc == 1 and "'qemu-arm' (interpreter /usr/bin/qemu-arm)" in err, err
    assert f"echo 0 > {tmp_path}/binfmt/qemu-arm" in err
    assert "also claimed by enabled entry qemu-arm" in res["status"][1]
    assert "dqemu-arm: not registered" in res["status"][1]
    assert res["wider"][0] == 1 and "'elf32le'" in res["wider"][2]
    assert res["disabled"][0] == 0, res["disabled"]
    assert sorted(res["after"][1].split()) == sorted(
        ["register", "status", "elf64be", "jar", "qemu-arm", "elf32le"] +
        [f"dqemu-{isa}" for isa in ISAS])
