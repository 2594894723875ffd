"""Cheap facts about a (stopped) tracee from /proc, as the kernel sees them right now.

Credentials are per thread (a raw ``setuid`` syscall changes one thread only), so the
credential helpers take a thread id.  Every helper raises ``OSError`` if the thread is gone.
"""

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Credentials:
    uid: int
    euid: int
    suid: int
    fsuid: int
    gid: int
    egid: int
    sgid: int
    fsgid: int


def _status(tid: int) -> dict[str, str]:
    with open(f"/proc/{tid}/status", "rb") as f:
        text = f.read().decode("utf-8", "replace")
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def credentials(tid: int) -> Credentials:
    """Real, effective, saved and filesystem uids/gids from the Uid:/Gid: lines."""
    st = _status(tid)
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    return Credentials(*uids, *gids)


def ppid(pid: int) -> int:
    return int(_status(pid)["PPid"])


def tgid(tid: int) -> int:
    return int(_status(tid)["Tgid"])


def tracer_pid(pid: int) -> int:
    return int(_status(pid)["TracerPid"])


def state(pid: int) -> str:
    """The one-letter scheduler state (R, S, T, t, Z, ...)."""
    return _status(pid)["State"][:1]


def comm(tid: int) -> str:
    with open(f"/proc/{tid}/comm", "rb") as f:
        return f.read().rstrip(b"\n").decode("utf-8", "replace")


def cwd(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/cwd")


def fd_path(pid: int, fd: int) -> str:
    """What fd ``fd`` refers to: a path, or ``socket:[...]``/``pipe:[...]``/``anon_inode:...``."""
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def threads(pid: int) -> list[int]:
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
