"""A Task's /proc links read through its kept /proc/TID descriptor: never cached (each read
sees the thread as it is then), the same answers as reading /proc/TID by name, and the
descriptor closed when the tracer forgets the thread."""

import os
import re

from ptrace_support import our_open_files, trace

from syscalltrack.ptrace import proc
from syscalltrack.ptrace.seccomp import Policy

NR_UNLINK, NR_UNLINKAT = 87, 263


def test_links_are_read_afresh_at_every_call(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    os.symlink(tmp_path / "b", tmp_path / "link")
    task = proc.Task(os.getpid())
    here = os.getcwd()
    try:
        os.chdir(tmp_path / "a")
        assert task.readlink(b"cwd") == str(tmp_path / "a")
        assert task.real_directory(b"cwd", b"") == os.fsencode(tmp_path / "a")
        assert task.real_directory(b"cwd", b"deep/..") == os.fsencode(tmp_path / "a")
        assert task.real_directory(b"cwd", b"../link") == os.fsencode(tmp_path / "b")
        os.chdir(tmp_path / "b")  # the same names now lead elsewhere
        assert task.readlink(b"cwd") == str(tmp_path / "b")
        assert task.real_directory(b"cwd", b"") == os.fsencode(tmp_path / "b")
        os.rename(tmp_path / "b", tmp_path / "c")  # renamed under our feet
        assert task.readlink(b"cwd") == str(tmp_path / "c")
        assert task.real_directory(b"root", os.fsencode(tmp_path / "c")) == \
            os.fsencode(tmp_path / "c")
        assert task.readlink(b"root") == os.readlink("/proc/self/root")
        fd = os.open(tmp_path / "a", os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert task.readlink(b"fd/%d" % fd) == str(tmp_path / "a")
            assert task.real_directory(b"fd/%d" % fd, b"deep") == os.fsencode(tmp_path / "a/deep")
        finally:
            os.close(fd)
        for missing in (b"nothing/here", b"../a/deep/none"):
            try:
                task.real_directory(b"cwd", missing)
            except FileNotFoundError:
                pass
            else:
                raise AssertionError(f"{missing!r} resolved")
    finally:
        os.chdir(here)
        task.close()


def test_a_forked_child_reads_its_own_descriptors(tmp_path):
    """The kept /proc/self/fd names our table: a child process must not read ours."""
    task = proc.Task(os.getpid())
    assert task.real_directory(b"root", os.fsencode(tmp_path)) == os.fsencode(tmp_path)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            child = proc.Task(os.getpid())
            os.write(w, child.real_directory(b"root", os.fsencode(tmp_path)))
        except BaseException as exc:
            os.write(w, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        got = f.read()
    os.waitpid(pid, 0)
    task.close()
    assert got == os.fsencode(tmp_path)


def _proc_directories() -> list[str]:
    return our_open_files(lambda target: re.fullmatch(r"/proc/\d+", target))


def test_each_thread_directory_is_closed_when_the_thread_goes(helper, tmp_path):
    for i in range(4):
        (tmp_path / f"t.{i}").write_text("x")
    before = _proc_directories()
    r = trace([helper, "threads", "4", str(tmp_path / "t")],
              Policy(trace={"x86_64": {NR_UNLINK}}),
              probe=lambda c: (c.tid, c.cwd(), c.fd_path(0)))
    assert len(r.probed) == 4 and {cwd for _, cwd, _ in r.probed} == {os.getcwd()}
    assert _proc_directories() == before


def test_cwd_and_fd_paths_are_those_of_the_stopped_thread(helper, tmp_path):
    (tmp_path / "rel").write_text("x")
    r = trace([helper, "unlinkat", "rel"], Policy(trace={"x86_64": {NR_UNLINKAT}}),
              cwd=str(tmp_path),
              probe=lambda c: (c.cwd(), c.fd_path(1), os.readlink(f"/proc/{c.tid}/fd/1")))
    cwd, fd1, expected = r.probed[0]
    assert cwd == str(tmp_path) and fd1 == expected
