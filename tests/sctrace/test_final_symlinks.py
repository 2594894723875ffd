"""PATH[n] of a call that follows a final symlink is the file the link leads to.

`open`, `execve`, `chmod`, `stat`... act on what a final symlink leads to; `unlink`,
`lstat`, `O_NOFOLLOW` act on the link. PATH[n] kept the last component as written, so
`ln -s kept link; echo > link` went around a rule on the kept file's open, and
`execve("/proc/self/fd/N")` around a rule on a program (found by review).
"""

import os
import sys

from sctrace_support import rule, sctrace


def _keep(call: str, path, index: int = 1, error: str = "-EACCES") -> str:
    return rule(call, f"type = FAIL\nerror_code = {error}", "keep",
                filter_=f'PATH[{index}] == "{path}"')


def _files(tmp_path):
    """kept (the file rules keep), link -> kept, chain -> sub/rel -> ../kept."""
    kept = tmp_path / "kept"
    kept.write_text("keep\n")
    (tmp_path / "link").symlink_to(kept)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "rel").symlink_to("../kept")
    (tmp_path / "chain").symlink_to(tmp_path / "sub" / "rel")
    return kept


def test_opening_a_symlink_to_a_kept_file_meets_the_rule(tmp_path):
    kept = _files(tmp_path)
    for name in ("link", "chain", "sub/rel", "./sub/../link"):
        run = sctrace(tmp_path, _keep("open", kept), "sh", "-c", f"echo PWNED > {name}",
                      cwd=tmp_path)
        assert run.code != 0 and "Permission denied" in run.err, (name, run)
        assert kept.read_text() == "keep\n", name


def test_calls_on_the_link_itself_are_not_the_kept_files(tmp_path):
    """unlink removes the link; an O_NOFOLLOW open refuses it (ELOOP) by itself."""
    kept = _files(tmp_path)
    rules = _keep("unlink", kept, error="-EPERM") + _keep("open", kept)
    script = ("import os, errno\n"
              "try:\n    os.open('link', os.O_RDONLY | os.O_NOFOLLOW)\n"
              "except OSError as e:\n    print(errno.errorcode[e.errno])\n"
              "os.unlink('link')\nprint('unlinked')\n")
    run = sctrace(tmp_path, rules, sys.executable, "-c", script, cwd=tmp_path)
    assert run.out == "ELOOP\nunlinked\n", run
    assert not (tmp_path / "link").exists() and kept.read_text() == "keep\n"


def test_chmod_and_stat_through_a_symlink_meet_the_rule(tmp_path):
    kept = _files(tmp_path)
    run = sctrace(tmp_path, _keep("chmod", kept), "chmod", "600", "link", cwd=tmp_path)
    assert run.code != 0 and oct(kept.stat().st_mode & 0o777) != "0o600", run
    run = sctrace(tmp_path, _keep("stat", kept), "stat", "-L", "link", cwd=tmp_path)
    assert run.code != 0 and "Permission denied" in run.err, run


def test_executing_a_program_through_a_symlink_or_its_descriptor_meets_the_rule(tmp_path):
    program = os.path.realpath("/usr/bin/id")
    (tmp_path / "myid").symlink_to(program)
    rules = _keep("execve", program)
    run = sctrace(tmp_path, rules, str(tmp_path / "myid"), "-u")
    assert run.code != 0 and run.out == "", run
    script = (f"import os\nfd = os.open({program!r}, os.O_RDONLY)\n"
              "try:\n    os.execv(f'/proc/self/fd/{fd}', ['id', '-u'])\n"
              "except OSError as e:\n    print(e.strerror)\n")
    run = sctrace(tmp_path, rules, sys.executable, "-c", script)
    assert run.out == "Permission denied\n", run


def test_a_hard_link_made_through_a_symlink_meets_the_rule(tmp_path):
    """`ln -L` (linkat with AT_SYMLINK_FOLLOW) links the file the symlink leads to; plain
    `ln` of a symlink links the symlink (review: the first went around a rule on `link`)."""
    kept = _files(tmp_path)
    rules = _keep("link", kept, error="-EPERM")
    run = sctrace(tmp_path, rules, "ln", "-L", "link", "hard", cwd=tmp_path)
    assert run.code != 0 and not (tmp_path / "hard").exists(), run
    run = sctrace(tmp_path, rules, "ln", "-P", "link", "hard", cwd=tmp_path)
    assert run.code == 0 and (tmp_path / "hard").is_symlink(), run


def test_unmounting_through_a_symlink_meets_the_rule(tmp_path):
    """umount2 follows a final symlink unless UMOUNT_NOFOLLOW (review)."""
    (tmp_path / "mnt").mkdir()
    (tmp_path / "mlink").symlink_to(tmp_path / "mnt")
    rules = _keep("umount2", tmp_path / "mnt", error="-EPERM")
    script = f"mount -t tmpfs none {tmp_path}/mnt && umount {tmp_path}/mlink; echo $?"
    run = sctrace(tmp_path, rules, "unshare", "-m", "sh", "-c", script)
    # umount(8) says EPERM as "must be superuser to unmount" and exits 32
    assert run.out.strip() == "32" and "mlink" in run.err, run

