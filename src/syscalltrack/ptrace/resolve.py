"""A tracee's directory name resolved as the kernel resolves it for that tracee.

PATH[n] must name the file the call acts on.  The walk is the kernel's own, but
made from sctrace, and two things differ from the tracee's walk:

- `/proc/self` and `/proc/thread-self` name the walker, and so does what leads
  there (`/dev/fd`, `/proc/mounts`): `rm /proc/self/cwd/passwd` would be
  resolved against sctrace's cwd;
- in a chroot, `..` stops at the tracee's root and an absolute symlink starts
  from it; walked from outside, both lead out of the jail.

The fast path lets the kernel walk with openat2(2): an absolute name from the
tracee's root with RESOLVE_IN_ROOT (which is how the kernel treats a chroot),
a relative one from its cwd or dirfd with RESOLVE_NO_MAGICLINKS when its root
is ours.  Both refuse magic links (`/proc/PID/cwd`, `fd/N`), so a walk that met
one fails; a walk that went through `self` lands in our own /proc/PID.  Either
way, and for a relative name in a chroot, `walk` goes one component at a time,
reading each symlink itself and putting the tracee where `self` would put us.
(A bind mount of a root inside itself is taken for the root by `..`.)
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_fstatfs = _libc.fstatfs
_SYS_OPENAT2 = 437
_OPEN_HOW = struct.Struct("QQQ")  # struct open_how: flags, mode, resolve
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
PROC_SUPER_MAGIC = 0x9FA0
DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
ANY_FLAGS = os.O_PATH | os.O_CLOEXEC  # any file, its final symlink followed
_LINK_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_SYMLINKS = 40  # the kernel's limit (ELOOP beyond it)
SHORTAGE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})  # ours, not the walk's
_openat2 = True  # until the kernel says it has none (before 5.6) or a profile refuses it


def openat2(dirfd: int, path: bytes, flags: int, resolve: int) -> int:
    """openat2(2): a descriptor for `path` below `dirfd`, walked under `resolve`."""
    how = _OPEN_HOW.pack(flags, 0, resolve)
    fd = _syscall(_SYS_OPENAT2, dirfd, path, how, _OPEN_HOW.size)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


_self_fd = -1  # our /proc/self/fd (O_PATH), for readlinks of our own descriptors
_OURS = b"/%d/" % os.getpid()  # a component of every path through our /proc/PID


def _after_fork() -> None:
    """In a forked child the kept descriptor and the pid are the parent's."""
    global _self_fd, _OURS
    _self_fd = -1
    _OURS = b"/%d/" % os.getpid()


os.register_at_fork(after_in_child=_after_fork)


def fd_path(fd: int) -> bytes:
    """What our own descriptor `fd` refers to (its path as our root sees it)."""
    global _self_fd
    if _self_fd < 0:
        try:
            _self_fd = os.open(b"/proc/self/fd", DIR_FLAGS)
        except OSError:
            return os.readlink(b"/proc/self/fd/%d" % fd)
    return os.readlink(b"%d" % fd, dir_fd=_self_fd)


def fast(start: int, path: bytes, in_root: bool, flags: int = DIR_FLAGS) -> bytes | None:
    """The kernel's walk of `path` from `start` (the tracee's root if `in_root`), or None
    when only `walk` can tell: the walk met a magic link or went through `self`, was
    refused (a symlink in a sticky directory, a FUSE mount: root may not follow what the
    tracee may), or openat2 is missing here (then it is not tried again)."""
    global _openat2
    if not _openat2:
        return None
    try:
        fd = openat2(start, path, flags,
                     RESOLVE_IN_ROOT if in_root else RESOLVE_NO_MAGICLINKS)
    except OSError as exc:
        if exc.errno in SHORTAGE:
            raise
        if exc.errno in (errno.ENOSYS, errno.EPERM):  # (a seccomp profile refusing it)
            _openat2 = False
        return None
    try:  # (fd_path, inlined once our /proc/self/fd is open)
        found = os.readlink(b"%d" % fd, dir_fd=_self_fd) if _self_fd >= 0 else fd_path(fd)
    finally:
        os.close(fd)
    return None if _OURS in found + b"/" else found


def walk(root: int, start: int, path: bytes, tid: int, tgid: int,
         final: bool = False) -> bytes:
    """`path` walked from `start` (the tracee's cwd, a dirfd, or its `root`) one
    component at a time, as the kernel walks it for thread `tid` of process `tgid`.
    With `final`, the last component may be any file (its symlinks followed), else
    it must be a directory.

    Descriptors `root` and `start` stay the caller's.  OSError as the tracee's
    walk would fail (ENOENT, ENOTDIR, ELOOP).
    """
    root_id = identity(os.fstat(root))
    todo = path.split(b"/")[::-1]
    cur = os.dup(root if path[:1] == b"/" else start)
    links = 0
    try:
        while todo:
            name = todo.pop()
            if name in (b"", b"."):
                continue
            if name == b"..":
                if identity(os.fstat(cur)) == root_id:
                    continue  # `..` of the root is the root
                cur = _step(cur, os.open(b"..", DIR_FLAGS, dir_fd=cur))
                continue
            nxt = os.open(name, _LINK_FLAGS, dir_fd=cur)
            mode = os.fstat(nxt).st_mode
            if stat.S_ISDIR(mode):
                cur = _step(cur, nxt)
                continue
            if not stat.S_ISLNK(mode):
                if final and not any(n not in (b"", b".") for n in todo):
                    cur = _step(cur, nxt)  # the file itself
                    break
                os.close(nxt)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
            links += 1
            if links > _MAX_SYMLINKS:
                os.close(nxt)
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            try:
                procfs = _is_procfs(cur)
                if procfs and name in (b"self", b"thread-self"):
                    target = _own_entry(cur, name, tid, tgid)  # (ours may not even exist)
                else:
                    target = os.readlink(b"", dir_fd=nxt)
            finally:
                os.close(nxt)
            if procfs and (target[:1] == b"/" or b":[" in target):
                # A magic link (/proc/PID/cwd, fd/N): the kernel jumps to the object.
                last = final and not any(n not in (b"", b".") for n in todo)
                cur = _step(cur, os.open(name, ANY_FLAGS if last else DIR_FLAGS, dir_fd=cur))
                continue
            if target[:1] == b"/":
                cur = _step(cur, os.dup(root))
            todo.extend(target.split(b"/")[::-1])
        return fd_path(cur)
    finally:
        os.close(cur)


def _step(old: int, new: int) -> int:
    os.close(old)
    return new


def identity(st: os.stat_result) -> tuple[int, int]:
    """Which directory a stat names (a bind mount of it elsewhere is the same one)."""
    return st.st_dev, st.st_ino


def _is_procfs(fd: int) -> bool:
    buf = ctypes.create_string_buffer(128)  # struct statfs: f_type first
    if _fstatfs(fd, buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return struct.unpack_from("q", buf)[0] == PROC_SUPER_MAGIC


def _own_entry(procfs: int, name: bytes, tid: int, tgid: int) -> bytes:
    """Where `self` or `thread-self` of the procfs at `procfs` leads for the tracee: its
    ids in that procfs's pid namespace.  ENOENT where it has none (as the kernel says)."""
    if os.fstat(procfs).st_dev != os.stat(b"/proc").st_dev:
        tgid, tid = _ids_in(procfs, tid)
    return b"%d" % tgid if name == b"self" else b"%d/task/%d" % (tgid, tid)


def _ids_in(procfs: int, tid: int) -> tuple[int, int]:
    """The tracee's (tgid, tid) in the pid namespace of another procfs: the level of its
    nested ids at which that procfs shows the same process (the same ids from there in)."""
    tgids, tids = _nested_ids(b"/proc/%d/status" % tid)
    for level in range(1, len(tgids)):
        try:
            there = _nested_ids(b"%d/task/%d/status" % (tgids[level], tids[level]), procfs)
        except (OSError, KeyError):
            continue
        if there == (tgids[level:], tids[level:]):
            return tgids[level], tids[level]
    raise OSError(errno.ENOENT, "the caller has no pid in that procfs's namespace")


def _nested_ids(status: bytes, dir_fd: int | None = None) -> tuple[list[int], list[int]]:
    """A status file's NStgid and NSpid: the ids from the outermost namespace in."""
    fd = os.open(status, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        text = os.read(fd, 16384)
    finally:
        os.close(fd)
    fields = dict(line.split(b":", 1) for line in text.splitlines() if b":" in line)
    return ([int(x) for x in fields[b"NStgid"].split()],
            [int(x) for x in fields[b"NSpid"].split()])
