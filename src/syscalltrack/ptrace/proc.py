"""Cheap facts about a (stopped) tracee from /proc, as the kernel sees them right now.

Credentials are per thread (a raw ``setuid`` syscall changes one thread only), so the
credential helpers take a thread id.  Every helper raises ``OSError`` if the thread is gone.
"""

import errno
import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Credentials:
    """A thread's ids as /proc shows them at one instant (with its parent, read alongside)."""

    uid: int
    euid: int
    suid: int
    fsuid: int
    gid: int
    egid: int
    sgid: int
    fsgid: int
    ppid: int = 0


def _status(tid: int) -> dict[str, str]:
    with open(f"/proc/{tid}/status", "rb") as f:
        text = f.read().decode("utf-8", "replace")
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _field(text: bytes, key: bytes) -> list[bytes]:
    start = text.index(key) + len(key)
    return text[start:text.index(b"\n", start)].split()


def credentials(tid: int) -> Credentials:
    """Real, effective, saved and filesystem uids/gids, and the parent pid, in one read.

    Parses only the three lines it needs: this runs at every logged call.
    """
    text = _read(f"/proc/{tid}/status", 16384)
    uids = _field(text, b"\nUid:")
    gids = _field(text, b"\nGid:")
    ppid = _field(text, b"\nPPid:")
    return Credentials(*map(int, uids), *map(int, gids), int(ppid[0]))


def _read(path: str, size: int = 4096) -> bytes:
    """One small /proc file in three system calls (open() would add fstat, ioctl, lseek)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


class Task:
    """One traced thread's name and /proc links, read through descriptors kept open.

    A pread on an open descriptor is one system call where open+read+close of
    /proc/TID/stat are three and a costlier file.  It is never stale: the file
    is generated at each read from the thread's current name, so exec,
    prctl(PR_SET_NAME) and writes to /proc/TID/comm by anyone all show at once.
    The descriptors name the thread (its struct pid), not the number: once the
    thread is gone, reads fail (ESRCH, ENOENT) even if the number is reused.  The
    tracer closes them when it forgets the thread.

    The /proc/TID directory is kept open too (an O_PATH descriptor) for the links
    under it (`root`, `cwd`, `fd/N`): those are looked up afresh at every use, as
    the kernel evaluates a magic link at each path walk, so nothing is cached but
    the walk to /proc/TID itself.
    """

    __slots__ = ("_dir", "_fd", "_last", "tid")

    def __init__(self, tid: int):
        self.tid = tid
        self._fd = -1
        self._dir = -1  # /proc/TID (O_PATH), opened at the first link read
        self._last: bytes | None = None  # the name last read: what a dead thread was called

    def comm(self) -> bytes:
        """The thread's name now; once it is gone, the name last read (a call it died in
        is still shown with it), or OSError if none was ever read."""
        try:
            fd = self._fd
            name = os.pread(fd, 64, 0).removesuffix(b"\n") if fd >= 0 else self._read_comm()
        except OSError:
            if self._last is None:
                raise
            return self._last
        self._last = name
        return name

    def _read_comm(self) -> bytes:
        fd = self._fd
        if fd < 0:
            try:
                fd = self._fd = os.open(f"/proc/{self.tid}/comm", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE):
                    raise
                return _read(f"/proc/{self.tid}/comm").removesuffix(b"\n")  # no fd to keep
        return os.pread(fd, 64, 0).removesuffix(b"\n")

    def _directory(self) -> int:
        """The kept /proc/TID descriptor, or -1 when no descriptor is left to keep."""
        fd = self._dir
        if fd < 0:
            try:
                fd = self._dir = os.open(b"/proc/%d" % self.tid, _DIR_FLAGS)
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE):
                    raise
                return -1
        return fd

    def readlink(self, link: bytes) -> str:
        """The target of /proc/TID/`link` (`cwd`, `root`, `fd/3`)."""
        fd = self._directory()
        if fd < 0:
            return os.fsdecode(os.readlink(b"/proc/%d/%s" % (self.tid, link)))
        return os.fsdecode(os.readlink(link, dir_fd=fd))

    def real_directory(self, link: bytes, path: bytes) -> bytes:
        """Where `path`, resolved from the thread's /proc/TID/`link` (`root`, `cwd`,
        `fd/N`), leads: the path of that directory as our root sees it, after every
        symlink and `..`, resolved by the kernel now.  OSError if it is no directory
        (or does not exist).
        """
        fd = self._directory()
        if fd < 0:
            return real_directory(b"/proc/%d/%s/%s" % (self.tid, link, path))
        target = os.open(link + b"/" + path, _DIR_FLAGS, dir_fd=fd)
        try:
            return _fd_path(target)
        finally:
            os.close(target)

    def close(self) -> None:
        for name in ("_fd", "_dir"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)


_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_self_fd = -1  # our /proc/self/fd (O_PATH), for readlinks of our own descriptors


def _forget_self_fd() -> None:
    """In a forked child the kept descriptor names the parent's table: open ours anew."""
    global _self_fd
    _self_fd = -1


os.register_at_fork(after_in_child=_forget_self_fd)


def _fd_path(fd: int) -> bytes:
    """What our own descriptor `fd` refers to (its path as our root sees it)."""
    global _self_fd
    if _self_fd < 0:
        try:
            _self_fd = os.open(b"/proc/self/fd", _DIR_FLAGS)
        except OSError:
            return os.readlink(b"/proc/self/fd/%d" % fd)
    return os.readlink(b"%d" % fd, dir_fd=_self_fd)


def real_directory(path: bytes) -> bytes:
    """The path of the directory `path` leads to, after every symlink and `..`."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        return _fd_path(fd)
    finally:
        os.close(fd)


def comm_and_ppid(tid: int) -> tuple[bytes, int]:
    """The command name and parent pid from /proc/TID/stat: cheaper than status + comm."""
    text = _read(f"/proc/{tid}/stat")
    head, _, rest = text.rpartition(b") ")  # the name may itself hold ") "
    return head.partition(b" (")[2], int(rest.split(None, 2)[1])


def ppid(pid: int) -> int:
    return int(_status(pid)["PPid"])


def tgid(tid: int) -> int:
    return int(_status(tid)["Tgid"])


def tracer_pid(pid: int) -> int:
    return int(_status(pid)["TracerPid"])


def state(pid: int) -> str:
    """The one-letter scheduler state (R, S, T, t, Z, ...)."""
    return _status(pid)["State"][:1]


PF_KTHREAD = 0x00200000  # task flags, field 9 of /proc/PID/stat


def kernel_thread(pid: int) -> bool:
    """A kernel thread: /proc/PID/status says so (Kthread:, Linux 6.0+), else its flags."""
    flag = _status(pid).get("Kthread")
    if flag is not None:
        return flag == "1"
    rest = _read(f"/proc/{pid}/stat").rpartition(b") ")[2]
    return bool(int(rest.split()[6]) & PF_KTHREAD)


def cwd(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/cwd")


def fd_path(pid: int, fd: int) -> str:
    """What fd ``fd`` refers to: a path, or ``socket:[...]``/``pipe:[...]``/``anon_inode:...``."""
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def threads(pid: int) -> list[int]:
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
