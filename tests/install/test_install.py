"""Test that dqemu installs like the tools it sits beside, and that its man
page cannot disagree with --help.

- dqemu(1)'s OPTIONS and ENVIRONMENT sections list exactly the rows
  `dqemu-ISA --help` prints, with the same metavar, variable and help text
  (parsed from the roff source: man(1) need not be installed);
- the page is free of groff/mandoc warnings (skipped, naming the missing
  tool, where neither is installed);
- `make install DESTDIR=... PREFIX=/usr` puts every file in place with the
  right mode and a working dqemu-arm; `make uninstall` removes exactly
  those files.
"""
import os
import re
import shutil
import stat

import pytest

from install_helpers import ISAS, REPO, dqemu_bins, man_build, make, run  # noqa: F401 (fixtures)

# "  --name METAVAR    DQEMU_VAR   help": dq_options_usage()'s columns.
USAGE_ROW = re.compile(r"^  --(\S+)(?: (\S+))?\s+(DQEMU_\S+|-)\s+(\S.*)$")
ROFF_ESCAPE = re.compile(r"\\(f[BIRP]|-|&|e|\(aq)")


def parse_usage(text):
    rows = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = USAGE_ROW.match(line)
        assert m, f"not an option row: {line!r}"
        name, metavar, env, help_ = m.groups()
        assert name not in rows, f"--{name} listed twice"
        rows[name] = (metavar, None if env == "-" else env, help_)
    assert rows, "no option rows"
    return rows


def help_section(isa, exe):
    r = run([exe, "--help"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("dqemu options"))
    end = next(i for i, line in enumerate(lines) if line.startswith(f"All qemu-{isa} options"))
    return "\n".join(lines[start + 1:end])


def unroff(s):
    def repl(m):
        return {"-": "-", "&": "", "e": "\\", "(aq": "'"}.get(m.group(1), "")
    assert "\\" not in ROFF_ESCAPE.sub("", s), f"unexpected escape in {s!r}"
    return ROFF_ESCAPE.sub(repl, s)


def section(lines, title):
    start = lines.index(f".SH {title}")
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith(".SH ")), len(lines))
    return lines[start + 1:end]


def parse_man(text):
    """OPTIONS rows as parse_usage() gives them, and ENVIRONMENT's names."""
    lines = text.splitlines()
    rows = {}
    opts = section(lines, "OPTIONS")
    for i, line in enumerate(opts):
        if line != ".TP":
            continue
        tag = unroff(opts[i + 1]).split(" ")
        assert tag[0].startswith("--") and len(tag) <= 2, opts[i + 1]
        body = []
        for b in opts[i + 2:]:
            if b == ".TP" or b.startswith((".SH", ".SS", ".PP")):
                break
            body.append(b)
        env = None
        if len(body) > 1:
            assert body[1:3] == [".br", body[2]] and len(body) == 3, body
            assert body[2].startswith("Environment: "), body
            env = unroff(body[2][len("Environment: "):])
        name = tag[0][2:]
        assert name not in rows, f"--{name} twice in the man page"
        rows[name] = (tag[1] if len(tag) == 2 else None, env, unroff(body[0]))
    env_lines = section(lines, "ENVIRONMENT")
    envs = {unroff(env_lines[i + 1]) for i, line in enumerate(env_lines)
            if line == ".TP" and "DQEMU_" in env_lines[i + 1]}
    return rows, envs


def assert_same_rows(help_rows, man_rows, what):
    only_help = sorted(set(help_rows) - set(man_rows))
    only_man = sorted(set(man_rows) - set(help_rows))
    assert not only_help, f"in {what} but not in dqemu.1: {only_help}"
    assert not only_man, f"in dqemu.1 but not in {what}: {only_man}"
    for name, row in help_rows.items():
        assert man_rows[name] == row, f"--{name}: {what} {row} != dqemu.1 {man_rows[name]}"


def test_man_page_has_every_usage_row(man_build):
    """mkman --usage is dq_options_usage(), the function --help calls."""
    page, mkman = man_build
    usage = parse_usage(run([mkman, "--usage"]).stdout)
    rows, envs = parse_man(page.read_text())
    assert_same_rows(usage, rows, "dq_options_usage()")
    assert envs == {env for _, env, _ in usage.values() if env}


@pytest.mark.parametrize("isa", ISAS)
def test_help_and_man_page_agree(isa, dqemu_bins, man_build):
    page, mkman = man_build
    exe = dqemu_bins[isa]
    help_rows = parse_usage(help_section(isa, exe))
    usage = parse_usage(run([mkman, "--usage"]).stdout)
    sources = [REPO / "dqemu" / "options.c", REPO / "dqemu" / "launch.h"]
    newest = max((p for p in sources if p.exists()), key=lambda p: p.stat().st_mtime)
    if help_rows != usage and exe.stat().st_mtime < newest.stat().st_mtime:
        pytest.skip(f"{exe} is older than {newest.relative_to(REPO)}: "
                    "run `make` to rebuild it before comparing its --help")
    assert_same_rows(help_rows, parse_man(page.read_text())[0], f"dqemu-{isa} --help")


@pytest.mark.parametrize("text, roff", [
    ("plain text", "plain text"),
    (".starts with a dot", "\\&.starts with a dot"),
    ("'starts with a quote", "\\&'starts with a quote"),
    ("a \\ backslash", "a \\e backslash"),
    ("with --master and -cpu (-L)", "with \\-\\-master and \\-cpu (\\-L)"),
    ("round-robin, 1..nodes-1", "round-robin, 1..nodes-1"),
    ("x\n.y", "x\n\\&.y"),
])
def test_roff_escaping(text, roff, man_build):
    assert run([man_build[1], "--escape", text]).stdout == roff
    assert unroff(roff) == text


def test_man_page_is_groff_clean(man_build):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed (Debian: groff-base)")
    r = run(["groff", "-man", "-Tutf8", "-ww", "-z", man_build[0]])
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_man_page_is_mandoc_clean(man_build):
    if not shutil.which("mandoc"):
        pytest.skip("mandoc is not installed (Debian: mandoc); groff checks the page")
    r = run(["mandoc", "-T", "lint", "-W", "warning", man_build[0]])
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_install_then_uninstall(tmp_path, man_build):
    dest = tmp_path / "stage"
    usr = dest / "usr"
    foreign = usr / "bin" / "not-ours"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("#!/bin/sh\n")
    make("install", f"DESTDIR={dest}", "PREFIX=/usr")

    execs = [f"bin/dqemu-{isa}" for isa in ISAS] + ["bin/dqemu-binfmt"]
    pages = ["share/man/man1/dqemu.1"] + [f"share/man/man1/dqemu-{isa}.1" for isa in ISAS]
    docs = ["share/doc/dqemu/README.md", "share/doc/dqemu/examples"]
    expected = sorted(["bin/not-ours"] + execs + pages + docs)
    assert files_under(usr) == expected
    for rel in execs:
        assert stat.S_IMODE((usr / rel).stat().st_mode) == 0o755, rel
    for rel in pages + docs:
        assert stat.S_IMODE((usr / rel).stat().st_mode) == 0o644, rel
    assert (usr / pages[0]).read_bytes() == man_build[0].read_bytes()
    for isa in ISAS:
        assert (usr / f"share/man/man1/dqemu-{isa}.1").read_text() == ".so man1/dqemu.1\n"
    assert (usr / docs[0]).read_bytes() == (REPO / "README.md").read_bytes()
    assert (usr / docs[1]).read_text() == run([man_build[1], "--examples"]).stdout
    assert "dqemu-arm --nodes 4 ./prog" in (usr / docs[1]).read_text()

    if shutil.which("man"):
        r = run(["man", "-M", usr / "share/man", "dqemu-riscv64"], MANPAGER="cat")
        assert r.returncode == 0 and "distributed QEMU" in r.stdout, r.stderr

    r = run([usr / "bin/dqemu-arm", "--version"])
    assert r.returncode == 0 and r.stdout.startswith("dqemu-arm version "), r.stdout + r.stderr
    # The installed script finds the installed interpreters by itself.
    r = run([usr / "bin/dqemu-binfmt", "install", "--dry-run"])
    assert r.returncode == 0, r.stderr
    assert [line.split(":")[6] for line in r.stdout.splitlines()] == \
        [str(usr / f"bin/dqemu-{isa}") for isa in ISAS]

    make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr")
    assert files_under(dest) == ["usr/bin/not-ours"]
    assert not (usr / "share/doc/dqemu").exists()


def test_default_prefix_is_usr_local(tmp_path):
    make("install", f"DESTDIR={tmp_path}")
    assert os.access(tmp_path / "usr/local/bin/dqemu-riscv64", os.X_OK)
    assert (tmp_path / "usr/local/share/man/man1/dqemu.1").is_file()
    make("uninstall", f"DESTDIR={tmp_path}")
    assert files_under(tmp_path) == []
