"""One stopped call seen through a rule: the FilterContext and the Event it becomes.

Everything is fetched lazily and at most once, because a stop costs ~20 µs
and a /proc read or a memory read is a good part of that: a filter on the
syscall alone reads nothing; `PARAMS[1] == "/etc/passwd"` reads one string.
"""

from __future__ import annotations

import os
import posixpath
import socket
import struct
import time

from ...events import Event, SockAddr, Unreadable
from ...ptrace import MemoryAccessError, Syscall
from ...ptrace import proc as procfs
from ...syscalls import Arg, ArgKind, FromStruct, Variant
from ...syscalls import Syscall as SyscallSpec
from ...syscalls.constants import AT_FDCWD

STRING_LIMIT = 4096
_UNKNOWN_IDS = procfs.Credentials(-1, -1, -1, -1, -1, -1, -1, -1)
SOCKADDR_LIMIT = 128
_OPEN_HOW = struct.Struct("<QQQ")  # struct open_how: flags, mode, resolve


class CallView:
    """The call as a rule on `signature` sees it (classic arguments for a variant).

    Implements `rules.FilterContext`; `event()` turns it into the shared
    `Event` once a rule matched.
    """

    __slots__ = (
        "_cache",
        "_call",
        "_creds",
        "_sources",
        "args",
        "real",
        "signature",
        "variant",
    )

    def __init__(self, call: Syscall, real: SyscallSpec, signature: tuple[Arg, ...],
                 variant: Variant | None):
        self._call = call
        self.real = real
        self.signature = signature
        self.variant = variant
        self._creds = None
        self._cache: dict = {}
        if variant is None:
            self._sources = tuple(range(len(signature)))
            raw = call.args[: len(signature)]
        else:
            self._sources = variant.args
            raw = variant.classic_args(call.args, self._struct_fields())
        self.args = tuple(arg.normalise(value) for arg, value in zip(signature, raw, strict=True))

    def _struct_fields(self) -> dict[FromStruct, int]:
        if not any(isinstance(src, FromStruct) for src in self.variant.args):
            return {}
        try:
            flags, mode, _resolve = _OPEN_HOW.unpack(
                self._call.memory.read(self._call.args[2], _OPEN_HOW.size))
        except MemoryAccessError:
            return {}
        return {FromStruct.OPEN_HOW_FLAGS: flags, FromStruct.OPEN_HOW_MODE: mode}

    # -- FilterContext
    def arg(self, index: int) -> int:
        return self.args[index]

    def string(self, index: int) -> bytes | None:
        value = self.value(index)
        return value if isinstance(value, bytes) else None

    def path(self, index: int) -> bytes | None:
        key = ("path", index)
        if key not in self._cache:
            self._cache[key] = self._resolve(index)
        return self._cache[key]

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
        return self._comm_ppid()[1]

    @property
    def comm(self) -> bytes:
        return self._comm_ppid()[0]

    @property
    def cwd(self) -> bytes | None:
        return self._once("cwd", self._read_cwd)

    retval = None  # a before stop has none; AfterView overrides it

    # -- decoding
    def value(self, index: int):
        """Argument `index` decoded by its kind (cached)."""
        key = ("value", index)
        if key not in self._cache:
            self._cache[key] = self._decode(index)
        return self._cache[key]

    def _decode(self, index: int):
        arg, raw = self.signature[index], self.args[index]
        kind = arg.kind
        if kind in (ArgKind.PATH, ArgKind.STRING):
            memory = self._call.memory
            return self._read(raw, lambda addr: memory.read_string(addr, STRING_LIMIT)[0])
        if kind is ArgKind.BUFFER:
            length = self.args[arg.length_arg] if arg.length_arg is not None else 0
            size = max(0, min(length, STRING_LIMIT))
            return self._read(raw, lambda addr: self._call.memory.read(addr, size) if size else b"")
        if kind is ArgKind.STRARRAY:
            width = 4 if self.real.abi == "i386" else 8
            return self._read(raw, lambda addr: tuple(self._call.memory.read_string_array(
                addr, max_items=256, limit=STRING_LIMIT, pointer_size=width)[0]))
        if kind is ArgKind.SOCKADDR:
            return self._read(raw, self._sockaddr)
        return raw

    def _read(self, addr: int, reader):
        if addr == 0:
            return None
        try:
            return reader(addr & ((1 << 64) - 1))
        except MemoryAccessError:
            return Unreadable(addr & ((1 << 64) - 1))

    def _sockaddr(self, addr: int) -> SockAddr:
        raw = self._call.memory.read(addr, 2)
        family = int.from_bytes(raw, "little")
        if family == socket.AF_INET:
            data = self._call.memory.read(addr, 8)
            return SockAddr(family, socket.inet_ntop(socket.AF_INET, data[4:8]),
                            int.from_bytes(data[2:4], "big"), data)
        if family == socket.AF_INET6:
            data = self._call.memory.read(addr, 24)
            return SockAddr(family, socket.inet_ntop(socket.AF_INET6, data[8:24]),
                            int.from_bytes(data[2:4], "big"), data)
        if family == socket.AF_UNIX:
            path = self._call.memory.read_string(addr + 2, 108)[0]
            return SockAddr(family, path.decode("utf-8", "backslashreplace"), None, raw)
        return SockAddr(family, None, None, raw)

    def _resolve(self, index: int) -> bytes | None:
        """PATH[n]: absolute and lexically normalised, against the dirfd or the cwd."""
        name = self.string(index)
        if name is None:
            return None
        if not name.startswith(b"/"):
            base = self._base_dir(index)
            if base is None:
                return None
            name = base + b"/" + name
        if b"//" in name or b"/." in name or name.endswith(b"/"):
            name = b"/" + posixpath.normpath(name).lstrip(b"/")  # normpath keeps a leading //
        return name

    def _base_dir(self, index: int) -> bytes | None:
        dirfd_arg = self.variant.dirfd_of(self._sources[index]) if self.variant else None
        if dirfd_arg is None and self.variant is None:
            dirfd_arg = _own_dirfd(self.real, index)
        if dirfd_arg is not None:
            dirfd = self.real.args[dirfd_arg].normalise(self._call.args[dirfd_arg])
            if dirfd != AT_FDCWD:
                try:
                    return os.fsencode(self._call.fd_path(dirfd))
                except OSError:
                    return None
        return self.cwd

    def _credentials(self):
        if self._creds is None:
            self._creds = self._call.credentials()
        return self._creds

    def _once(self, key, fetch):
        if key not in self._cache:
            try:
                self._cache[key] = fetch()
            except OSError:
                self._cache[key] = None
        return self._cache[key]

    def _comm_ppid(self) -> tuple[bytes, int]:
        found = self._once("stat", lambda: procfs.comm_and_ppid(self._call.tid))
        return found if found is not None else (b"", 0)

    def _read_cwd(self) -> bytes:
        return os.fsencode(self._call.cwd())

    def event(self, when: str, rule: str | None, action: str | None,
              log_format: str | None, retval: int | None = None,
              capture: frozenset[str] = frozenset()) -> Event:
        """The shared Event for this call.

        `capture` names what costs a /proc read and is wanted by some output:
        "ids" (uids/gids: /proc/TID/status), "cwd", "paths" (PATH[n] of every
        path argument).  Ids not captured are -1, unless a filter read them.
        """
        creds = self._creds if "ids" not in capture else self._credentials()
        if creds is None:
            creds = _UNKNOWN_IDS
        resolved = {}
        if "paths" in capture:
            for i, arg in enumerate(self.signature):
                if arg.kind is ArgKind.PATH and (p := self.path(i)) is not None:
                    resolved[i] = p
        return Event(
            abi=self.real.abi, nr=self.real.nr, name=self.real.name,
            signature=self.signature, args=self.args,
            values=tuple(self.value(i) for i in range(len(self.signature))),
            pid=self._call.pid, tid=self._call.tid, ppid=self.ppid,
            uid=creds.uid, euid=creds.euid, suid=creds.suid,
            gid=creds.gid, egid=creds.egid, sgid=creds.sgid,
            comm=self.comm or b"", timestamp_ns=time.time_ns(), when=when, rule=rule,
            action=action, log_format=log_format, cwd=self.cwd if "cwd" in capture else None,
            retval=retval,
            paths=resolved,
        )


class AfterView(CallView):
    """The same view at the call's exit: the arguments saved at entry, plus RETVAL."""

    __slots__ = ("_retval",)

    def __init__(self, entry: CallView, retval: int):
        self._call = entry._call
        self.real = entry.real
        self.signature = entry.signature
        self.variant = entry.variant
        self._sources = entry._sources
        self.args = entry.args
        self._creds = None  # credentials as they are after the call (setuid may change them)
        self._cache = {k: v for k, v in entry._cache.items() if k[0] in ("value", "path")}
        self._retval = retval

    @property
    def retval(self) -> int:
        return self._retval


def _own_dirfd(sc: SyscallSpec, index: int) -> int | None:
    """The dirfd argument of an *at call naming the call itself (`unlinkat` rules)."""
    if not any(a.kind is ArgKind.DIRFD for a in sc.args):
        return None
    dirfds = [i for i, a in enumerate(sc.args[:index]) if a.kind is ArgKind.DIRFD]
    return dirfds[-1] if dirfds else None
