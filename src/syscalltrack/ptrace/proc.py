"""Cheap facts about a (stopped) tracee from /proc, as the kernel sees them right now.

Credentials are per thread (a raw ``setuid`` syscall changes one thread only), so the
credential helpers take a thread id.  Every helper raises ``OSError`` if the thread is gone.
"""

import errno
import os
from dataclasses import dataclass

from syscalltrack.ptrace import resolve


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
    under it (`cwd`, `fd/N`): those are looked up afresh at every use, as the
    kernel evaluates a magic link at each path walk.  The thread's root is kept
    as long as no traced call can have changed it (`roots_may_change`).
    """

    __slots__ = ("_dir", "_fd", "_last", "_root", "_root_ours", "_root_path", "tgid", "tid")

    def __init__(self, tid: int, tgid: int | None = None):
        self.tid = tid
        self.tgid = tid if tgid is None else tgid
        self._root = -1  # the thread's root (O_PATH), kept while `_roots_fixed`
        self._root_path = b"/"
        self._root_ours = True
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
                fd = self._dir = os.open(b"/proc/%d" % self.tid, resolve.DIR_FLAGS)
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

    def real_file(self, link: bytes, path: bytes, jail: bool = False) -> bytes:
        """As `real_directory`, for `path` naming any file, its final symlink followed
        (the file `open` or `execve` acts on).  OSError if there is no such file."""
        return self._resolve(link, path, jail, final=True)

    def real_directory(self, link: bytes, path: bytes, jail: bool = False) -> bytes:
        """Where `path`, resolved from the thread's /proc/TID/`link` (`root`, `cwd`,
        `fd/N`), leads for the thread: the path of that directory as our root sees it,
        after every symlink and `..`, resolved now as the kernel resolves it for the
        thread (its root, its /proc/self: see `resolve`).  With `jail`, `link` is the
        root of the walk (openat2's RESOLVE_IN_ROOT: `/`, `..` and absolute symlinks
        stay below it).  OSError if it is no directory (or does not exist), or if no
        descriptor is left to do it with.
        """
        # Every component a middle one, as in the caller's walk of its whole name: the
        # kernel refuses some symlinks only as a last one (fs.protected_symlinks).
        return self._resolve(link, (path or b".") + b"/.", jail, final=False)

    def _resolve(self, link: bytes, path: bytes, jail: bool, final: bool) -> bytes:
        root = self._root
        if link == b"root" and root >= 0 and _roots_fixed and not jail:
            # The usual case, an absolute name, first: it needs nothing but the kept root.
            flags = resolve.ANY_FLAGS if final else resolve.DIR_FLAGS
            found = resolve.fast(root, path, True, flags)
            return found if found is not None else resolve.walk(root, root, path, self.tid,
                                                                self.tgid, final)
        fd = self._directory()
        if fd < 0:
            raise OSError(errno.EMFILE, "no descriptor left for /proc/TID")
        root, _, ours = self._root_of(fd)
        flags = resolve.ANY_FLAGS if final else resolve.DIR_FLAGS
        start = -1
        try:
            if jail:
                start = os.open(link, resolve.DIR_FLAGS, dir_fd=fd)
                found = resolve.fast(start, path, True, flags)
                if found is None:
                    found = resolve.walk(start, start, path, self.tid, self.tgid, final)
                return found
            if link == b"root":
                found = resolve.fast(root, path, True, flags)
            else:
                start = os.open(link, resolve.DIR_FLAGS, dir_fd=fd)
                found = resolve.fast(start, path, False, flags) if ours else None
            if found is None:
                found = resolve.walk(root, root if start < 0 else start, path, self.tid,
                                     self.tgid, final)
            return found
        finally:
            if start >= 0:
                os.close(start)
            if root != self._root:
                os.close(root)

    def root(self) -> bytes:
        """The thread's root directory as our root sees it (b"/" unless in a chroot)."""
        fd = self._directory()
        if fd < 0:
            return os.readlink(b"/proc/%d/root" % self.tid)
        root, path, _ = self._root_of(fd)
        if root != self._root:
            os.close(root)
        return path

    def _root_of(self, fd: int) -> tuple[int, bytes, bool]:
        """A descriptor of the thread's root, its path, and whether it is our own root
        (the same directory: a path of "/" may be another mount namespace's root).  The
        descriptor kept while no root can have changed (`roots_may_change`), else a new
        one the caller closes."""
        if self._root >= 0:
            if _roots_fixed:
                return self._root, self._root_path, self._root_ours
            os.close(self._root)
            self._root = -1
        root = os.open(b"root", resolve.DIR_FLAGS, dir_fd=fd)
        try:
            path = resolve.fd_path(root)
            st = os.fstat(root)
        except OSError:
            os.close(root)
            raise
        ours = resolve.identity(st) == _our_root()
        if _roots_fixed:
            self._root, self._root_path, self._root_ours = root, path, ours
        return root, path, ours

    def close(self) -> None:
        for name in ("_fd", "_dir", "_root"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)


_roots_fixed = True  # no traced call has changed a root yet: Tasks may keep theirs


def _our_root() -> tuple[int, int]:
    """Our root directory's identity (sctrace never changes its root)."""
    return resolve.identity(os.stat(b"/"))


def roots_may_change() -> None:
    """A traced call (chroot, pivot_root, setns, unshare) may change some thread's root
    from now on: Tasks stop keeping their root's descriptor and look it up at each use.
    (pivot_root moves the root of every process that had the old one, and with
    CLONE_FS threads share theirs, so this is not per thread.)"""
    global _roots_fixed
    _roots_fixed = False


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


def threads(pid: int) -> list[int]:
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
