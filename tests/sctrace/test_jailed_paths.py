"""PATH[n] of a process in a chroot: `..` stops at its root and absolute symlinks
resolve inside it, as the kernel resolves them for that process.  Walked from
sctrace's root instead, `/../etc/passwd` or a symlink to `/etc` led out of the jail,
and a rule on the jailed file was gone around (and a rule on the host's file fired
for the jail's)."""

import os

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
