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
    """One traced thread's name, read through a /proc/TID/comm descriptor kept open.

    A pread on an open descriptor is one system call where open+read+close of
    /proc/TID/stat are three and a costlier file.  It is never stale: the file
    is generated at each read from the thread's current name, so exec,
    prctl(PR_SET_NAME) and writes to /proc/TID/comm by anyone all show at once.
    The descriptor names the thread (its struct pid), not the number: once the
    thread is gone, reads fail with ESRCH even if the number is reused.  The
    tracer closes it when it forgets the thread.
    """

    __slots__ = ("_fd", "_last", "tid")

    def __init__(self, tid: int):
        self.tid = tid
        self._fd = -1
        self._last: bytes | None = None  # the name last read: what a dead thread was called

    def comm(self) -> bytes:
        """The thread's name now; once it is gone, the name last read (a call it died in
        is still shown with it), or OSError if none was ever read."""
        try:
            name = self._read_comm()
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

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


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
