"""PATH[n] is the file the call named when the kernel looked its name up: at its entry.

A call shown at its exit (an after rule, trace output) had its PATH[n] worked out after
it ran, from the cwd and root as the call left them: `chdir("x")` from /d showed /d/x/x,
`chroot("/srv/j")` /srv/j/srv/j, and an `execve` through a close-on-exec descriptor a
/proc/PID/fd/N the exec had closed.  And a descriptor on no directory (a pipe, a socket)
was made absolute: `fstat` of a pipe (AT_EMPTY_PATH) showed `/pipe:[123]`.
"""

import os
import shutil
from pathlib import Path

import pytest
from sctrace_support import rule, sctrace

from syscalltrack.engines.sctrace import run_command
from syscalltrack.engines.sctrace.context import CallView
from syscalltrack.rules import RuleSet, load_rules

PATH_AND_RESULT = ("--format", "%sname %path = %retval")

DESCRIPTORS_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* fds 100..103: a pipe, a socket, an eventfd, the file argv[1]; each printed as /proc
   shows it, then named with AT_EMPTY_PATH (the descriptor itself) and as the dirfd of
   relative names (ENOTDIR: none is a directory). */
int main(int argc, char **argv) {
    int p[2];
    if (argc < 2 || pipe(p) < 0)
        return 1;
    int fds[4] = {p[0], socket(AF_UNIX, SOCK_STREAM, 0), eventfd(0, 0),
                  open(argv[1], O_RDONLY)};
    struct stat st;
    char link[64], target[4096];
    for (int i = 0; i < 4; i++) {
        int fd = 100 + i;
        if (fds[i] < 0 || dup2(fds[i], fd) < 0)
            return 1;
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n < 0)
            return 1;
        target[n] = 0;
        printf("%s\n", target);
        syscall(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH);
        syscall(SYS_unlinkat, fd, "f", 0);
        syscall(SYS_unlinkat, fd, "a/../b", 0);
        syscall(SYS_unlinkat, fd, ".", 0);
    }
    return 0;
}
"""


def _python(tmp_path: Path, code: str, *options: str, rules: str | None = None,
            cwd: Path | None = None):
    return sctrace(tmp_path, rules, "python3", "-c", code, options=options,
                   cwd=cwd or tmp_path)


def test_a_relative_chdir_shown_at_its_exit_is_the_directory_it_entered(tmp_path):
    """Trace output (at the exit) showed `<tmp>/x/x`: the name from the cwd chdir made."""
    (tmp_path / "x" / "x").mkdir(parents=True)
    run = _python(tmp_path, "import os; os.chdir('x'); os.chdir('..')",
                  "-e", "trace=chdir", *PATH_AND_RESULT)
    assert run.code == 0, run.err
    assert run.log == [f'chdir "{tmp_path}/x" = 0', f'chdir "{tmp_path}" = 0']


def test_an_after_rule_on_chdir_filters_on_the_path_it_entered(tmp_path):
    """The filter of an after rule is evaluated at the exit: it compared `<tmp>/x/x`."""
    (tmp_path / "x" / "x").mkdir(parents=True)
    rules = rule("chdir", "type = LOG\nlog_format {%sname %path = %retval}", "cd",
                 f'PATH[1] == "{tmp_path}/x"', when="after")
    run = _python(tmp_path, "import os; os.chdir('x')", rules=rules)
    assert run.code == 0, run.err
    assert run.log == [f'chdir "{tmp_path}/x" = 0']


def test_chroot_shows_its_directory_once_and_later_names_are_in_the_jail(tmp_path):
    """`chroot("/j")` was resolved under the new root, /j/j; a relative chdir in the
    jail from the cwd it made, sub/sub."""
    jail = tmp_path / "jail"
    (jail / "sub" / "sub").mkdir(parents=True)
    code = f"import os; os.chroot({str(jail)!r}); os.chdir('/'); os.chdir('sub')"
    run = _python(tmp_path, code, "-e", "trace=chroot,chdir", *PATH_AND_RESULT)
    assert run.code == 0, run.err
    assert run.log == [f'chroot "{jail}" = 0', f'chdir "{jail}" = 0',
                       f'chdir "{jail}/sub" = 0']


@pytest.mark.parametrize("how", ["proc-fd", "fexecve"])
def test_an_exec_through_a_close_on_exec_descriptor_is_the_program_it_ran(tmp_path, how):
    """The exec closes the descriptor: at the exit /proc/self/fd/N was a dangling
    /proc/PID/fd/N, and execveat's dirfd (glibc's fexecve, AT_EMPTY_PATH) was gone."""
    program = os.path.realpath(shutil.which("true"))
    run_it = ("os.execv(f'/proc/self/fd/{fd}', ['true'])" if how == "proc-fd"
              else "os.execve(fd, ['true'], {})")
    code = (f"import os; fd = os.open({program!r}, os.O_RDONLY | os.O_CLOEXEC); "
            f"{run_it}")
    run = _python(tmp_path, code, "-e", "trace=execve,execveat", *PATH_AND_RESULT)
    assert run.code == 0, run.err
    assert run.log[-1].endswith(f' "{program}" = 0'), run.log


@pytest.fixture(scope="module")
def descriptors(c_program, tmp_path_factory) -> str:
    source = tmp_path_factory.mktemp("descriptors-src") / "descriptors.c"
    source.write_text(DESCRIPTORS_C)
    return c_program(source)


def test_a_descriptor_on_no_directory_is_not_made_absolute(tmp_path, descriptors):
    """The descriptor itself (AT_EMPTY_PATH) is shown as /proc shows it, `pipe:[123]`
    (it was `/pipe:[123]`); a name relative to it names nothing, as the kernel's walk
    fails with ENOTDIR: PATH is undecided, `?` (it was `pipe:[123]/f`, `/pipe:[123]/b`,
    `/pipe:[123]`).  A regular file's descriptor keeps its path."""
    regular = tmp_path / "regular"
    regular.write_text("")
    rules = (rule("newfstatat", "type = LOG\nlog_format {%sname %path}", "stat",
                  "PARAMS[1] >= 100")
             + rule("unlinkat", "type = LOG\nlog_format {%sname %path}", "unlink",
                    "PARAMS[1] < 103"))
    run = sctrace(tmp_path, rules, descriptors, str(regular))
    assert run.code == 0, run.err
    targets = run.out.splitlines()
    assert targets[0].startswith("pipe:[") and targets[1].startswith("socket:[")
    assert targets[2] == "anon_inode:[eventfd]" and targets[3] == str(regular)
    expected = []
    for target in targets[:3]:
        expected += [f'newfstatat "{target}"'] + ["unlinkat ?"] * 3
    expected.append(f'newfstatat "{regular}"')
    assert run.log == expected


@pytest.mark.parametrize("capture, rules, resolved", [
    ((), None, False),  # trace output without %path: nothing to work out
    (("paths",), None, True),  # %path shown at the exit
    ((), rule("chdir", "type = LOG", filter_='PATH[1] startswith "/"', when="after"), True),
    ((), rule("chdir", "type = LOG", filter_="PARAMS[1] == \"x\"", when="after"), False),
])
def test_paths_are_worked_out_at_entry_only_for_an_exit_that_uses_them(
        tmp_path, monkeypatch, capture, rules, resolved):
    kept = []
    real = CallView.keep_paths
    monkeypatch.setattr(CallView, "keep_paths", lambda view: kept.append(real(view)))
    (tmp_path / "x").mkdir()
    monkeypatch.chdir(tmp_path)
    code = run_command(load_rules_text(tmp_path, rules), [
        "python3", "-c", "import os; [os.chdir(d) for d in ('x', '..', 'x')]"],
        lambda event: None, print, trace_names={"chdir"}, capture=capture)
    assert code == 0
    assert bool(kept) is resolved


def load_rules_text(tmp_path: Path, text: str | None) -> RuleSet:
    if text is None:
        return RuleSet(())
    path = tmp_path / "r.rules"
    path.write_text(text)
    return load_rules(path)


RENAME_OVER_LINK = """
import os, sys
d = sys.argv[1]
os.rename(d + "/L/../x", d + "/L")  # L -> deep/d1 at entry; a plain file after
"""


@pytest.mark.parametrize("before", ["zzz", "other/x"])
def test_an_after_rule_sees_the_file_the_call_moved_whatever_the_before_rules(tmp_path, before):
    # At entry L/.. is deep (through the link): the call moves deep/x. After it L is a
    # file, and the same name, worked out then, would be a file it never touched. (A
    # before rule whose literal ends like the name worked it out at entry and the after
    # rule saw that; one whose literal could not match did not.)
    (tmp_path / "deep" / "d1").mkdir(parents=True)
    (tmp_path / "deep" / "x").touch()
    (tmp_path / "L").symlink_to(tmp_path / "deep" / "d1")
    rules = (rule("rename", "type = LOG\nlog_format {BEFORE %path}", name="b",
                  filter_=f'PATH[1] == "{tmp_path}/{before}"')
             + rule("rename", "type = LOG\nlog_format {AFTER %path}", name="a",
                    filter_='PATH[1] endswith "/x"', when="after"))
    run = sctrace(tmp_path, rules, "python3", "-c", RENAME_OVER_LINK, str(tmp_path))
    assert run.code == 0, run.err
    assert run.log == [f'AFTER "{tmp_path}/deep/x"']


def test_the_exit_line_of_a_call_logged_at_entry_too_shows_the_entry_path(tmp_path):
    # A before rule's line showed %path at entry (and used what was worked out for the
    # exit): the exit's line must still show the directory entered, not x/x.
    (tmp_path / "x" / "x").mkdir(parents=True)
    run = sctrace(tmp_path, rule("chdir", "type = LOG\nlog_format {BEFORE %path}"),
                  "python3", "-c", "import os; os.chdir('x')", cwd=tmp_path,
                  options=("-e", "trace=chdir", "--format", "%when %path = %retval"))
    assert run.code == 0, run.err
    assert run.log == [f'before "{tmp_path}/x" = ?', f'after "{tmp_path}/x" = 0']


def test_an_o_creat_through_a_dangling_link_shows_its_new_file_at_the_exit(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "made")
    rules = rule("open", "type = LOG\nlog_format {%path = %retval}", when="after",
                 filter_='PATH[1] endswith "/made"')
    run = sctrace(tmp_path, rules, "python3", "-c",
                  f"open({str(tmp_path / 'link')!r}, 'w').close()")
    assert run.code == 0, run.err
    assert len(run.log) == 1 and run.log[0].startswith(f'"{tmp_path}/made" = ')


def test_a_call_that_moves_no_name_is_not_worked_out_at_entry(tmp_path, monkeypatch):
    # open's name leads where it led at entry: its PATH is worked out at the exit, and only
    # for the calls the after rule keeps (here none fails), not at every entry.
    kept = []
    real = CallView.keep_paths
    monkeypatch.setattr(CallView, "keep_paths", lambda view: kept.append(real(view)))
    monkeypatch.chdir(tmp_path)
    code = run_command(load_rules_text(tmp_path, rule(
        "open", "type = LOG\nlog_format {%path}", filter_="RETVAL < 0", when="after")), [
        "python3", "-c", "[open(f'f{i}', 'w').close() for i in range(20)]"],
        lambda event: None, print, capture={"paths"})
    assert code == 0
    assert kept == []


RMDIR_THROUGH_ITS_LINK = """
import os
os.rmdir("L/../d1")  # L -> <tmp>/b/d1: L/.. is <tmp>/b, and the call removes b/d1, L's end
"""


def test_a_call_that_removed_what_its_name_went_through_is_said_at_its_exit(tmp_path):
    # Worked out at the exit, L dangles: PATH can only be taken as text (<tmp>/a/d1, where
    # nothing ever was), and an after rule on the real <tmp>/b/d1 misses the call. Worked
    # out at the entry of every removal instead, an `rm -r` under a rule on one file would
    # resolve every name it removes (the PATH guard works at the exit, with the result);
    # so sctrace says, once, that it had to guess.
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "d1").mkdir(parents=True)
    (tmp_path / "a" / "L").symlink_to(tmp_path / "b" / "d1")
    rules = rule("rmdir", "type = LOG\nlog_format {%path = %retval}", when="after")
    run = sctrace(tmp_path, rules, "python3", "-c", RMDIR_THROUGH_ITS_LINK,
                  cwd=tmp_path / "a")
    assert run.code == 0, run.err
    assert not (tmp_path / "b" / "d1").exists()
    assert run.log == [f'"{tmp_path}/a/d1" = 0']  # (the guess)
    assert len([n for n in run.notices if "resolved as text" in n
                and "removed or moved what the name went through" in n]) == 1, run.notices
