"""PATH[n] is resolved afresh at every call, through the descriptors sctrace keeps open
(/proc/TID of each traced thread, our own /proc/self/fd): whatever changes between two
calls -- the cwd, a directory renamed or swapped for a symlink, the root (chroot), a
thread's own cwd -- the next call is judged by where its path leads then."""

import os
import sys
import textwrap
import uuid

import pytest
from sctrace_support import rule, sctrace


def deny(path) -> str:
    return rule("unlink", "type = FAIL\nerror_code = -EPERM", "deny", f'PATH[1] == "{path}"')


# Runs under sctrace: each line of the script is an action; `unlink P` prints P's fate.
DRIVER = textwrap.dedent("""\
    import ctypes, os, sys, threading
    def unlink(path):
        try:
            os.unlink(path)
            print("deleted", path)
        except OSError as exc:
            print("refused" if exc.errno == 1 else f"error {exc.errno}", path)
    def own_cwd(directory, path):  # a thread with its own cwd: unshare(CLONE_FS)
        def run():
            if ctypes.CDLL(None, use_errno=True).unshare(0x200) != 0:
                raise OSError(ctypes.get_errno(), "unshare")
            os.chdir(directory)
            unlink(path)
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    for line in sys.argv[1].splitlines():
        word, *rest = line.split()
        if word == "unlink":
            unlink(*rest)
        elif word == "touch":
            open(rest[0], "w").close()
        elif word == "chdir":
            os.chdir(rest[0])
        elif word == "chroot":
            os.chroot(rest[0])
            os.chdir("/")
        elif word == "symlink":
            os.symlink(rest[0], rest[1])
        elif word == "rename":
            os.rename(rest[0], rest[1])
        elif word == "rm":
            os.remove(rest[0])
        elif word == "mkdir":
            os.mkdir(rest[0])
        elif word == "thread":
            own_cwd(*rest)
        else:
            raise SystemExit(f"unknown action {word}")
    """)


def run(tmp_path, rules, script):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    result = sctrace(tmp_path, rules, sys.executable, str(driver), textwrap.dedent(script),
                     cwd=tmp_path)
    assert result.code == 0, result.err
    return result.out.splitlines()


def test_a_relative_path_follows_each_chdir(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    out = run(tmp_path, deny(tmp_path / "a" / "victim"), """\
        touch a/victim
        touch b/victim
        chdir a
        unlink victim
        chdir ../b
        unlink victim
        touch victim
        chdir ../a
        unlink victim
        """)
    assert out == ["refused victim", "deleted victim", "refused victim"]
    assert (tmp_path / "a" / "victim").exists()


def test_a_directory_swapped_for_a_symlink_between_calls(tmp_path):
    for name in ("protected", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "victim").touch()
    out = run(tmp_path, deny(tmp_path / "protected" / "victim"), """\
        symlink other link
        unlink link/victim
        touch other/victim
        rm link
        symlink protected link
        unlink link/victim
        rm link
        symlink other link
        unlink link/victim
        """)
    assert out == ["deleted link/victim", "refused link/victim", "deleted link/victim"]
    assert (tmp_path / "protected" / "victim").exists()


def test_a_renamed_directory_is_seen_under_its_new_name(tmp_path):
    (tmp_path / "d").mkdir()
    out = run(tmp_path, deny(tmp_path / "moved" / "victim"), f"""\
        touch d/victim
        unlink d/victim
        touch d/victim
        rename d moved
        mkdir d
        touch d/victim
        unlink moved/victim
        unlink d/victim
        unlink {tmp_path}/moved/victim
        rename moved d2
        symlink d2 moved
        unlink moved/victim
        unlink d2/victim
        """)
    assert out == ["deleted d/victim", "refused moved/victim", "deleted d/victim",
                   f"refused {tmp_path}/moved/victim",
                   # moved is now a symlink to d2: the file is d2/victim, not moved/victim
                   "deleted moved/victim", "error 2 d2/victim"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_the_root_is_read_again_after_a_chroot(tmp_path):
    jail = tmp_path / "jail"
    jail.mkdir()
    (jail / "victim").touch()
    (jail / "other").touch()
    (tmp_path / "victim").touch()
    absent = f"/sctrace-test-absent-{uuid.uuid4().hex}"  # in the real root: no such file
    out = run(tmp_path, deny(jail / "victim"), f"""\
        unlink {jail}/victim
        unlink {absent}
        unlink /{tmp_path.relative_to("/")}/victim
        touch {tmp_path}/victim
        chroot {jail}
        unlink /victim
        unlink /other
        """)
    assert out == [f"refused {jail}/victim", f"error 2 {absent}", f"deleted {tmp_path}/victim",
                   "refused /victim", "deleted /other"]
    assert (jail / "victim").exists() and (tmp_path / "victim").exists()


def test_a_thread_with_its_own_cwd_is_resolved_against_it(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "victim").touch()
    out = run(tmp_path, deny(tmp_path / "b" / "victim"), f"""\
        chdir a
        thread {tmp_path}/b victim
        unlink victim
        thread {tmp_path}/b victim
        """)
    assert out == ["refused victim", "deleted victim", "refused victim"]
    assert (tmp_path / "b" / "victim").exists()
