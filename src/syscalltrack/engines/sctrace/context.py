"""One stopped call seen through a rule: the FilterContext and the Event it becomes.

Everything is fetched lazily and at most once, because a stop costs tens of
µs and a /proc read or a memory read is a good part of that: a filter on the
syscall alone reads nothing; `PARAMS[1] == "/etc/passwd"` reads one string.
What does not change from one call to the next (the signature, where each
argument comes from, how to normalise it) is worked out once per call number,
in a `CallShape`.
"""

from __future__ import annotations

import errno
import os
import posixpath
import struct
import time

from ...events import Cut, Event, SockAddr, Unreadable
from ...events.event import NO_PATHS
from ...ptrace import MemoryAccessError, Syscall
from ...ptrace import proc as procfs
from ...syscalls import Arg, ArgKind, FromStruct, Variant, filled_length
from ...syscalls import Syscall as SyscallSpec
from ...syscalls.constants import AF_INET, AF_INET6, AF_UNIX, AT_FDCWD

STRING_LIMIT = 4096
SOCKADDR_LIMIT = 128  # sizeof(struct sockaddr_storage): no address is longer
_SOCKADDR_SIZES = {AF_INET: 16, AF_INET6: 28}  # sockaddr_in, sockaddr_in6
_UNKNOWN_IDS = procfs.Credentials(-1, -1, -1, -1, -1, -1, -1, -1, -1)
_UNKNOWN_ID_FIELDS = (-1,) * 6  # uid, euid, suid, gid, egid, sgid
_OPEN_HOW = struct.Struct("<QQQ")  # struct open_how: flags, mode, resolve
_UNSET = object()
_new = tuple.__new__
_time_ns = time.time_ns
_PATH = ArgKind.PATH  # (bound once: an enum member lookup costs ~0.1 µs in 3.11)
_STRINGS = (_PATH, ArgKind.STRING)
_POINTERS = (*_STRINGS, ArgKind.BUFFER, ArgKind.STRARRAY, ArgKind.SOCKADDR)  # read from memory


class CallShape:
    """How rules bound through `variant` see calls of `real`: fixed per call number.

    `norms` holds each argument's (mask, sign bit) so that normalising a raw
    register to its C type (`Arg.normalise`) is two integer operations.
    """

    __slots__ = ("arguments", "at_entry", "filled", "head", "indexes", "may_follow",
                 "normalise", "norms", "pointers", "real", "signature", "sources", "struct",
                 "variant")

    def __init__(self, real: SyscallSpec, signature: tuple[Arg, ...], variant: Variant | None):
        self.real = real
        # The raw arguments from the registers, when they are not the registers themselves.
        self.arguments = real.arguments if real.registers is not None else None
        self.signature = signature
        self.head = (real.abi, real.nr, real.name, signature)  # an Event's first fields
        self.indexes = range(len(signature))
        self.variant = variant
        self.sources = tuple(range(len(signature))) if variant is None else variant.args
        self.struct = any(isinstance(src, FromStruct) for src in self.sources)
        self.norms = tuple(_norm(arg) for arg in signature)
        self.normalise = _normaliser(self.norms)
        # The arguments read from memory; the others decode to their integer.
        self.pointers = tuple(i for i, arg in enumerate(signature) if arg.kind in _POINTERS)
        # Socket addresses the kernel writes during the call (accept's peer): only
        # meaningful at the exit. (Those passed in have their length by value.)
        self.filled = tuple(i for i in self.indexes
                            if filled_length(signature, i) is not None)
        # Whether the call may act on where a final symlink leads (`CallView._follows_last`
        # says for each call): `unlink` never does, and need not ask.
        self.may_follow = any(n in known for n in (real.name, real.family) for known in (
            _FOLLOWING, _OPENS, _FOLLOWING_UNLESS, _FOLLOWING_IF))
        # The paths worked out at entry for the exit (`AT_ENTRY`, `CallView.keep_paths`).
        self.at_entry = tuple(i for i, arg in enumerate(signature)
                              if arg.kind is ArgKind.PATH) if real.family in AT_ENTRY else ()


def _norm(arg: Arg) -> tuple[int, int]:
    bits = arg.width * 8
    return (1 << bits) - 1, (1 << (bits - 1)) if arg.signed else 0


def _normaliser(norms: tuple[tuple[int, int], ...]):
    """One generated function normalising raw values (at least as many as `norms`) to
    their C types: `(value & mask) - ((value & sign) << 1)` per argument, written out
    with the constants folded, so no loop, zip or unpacking runs per call."""
    parts = []
    for i, (mask, sign) in enumerate(norms):
        parts.append(f"(r[{i}] & {mask}) - ((r[{i}] & {sign}) << 1)" if sign
                     else f"r[{i}] & {mask}")
    return eval("lambda r: (" + "".join(f"{part}, " for part in parts) + ")")


# Calls that can change a thread's root, after which a Task's kept root is stale
# (`procfs.roots_may_change`): stopped at when PATH[n] is resolved, even with no rule.
ROOT_CHANGERS = ("chroot", "pivot_root", "setns", "unshare")

# Calls whose own names no longer lead, after them, where they led at entry: they move
# the cwd or root a name starts from (`chdir("x")` from /tmp, resolved after it, would
# be /tmp/x/x; `chroot("/srv/j")` /srv/j/srv/j), close descriptors a name may go through
# (execve: a close-on-exec dirfd, `/proc/self/fd/3`), or move what a name goes through
# (a rename over a symlinked directory of its own name; move_mount of the mount its from
# name is in, or reaches through its dirfd or cwd). The PATH[n] their exit tests or
# shows is worked out at entry. For any other call the exit's PATH is the entry's but
# for races with other processes, and it is worked out then (an O_CREAT through a
# dangling final symlink has made its file by then).
AT_ENTRY = frozenset({"chdir", "fchdir", "chroot", "pivot_root", "execve", "execveat",
                      "rename", "renameat", "renameat2", "move_mount"})

# PATH[n] resolved as text for a reason other than the caller's own walk failing (the
# call will fail then, and text is right): sctrace out of descriptors or memory, or
# refused a directory the caller may enter, or, at the exit of a call that succeeded, a
# directory gone since (the call removed or moved what its own name went through:
# `rmdir("L/../d")` with L a link to that d; or another process did).  There a symlinked
# directory can go around a rule: the first such error, which the engine reports once
# (RuleConsumer.after_stop).
# Module state: one tracer per process.
text_fallbacks: list[OSError] = []
_CALL_FAILS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG})
_GONE = ("its directory no longer led anywhere when the call returned: the call, or another "
         "process, removed or moved what the name went through")
_BELOW_DIRFD = 0x08 | 0x10  # openat2's RESOLVE_BENEATH | RESOLVE_IN_ROOT
# Calls that act on what a final symlink leads to, by name or family (i386 `stat64` is a
# `stat`, `utimensat_time64` a `utimensat`): always; the opens, unless O_NOFOLLOW or
# O_CREAT|O_EXCL (their flags argument; openat2's are in open_how); some unless a bit of
# their flags argument says not to; some only if one says to.
_FOLLOWING = frozenset({
    "creat", "execve", "chmod", "fchmodat", "chown", "stat", "access", "faccessat",
    "truncate", "utime", "utimes", "futimesat", "chdir", "chroot", "statfs", "setxattr",
    "getxattr", "listxattr", "removexattr", "swapon", "swapoff", "acct", "uselib", "mount",
    "pivot_root", "quotactl", "umount"})  # (i386 umount: no flags, it always follows)
_OPENS = {"open": 1, "openat": 2, "openat2": 2}
_O_NOFOLLOW, _O_CREAT_EXCL = 0o400000, 0o100 | 0o200
_AT_SYMLINK_NOFOLLOW, _AT_SYMLINK_FOLLOW = 0x100, 0x400
_UMOUNT_NOFOLLOW, _FSPICK_SYMLINK_NOFOLLOW, _FAN_MARK_DONT_FOLLOW = 0x8, 0x2, 0x4
# An MNT_EXPIRE umount2 is taken as written too: opening the mount to find it would touch
# it, and a mount touched between two such calls never expires (mntput clears the mark).
_MNT_EXPIRE = 0x4
_IN_DONT_FOLLOW = 0x02000000
_FOLLOWING_UNLESS = {  # call: (flags argument, the bit that says "do not follow")
    "execveat": (4, _AT_SYMLINK_NOFOLLOW), "fchmodat2": (3, _AT_SYMLINK_NOFOLLOW),
    "fchownat": (4, _AT_SYMLINK_NOFOLLOW), "newfstatat": (3, _AT_SYMLINK_NOFOLLOW),
    "statx": (2, _AT_SYMLINK_NOFOLLOW), "faccessat2": (3, _AT_SYMLINK_NOFOLLOW),
    "utimensat": (3, _AT_SYMLINK_NOFOLLOW), "setxattrat": (2, _AT_SYMLINK_NOFOLLOW),
    "getxattrat": (2, _AT_SYMLINK_NOFOLLOW), "listxattrat": (2, _AT_SYMLINK_NOFOLLOW),
    "removexattrat": (2, _AT_SYMLINK_NOFOLLOW), "file_getattr": (4, _AT_SYMLINK_NOFOLLOW),
    "file_setattr": (4, _AT_SYMLINK_NOFOLLOW), "open_tree": (2, _AT_SYMLINK_NOFOLLOW),
    "open_tree_attr": (2, _AT_SYMLINK_NOFOLLOW), "mount_setattr": (2, _AT_SYMLINK_NOFOLLOW),
    "umount2": (1, _UMOUNT_NOFOLLOW | _MNT_EXPIRE), "fspick": (2, _FSPICK_SYMLINK_NOFOLLOW),
    "fanotify_mark": (1, _FAN_MARK_DONT_FOLLOW), "inotify_add_watch": (2, _IN_DONT_FOLLOW)}
_MOVE_MOUNT_F_SYMLINKS, _MOVE_MOUNT_T_SYMLINKS = 0x01, 0x10
_FOLLOWING_IF = {  # call: per path argument (None: its only one), (flags argument, the bit)
    "linkat": {1: (4, _AT_SYMLINK_FOLLOW)},  # (never its new name: it must not exist)
    "name_to_handle_at": {None: (4, _AT_SYMLINK_FOLLOW)},
    "move_mount": {1: (4, _MOVE_MOUNT_F_SYMLINKS), 3: (4, _MOVE_MOUNT_T_SYMLINKS)}}


class CallView:
    """The call as a rule on `shape.signature` sees it (classic arguments for a variant).

    Implements `rules.FilterContext`; `event()` turns it into the shared
    `Event` once a rule matched.
    """

    __slots__ = ("_args", "_call", "_comm", "_creds", "_cwd", "_early", "_how", "_joined",
                 "_paths", "_ppid", "_raw", "_values", "retval", "shape")

    def __init__(self, call: Syscall, shape: CallShape):
        self._call = call
        self.shape = shape
        # The real call's raw arguments (i386 ones may span two registers, or move).
        self._raw = shape.arguments(call.args) if shape.arguments else call.args
        self.retval = None  # until at_exit
        self._args = None
        self._values = None
        self._paths = None
        self._creds = None
        self._comm = None
        self._ppid = None
        self._cwd = _UNSET
        self._joined = None  # argument index -> the relative name joined to its dirfd's path
        self._how = _UNSET  # openat2's open_how, read once
        self._early = None  # index -> (PATH, text fallback error) (`keep_paths`)

    @property
    def variant(self) -> Variant | None:
        return self.shape.variant

    def at_exit(self, retval: int) -> None:
        """The same call at its exit: the arguments saved at entry, plus RETVAL.

        Strings stay the entry's (after the call the memory may be gone or reused),
        and so do the PATH[n] `keep_paths` worked out then (`AT_ENTRY`); any other is
        worked out again when asked, whatever a before rule read at entry. The ids,
        name and cwd are read again, as the call may have changed them (setuid,
        execve, chdir), and so are the socket addresses the call filled in.
        """
        self.retval = retval
        self._creds = self._comm = self._ppid = None
        self._paths = None  # (worked out at entry: `_early`; else as the call left the files)
        self._cwd = _UNSET
        if self.shape.filled and self._values is not None:
            values = list(self._values)
            for index in self.shape.filled:
                values[index] = _UNSET
            self._values = values

    @property
    def args(self) -> tuple[int, ...]:
        """The arguments normalised to their C types (computed at first use)."""
        args = self._args
        if args is None:
            shape = self.shape
            raw = self._raw
            if shape.variant is not None:
                raw = shape.variant.classic_args(raw, self._struct_fields() if shape.struct
                                                 else None)
            if len(raw) >= len(shape.norms):  # (raw holds all 6 registers)
                args = self._args = shape.normalise(raw)
            else:
                args = self._args = tuple([
                    (value & mask) - ((value & sign) << 1)
                    for value, (mask, sign) in zip(raw, shape.norms, strict=False)])
        return args

    def _struct_fields(self) -> dict[FromStruct, int]:
        how = self._open_how()
        return {} if how is None else {FromStruct.OPEN_HOW_FLAGS: how[0],
                                       FromStruct.OPEN_HOW_MODE: how[1]}

    def _open_how(self) -> tuple[int, int, int] | None:
        """openat2's `struct open_how` (flags, mode, resolve); None if unreadable.  Read
        once: its classic arguments, its walk and its final symlink all need it."""
        how = self._how
        if how is _UNSET:
            try:
                how = _OPEN_HOW.unpack(self._call.memory.read(self._raw[2], _OPEN_HOW.size))
            except MemoryAccessError:
                how = None
            self._how = how
        return how

    def _follows_last(self, index: int) -> bool:
        """Whether the call acts on what a final symlink of path argument `index` leads
        to (`open`, `execve`, `chmod`, `stat`) rather than on the link (`unlink`,
        `lstat`, `O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`).  Asked only where `shape.may_follow`
        (the callers test it first, at no call's cost)."""
        real = self.shape.real
        name, family = real.name, real.family
        if name in _FOLLOWING or family in _FOLLOWING:
            return True
        if name in _OPENS:
            flags = self._raw[_OPENS[name]] if name != "openat2" else (
                self._open_how() or (0, 0, 0))[0]
            return not (flags & _O_NOFOLLOW or flags & _O_CREAT_EXCL == _O_CREAT_EXCL)
        unless = _FOLLOWING_UNLESS.get(name) or _FOLLOWING_UNLESS.get(family)
        if unless is not None:
            return not self._raw[unless[0]] & unless[1]
        per_path = _FOLLOWING_IF.get(name)
        if per_path is None:
            return False
        only_if = per_path.get(None) or per_path.get(self.shape.sources[index])
        return only_if is not None and bool(self._raw[only_if[0]] & only_if[1])

    def _jailed(self) -> bool:
        """An openat2 whose walk stays below its dirfd (RESOLVE_IN_ROOT, or BENEATH):
        `/` names the dirfd, not the root.  BENEATH is resolved as IN_ROOT: the same
        file where the kernel allows the walk; where it refuses it (EXDEV, an absolute
        name or a `..` out), a rule on the file IN_ROOT gives may answer first.  Asked
        only of an openat2 (the caller tests the family first)."""
        how = self._open_how()
        return how is not None and bool(how[2] & _BELOW_DIRFD)

    # -- FilterContext
    def arg(self, index: int) -> int:
        return self.args[index]

    def string(self, index: int) -> bytes | None:
        value = self.value(index)
        return value if value.__class__ is bytes or value.__class__ is Cut else None

    def path(self, index: int) -> bytes | None:
        """PATH[index] (`_walk`), or what `keep_paths` found for it at entry (cached)."""
        paths = self._paths
        if paths is None:
            paths = self._paths = {}
        elif index in paths:
            return paths[index]
        early = self._early
        if early is None or index not in early:
            found = paths[index] = self._walk(index, text_fallbacks)
            return found
        found, error = early[index]
        if error is not None:
            early[index] = (found, None)
            if not text_fallbacks:
                text_fallbacks.append(error)  # said once (RuleConsumer.after_stop)
        paths[index] = found
        return found

    def path_last(self, index: int) -> bytes | None:
        """The name's last component as written: where the call acts on it (unlink,
        lstat), not on what a final symlink leads to, PATH[index] ends with it (see
        `_walk`), and a filter can rule a literal out before resolving anything."""
        name = self._as_written(index)
        if name is None:
            return None
        last = name.rpartition(b"/")[2]
        if last in (b"", b".", b"..") or (self.shape.may_follow and self._follows_last(index)):
            return None
        return last

    @property
    def uid(self) -> int:
        return self._credentials().uid

    @property
    def euid(self) -> int:
        return self._credentials().euid

    @property
    def suid(self) -> int:
        return self._credentials().suid

    @property
    def gid(self) -> int:
        return self._credentials().gid

    @property
    def egid(self) -> int:
        return self._credentials().egid

    @property
    def sgid(self) -> int:
        return self._credentials().sgid

    @property
    def pid(self) -> int:
        return self._call.pid

    @property
    def tid(self) -> int:
        return self._call.tid

    @property
    def ppid(self) -> int:
        if self._creds is not None:
            return self._creds.ppid
        if self._ppid is None:
            try:
                self._ppid = procfs.comm_and_ppid(self._call.tid)[1]
            except OSError:
                self._ppid = 0
        return self._ppid

    @property
    def comm(self) -> bytes:
        if self._comm is None:
            try:
                self._comm = self._call.task.comm()
            except OSError:
                self._comm = b""
        return self._comm

    @property
    def cwd(self) -> bytes | None:
        if self._cwd is _UNSET:
            try:
                self._cwd = os.fsencode(self._call.cwd())
            except OSError:
                self._cwd = None
        return self._cwd

    # -- decoding
    def value(self, index: int):
        """Argument `index` decoded by its kind (cached)."""
        values = self._values
        if values is None:
            values = self._values = [_UNSET] * len(self.shape.signature)
        value = values[index]
        if value is _UNSET:
            value = values[index] = self._decode(index)
        return value

    def values(self) -> tuple:
        """Every argument decoded (strings read now: the memory may change later).

        Kept as a tuple once whole: an after rule's event asks again at the exit.
        """
        values = self._values
        if values.__class__ is tuple:
            return values
        if values is None:  # no filter looked at any: decode them in one go
            values = self.args  # an integer argument decodes to itself
            pointers = self.shape.pointers
            if pointers:
                values = list(values)
                decode = self._decode
                for i in pointers:
                    values[i] = decode(i)
                values = tuple(values)
        else:
            value = self.value
            values = tuple([value(i) for i in self.shape.indexes])
        self._values = values
        return values

    def keep_paths(self) -> None:
        """PATH[n] of an `AT_ENTRY` call (chdir, chroot, execve, rename) now, at its
        entry, for an exit that tests or shows it: after the call the name may lead
        elsewhere.  Kept aside until asked for: a text fallback is reported only if
        some filter or output uses the path."""
        early = self._early = {}
        paths = self._paths or {}
        for index in self.shape.at_entry:
            if index in paths:  # (a before rule's filter read it)
                early[index] = (paths[index], None)
            else:
                errors: list[OSError] = []
                early[index] = (self._walk(index, errors), errors[0] if errors else None)

    def _decode(self, index: int):
        shape = self.shape
        arg = shape.signature[index]
        kind = arg.kind
        if kind not in _POINTERS or (self.retval is None and index in shape.filled):
            return self.args[index]  # (an address the call has yet to fill in: its pointer)
        # A pointer is the raw register (i386 ones arrive as 32 bits); never a struct field.
        addr = self._raw[shape.sources[index]]
        if addr == 0:
            return None
        memory = self._call.memory
        try:
            if kind in _STRINGS:
                name, cut = memory.read_string(addr, STRING_LIMIT)
                name = Cut(name) if cut else name
                if kind is _PATH and shape.variant is not None and name[:1] != b"/":
                    return self._on_dirfd(index, name)
                return name
            if kind is ArgKind.BUFFER:
                length = self.args[arg.length_arg] if arg.length_arg is not None else 0
                size = max(0, min(length, STRING_LIMIT))
                return memory.read(addr, size) if size else b""
            if kind is ArgKind.STRARRAY:
                width = 4 if shape.real.abi == "i386" else 8
                return tuple(memory.read_string_array(
                    addr, max_items=256, limit=STRING_LIMIT, pointer_size=width)[0])
            return self._sockaddr(addr, arg)
        except MemoryAccessError:
            return Unreadable(addr)

    def _sockaddr(self, addr: int, arg: Arg) -> SockAddr:
        """An address passed in is read as long as its length argument says; one the
        kernel fills in (accept & co. have a length pointer) by what its family needs."""
        memory = self._call.memory
        if arg.length_arg is not None:
            size = max(0, min(self.args[arg.length_arg], SOCKADDR_LIMIT))
            return SockAddr.decode(memory.read(addr, size) if size else b"")
        head = memory.read(addr, 2)
        family = int.from_bytes(head, "little")
        if family == AF_UNIX:  # up to its NUL: the rest may not be mapped
            return SockAddr.decode(head + memory.read_string(addr + 2, 108)[0])
        size = _SOCKADDR_SIZES.get(family)
        return SockAddr.decode(memory.read(addr, size) if size else head)

    def sockaddr(self, index: int) -> SockAddr | None:
        """The filter context's socket address: decoded once, like every value."""
        value = self.value(index)
        return value if value.__class__ is SockAddr else None

    def _on_dirfd(self, index: int, name: bytes) -> bytes:
        """A classic rule's relative path from an *at call, joined to the path of a real
        dirfd: the classic call has no dirfd, so its path alone must name the file
        (`rm -r` unlinks `passwd` relative to the directory it opened)."""
        dirfd = self._dirfd(index)
        base = None if dirfd == AT_FDCWD else self._dirfd_path(dirfd)
        if base is None:  # (no such descriptor: the call fails with EBADF)
            return name
        if self._joined is None:
            self._joined = {}
        self._joined[index] = name
        return base.rstrip(b"/") + b"/" + name

    def _dirfd_path(self, dirfd: int) -> bytes | None:
        """Where descriptor `dirfd` of the caller leads (None: no such descriptor)."""
        try:
            return os.fsencode(self._call.fd_path(dirfd))
        except OSError:
            return None

    def _dirfd(self, index: int) -> int:
        """The directory descriptor path argument `index` is relative to (AT_FDCWD if none)."""
        shape = self.shape
        if shape.variant is not None:
            dirfd_arg = shape.variant.dirfd_of(shape.sources[index])
        else:
            dirfd_arg = _own_dirfd(shape.real, index)
        if dirfd_arg is None:
            return AT_FDCWD
        return shape.real.args[dirfd_arg].normalise(self._raw[dirfd_arg])

    def _as_written(self, index: int) -> bytes | None:
        """Path argument `index` as the caller wrote it (a classic rule's view of an *at
        call shows it joined to its dirfd: `_on_dirfd`); None if it is no string read."""
        values = self._values  # (`value`, inlined for a name already read)
        value = _UNSET if values is None else values[index]
        if value is _UNSET:
            value = self.value(index)
        if value.__class__ is not bytes:
            return None
        return self._joined.get(index, value) if self._joined else value

    def _walk(self, index: int, fallbacks: list[OSError]) -> bytes | None:
        """PATH[n]: the absolute path of the file the call names.

        Its directories are resolved as the kernel resolves them (symlinks, `..`,
        the dirfd, the cwd), by opening them through the caller's /proc links while
        it is stopped; the last component stays as written (unlink, lstat and
        O_NOFOLLOW act on a symlink itself).  Paths read as sctrace's root sees them,
        as CWD does.  A directory that cannot be opened (it does not exist: the call
        will fail) is normalised as text; the first time that happens for another
        reason (a shortage of ours) the error goes to `fallbacks`.
        """
        name = self._as_written(index)
        if name is None:
            return None
        jail = self.shape.real.family == "openat2" and self._jailed()
        if name[:1] == b"/" and not jail:
            link = b"root"
        else:
            dirfd = self._dirfd(index)
            link = b"cwd" if dirfd == AT_FDCWD else b"fd/%d" % dirfd
        head, _, last = name.rpartition(b"/")
        if last in (b"", b".", b".."):  # the name is a directory itself
            head, last = name, b""
        elif self.shape.may_follow and self._follows_last(index):
            try:  # (the file a final symlink leads to: what open or execve acts on)
                return self._call.task.real_file(link, name, jail)
            except OSError:
                pass  # no such file (yet: O_CREAT through a dangling link): as written
        try:
            directory = self._call.task.real_directory(link, head, jail)
        except OSError as exc:
            if not fallbacks:
                if exc.errno not in _CALL_FAILS:
                    fallbacks.append(exc)
                elif self.retval is not None and self.retval >= 0:
                    fallbacks.append(OSError(exc.errno, _GONE))
            return self._lexical(index, name, jail)
        if not last:
            return directory
        return directory.rstrip(b"/") + b"/" + last

    def _start_path(self, index: int) -> bytes | None:
        """Where a relative name of argument `index` starts: its dirfd's path, or the cwd
        (None: no such descriptor)."""
        dirfd = self._dirfd(index)
        return self.cwd if dirfd == AT_FDCWD else self._dirfd_path(dirfd)

    def _lexical(self, index: int, name: bytes, jail: bool = False) -> bytes | None:
        """`name` made absolute against its dirfd or the cwd, and normalised as text,
        `..` stopping at the caller's root (a chroot) as the kernel's walk does, or at
        the dirfd for a `jail` (openat2 below its dirfd).

        A dirfd whose /proc link is no path (`pipe:[123]`, `socket:[45]`,
        `anon_inode:[eventfd]`) is no place to start, and is not made absolute: an
        empty name (AT_EMPTY_PATH: `fstat` of a pipe) is the descriptor itself, shown
        as /proc shows it; any other is None (undecided, as with a closed dirfd), as
        the kernel's walk from it fails (ENOTDIR)."""
        if jail:
            root = self._start_path(index)
            if root is None or root[:1] != b"/":
                return None
            name = b"/" + posixpath.normpath(b"/" + name).lstrip(b"/")
            return root if name == b"/" else root.rstrip(b"/") + name
        try:
            root = self._call.task.root()
        except OSError:
            root = b"/"
        if name[:1] != b"/":
            base = self._start_path(index)
            if base is None:
                return None
            if base[:1] != b"/":  # (a pipe, a socket...: not made absolute)
                return None if name else base
            if root != b"/" and (base == root or base.startswith(root + b"/")):
                base = base[len(root):]  # the walk starts inside the root
            else:
                root = b"/"  # (from outside its root, nothing stops a `..`)
            name = base + b"/" + name
        if b"//" in name or b"/." in name or name.endswith(b"/"):
            name = b"/" + posixpath.normpath(name).lstrip(b"/")  # normpath keeps a leading //
        if root == b"/":
            return name
        return root if name == b"/" else root + name

    def _credentials(self):
        if self._creds is None:
            try:
                self._creds = self._call.credentials()
            except OSError:  # the thread is gone (a call it never returned from)
                self._creds = _UNKNOWN_IDS
        return self._creds

    def event(self, when: str, rule: str | None, action: str | None,
              log_format: str | None, retval: int | None = None,
              capture: frozenset[str] = frozenset()) -> Event:
        """The shared Event for this call.

        `capture` names what costs a /proc read and is wanted by some output:
        "ids" (uids/gids: /proc/TID/status), "ppid", "cwd", "paths" (PATH[n]
        of every path argument).  Ids and ppid not captured are -1, unless a
        filter read them.
        """
        if capture:
            return self._captured_event(when, rule, action, log_format, retval, capture)
        # The usual text output: nothing costly shown; ids and ppid only if a filter read them.
        creds = self._creds
        if creds is not None:
            ids = (creds.uid, creds.euid, creds.suid, creds.gid, creds.egid, creds.sgid)
            ppid = creds.ppid
        else:
            ids = _UNKNOWN_ID_FIELDS
            ppid = -1 if self._ppid is None else self._ppid
        call = self._call
        return _new(Event, (  # one tuple, no keyword or __new__ call: ~2 µs less
            *self.shape.head, self.args, self.values(), call.pid, call.tid, ppid, *ids,
            self.comm, _time_ns(), when, rule, action, log_format, None, retval, NO_PATHS))

    def _captured_event(self, when: str, rule: str | None, action: str | None,
                        log_format: str | None, retval: int | None,
                        capture: frozenset[str]) -> Event:
        """`event` when some of its costly fields are wanted."""
        creds = self._credentials() if "ids" in capture else self._creds
        if creds is None:
            creds = _UNKNOWN_IDS
        known = "ppid" in capture or self._creds is not None or self._ppid is not None
        ppid = self.ppid if known else -1
        shape = self.shape
        resolved = NO_PATHS
        if "paths" in capture:
            resolved = {}
            for i, arg in enumerate(shape.signature):
                if arg.kind is ArgKind.PATH and (p := self.path(i)) is not None:
                    resolved[i] = p
        call = self._call
        return _new(Event, (
            *shape.head, self.args, self.values(), call.pid, call.tid, ppid,
            creds.uid, creds.euid, creds.suid, creds.gid, creds.egid, creds.sgid,
            self.comm, _time_ns(), when, rule, action, log_format,
            self.cwd if "cwd" in capture else None, retval, resolved))


def _own_dirfd(sc: SyscallSpec, index: int) -> int | None:
    """The dirfd argument of an *at call naming the call itself (`unlinkat` rules)."""
    if not any(a.kind is ArgKind.DIRFD for a in sc.args):
        return None
    dirfds = [i for i, a in enumerate(sc.args[:index]) if a.kind is ArgKind.DIRFD]
    return dirfds[-1] if dirfds else None
