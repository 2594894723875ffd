"""PATH[n] of a process in a chroot: `..` stops at its root and absolute symlinks
resolve inside it, as the kernel resolves them for that process.  Walked from
sctrace's root instead, `/../etc/passwd` or a symlink to `/etc` led out of the jail,
and a rule on the jailed file was gone around (and a rule on the host's file fired
for the jail's)."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from sctrace_support import rule, sctrace

# Loaded before the chroot: nothing is imported inside the jail.
JAILED_UNLINK = ("import os, sys; os.chroot(sys.argv[1]); os.chdir(sys.argv[2]); "
                 "[os.unlink(p) for p in sys.argv[3:]]; print('deleted')")


def deny(path) -> str:
    return rule("unlink", "type = FAIL\nerror_code = -1", "deny", f'PATH[1] == "{path}"')


@pytest.fixture
def jail(tmp_path):
    root = tmp_path / "jail"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("jailed\n")
    (root / "sub" / "deeper").mkdir(parents=True)
    os.symlink("/etc", root / "abs")  # absolute: inside the jail, it is the jail's /etc
    return root


@pytest.mark.parametrize("cwd, path", [
    ("/", "/../etc/passwd"),
    ("/", "/abs/passwd"),
    ("/", "../../etc/passwd"),
    ("/sub/deeper", "../../../../etc/passwd"),
    ("/sub", "../abs/passwd"),
])
def test_a_jailed_path_cannot_leave_the_jail(tmp_path, jail, cwd, path):
    run = sctrace(tmp_path, deny(jail / "etc" / "passwd"),
                  "python3", "-c", JAILED_UNLINK, str(jail), cwd, path)
    assert (jail / "etc" / "passwd").exists(), (path, run)
    assert "PermissionError" in run.err and run.code == 1, run


def test_a_rule_on_the_hosts_file_does_not_fire_for_the_jails(tmp_path, jail):
    host = tmp_path / "etc"
    host.mkdir()
    (host / "passwd").touch()
    run = sctrace(tmp_path, deny(host / "passwd"), "python3", "-c", JAILED_UNLINK,
                  str(jail), "/", "/../etc/passwd")
    assert run.out == "deleted\n" and run.code == 0, run
    assert not (jail / "etc" / "passwd").exists() and (host / "passwd").exists()


def test_the_log_shows_the_jailed_path_as_sctrace_sees_it(tmp_path, jail):
    rules = rule("unlink", "type = LOG\nlog_format {%path}", "log")
    run = sctrace(tmp_path, rules, "python3", "-c", JAILED_UNLINK, str(jail), "/sub",
                  "../abs/passwd")
    assert run.code == 0, run
    assert run.log == [f'"{jail}/etc/passwd"']


@pytest.mark.parametrize("path", [
    "/proc/self/cwd/passwd",
    "/proc/thread-self/cwd/passwd",
    "/dev/fd/3/passwd",  # /dev/fd -> /proc/self/fd
    "/proc/self/fd/3/../etc/passwd",
])
def test_proc_self_is_the_callers_not_sctraces(tmp_path, path):
    """`self` walked by sctrace would be sctrace: its cwd, its descriptor 3."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").touch()
    script = f"exec 3<{etc}; cd {etc} && rm -f {path}"
    run = sctrace(tmp_path, deny(etc / "passwd"), "sh", "-c", script, cwd="/")
    assert (etc / "passwd").exists(), (path, run)
    assert "Operation not permitted" in run.err, run


def test_proc_self_of_a_procfs_in_a_new_pid_namespace(tmp_path):
    """The caller's own procfs, mounted in its pid namespace: `self` is its pid there."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").touch()
    run = sctrace(tmp_path, deny(etc / "passwd"), "unshare", "--fork", "--pid",
                  "--mount-proc", "sh", "-c", f"cd {etc} && rm -f /proc/self/cwd/passwd",
                  cwd="/")
    assert (etc / "passwd").exists(), run
    assert "Operation not permitted" in run.err, run


def test_nested_pid_namespaces_self_is_the_procfs_own_level(tmp_path):
    """/proc mounted in a middle pid namespace: `self` is the caller's pid at that level,
    not its innermost one (pid 1 there would be another process, cwd /)."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").touch()
    inner = f"cd {etc} && rm -f /proc/self/cwd/passwd"
    run = sctrace(tmp_path, deny(etc / "passwd"), "unshare", "--fork", "--pid",
                  "--mount-proc", "sh", "-c", f"unshare --fork --pid sh -c '{inner}'",
                  cwd="/")
    assert (etc / "passwd").exists(), run
    assert "Operation not permitted" in run.err, run


def test_a_missing_directory_through_a_dirfd_in_a_jail(tmp_path, jail):
    """Text for a directory that does not exist, joined to a real dirfd: the jail once."""
    rules = rule("unlink", "type = LOG\nlog_format {%path}", "log")
    script = ("import os, sys; os.chroot(sys.argv[1]); d = os.open('/sub', os.O_RDONLY); "
              "os.unlink('nope/x', dir_fd=d)")
    run = sctrace(tmp_path, rules, "python3", "-c", script, str(jail))
    assert "FileNotFoundError" in run.err, run
    assert run.log == [f'"{jail}/sub/nope/x"']


@pytest.fixture
def protected_symlinks():
    knob = "/proc/sys/fs/protected_symlinks"
    with open(knob) as f:
        before = f.read().strip()
    with open(knob, "w") as f:
        f.write("1")
    yield
    with open(knob, "w") as f:
        f.write(before)


def test_a_symlink_only_the_caller_may_follow(protected_symlinks):
    """fs.protected_symlinks: in a sticky world-writable directory a symlink is followed
    only by its owner (or the directory's); root, resolving it as a last component, was
    refused and fell back to text.  The caller follows it as a middle one."""
    top = Path(tempfile.mkdtemp(prefix="sct-sticky-"))
    try:
        top.chmod(0o755)
        secret, sticky = top / "secret", top / "sticky"
        secret.mkdir()
        (secret / "passwd").write_text("secret\n")
        sticky.mkdir()
        sticky.chmod(0o1777)
        os.symlink(secret, sticky / "evil")
        os.lchown(sticky / "evil", 65534, 65534)
        rules = rule("open", "type = FAIL\nerror_code = -1", "deny",
                     f'PATH[1] == "{secret}/passwd"')
        run = sctrace(top, rules, "setpriv", "--reuid", "65534", "--regid", "65534",
                      "--clear-groups", "cat", f"{sticky}/evil/passwd", cwd="/")
        assert "secret" not in run.out and run.code != 0, run
        assert not run.notices, run
    finally:
        shutil.rmtree(top)
