"""The slow walk of `ptrace.resolve` against the kernel's own: every name a test tree
offers gives the same directory both ways, and the same error where the kernel fails.
(The tests walk as our own process, whose `self` the kernel's walk gets right.)"""

import errno
import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syscalltrack.ptrace import proc, resolve

PARTS = ("a", "b", "up", "loop", "abs", "file", "..", ".", "", "missing", "self", "proc")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    top = tmp_path_factory.mktemp("walk")
    (top / "a" / "b").mkdir(parents=True)
    (top / "file").touch()
    os.symlink("a/b", top / "b")  # relative
    os.symlink("..", top / "a" / "up")
    os.symlink("loop", top / "loop")  # ELOOP
    os.symlink(str(top / "a"), top / "abs")  # absolute
    os.symlink("/proc", top / "proc")
    return top


def kernel(start: int, path: bytes):
    try:
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY, dir_fd=start)
    except OSError as exc:
        return exc.errno
    try:
        return resolve.fd_path(fd)
    finally:
        os.close(fd)


def ours(start: int, path: bytes):
    root = os.open("/", resolve.DIR_FLAGS)
    try:
        return resolve.walk(root, start, path, os.getpid(), os.getpid())
    except OSError as exc:
        return exc.errno
    finally:
        os.close(root)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PARTS), min_size=1, max_size=6), st.booleans())
def test_the_walk_agrees_with_the_kernel(tree, parts, absolute):
    path = "/".join(parts)
    path = os.fsencode(f"{tree}/{path}" if absolute else path)
    start = os.open(tree, resolve.DIR_FLAGS)
    try:
        assert ours(start, path) == kernel(start, path or b"."), path
    finally:
        os.close(start)


def test_magic_links_and_self(tree):
    """Through /proc/self and a magic link, as the kernel walks them for us."""
    start = os.open(tree, resolve.DIR_FLAGS)
    fd = os.open(tree / "a", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for path in (b"/proc/self/cwd", b"proc/self/fd/%d/b" % fd,
                     b"/proc/thread-self/root/%s" % os.fsencode(tree), b"/dev/fd/%d/.." % fd):
            assert ours(start, path) == kernel(start, path), path
        assert ours(start, b"proc/self/fd/%d/b" % fd) == os.fsencode(tree / "a" / "b")
    finally:
        os.close(fd)
        os.close(start)


def test_dotdot_stops_at_the_given_root(tree):
    """A root other than ours (a chroot): `..` stays there, absolute links start there."""
    root = os.open(tree / "a", resolve.DIR_FLAGS)
    try:
        jail = os.fsencode(tree / "a")
        assert resolve.walk(root, root, b"../../..", 1, 1) == jail
        assert resolve.walk(root, root, b"/b/../../up", 1, 1) == jail  # up -> .. of the root
        os.symlink("/b", tree / "a" / "inside")
        assert resolve.walk(root, root, b"inside", 1, 1) == jail + b"/b"
        assert resolve.fast(root, b"../inside/..", in_root=True) == jail
    finally:
        os.close(root)


def test_no_descriptor_is_left_open(tree):
    before = set(os.listdir("/proc/self/fd"))
    start = os.open(tree, resolve.DIR_FLAGS)
    for path in (b"a/b", b"loop", b"file/x", b"missing/x", b"/proc/self/cwd", b"abs/up/b"):
        ours(start, path)
    os.close(start)
    task = proc.Task(os.getpid())
    task.real_directory(b"cwd", b"..")
    task.close()
    assert set(os.listdir("/proc/self/fd")) <= before | {str(resolve._self_fd)}


def test_errors_are_the_kernels(tree):
    start = os.open(tree, resolve.DIR_FLAGS)
    try:
        assert ours(start, b"loop/x") == errno.ELOOP
        assert ours(start, b"file/x") == errno.ENOTDIR
        assert ours(start, b"missing/x") == errno.ENOENT
    finally:
        os.close(start)


def test_without_openat2_the_walk_does_it_all(tmp_path, monkeypatch):
    """Before Linux 5.6, or under a seccomp profile refusing openat2: every name is
    walked one component at a time, and still as the thread's own."""
    (tmp_path / "d").mkdir()
    child = subprocess.Popen(["sleep", "60"], cwd=tmp_path / "d")
    task = proc.Task(child.pid)

    def refused(*args):
        raise OSError(errno.ENOSYS, "no openat2")

    monkeypatch.setattr(resolve, "openat2", refused)
    monkeypatch.setattr(resolve, "_openat2", True)
    try:
        assert task.real_directory(b"root", b"/proc/self/cwd") == os.fsencode(tmp_path / "d")
        assert resolve._openat2 is False  # not tried again
        assert task.real_directory(b"cwd", b"..") == os.fsencode(tmp_path)
        assert task.real_directory(b"root", b"") == b"/"  # a name at the top: `/passwd`
    finally:
        task.close()
        child.kill()
        child.wait()
