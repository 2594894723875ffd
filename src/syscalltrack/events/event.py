"""The one event record every engine produces and every sink consumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from ..syscalls import Arg
from ..syscalls.constants import AF_INET, AF_INET6, AF_UNIX

NO_PATHS: Mapping[int, bytes] = MappingProxyType({})


def _inet_ntop(family: int, packed: bytes) -> str:
    """`socket.inet_ntop`, imported with the first internet address (not at start-up) and
    then bound to this name."""
    global _inet_ntop
    from socket import inet_ntop as _inet_ntop

    return _inet_ntop(family, packed)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A pointer argument whose memory could not be read; printed as its address."""

    address: int


@dataclass(frozen=True, slots=True)
class SockAddr:
    """A decoded `struct sockaddr`: family number, and host/port or path when known."""

    family: int
    address: str | None = None  # "127.0.0.1", "::1", or a unix socket path
    port: int | None = None
    raw: bytes = b""

    @classmethod
    def decode(cls, raw: bytes) -> SockAddr:
        """The address in `raw`, the bytes of a `struct sockaddr` as the caller passed it
        (as many as its length said). An abstract unix socket's name prints as `@name`,
        as ss(8) shows it; what is too short for its family keeps only the family."""
        family = int.from_bytes(raw[:2], "little")
        if family == AF_INET and len(raw) >= 8:
            return cls(family, _inet_ntop(AF_INET, raw[4:8]),
                       int.from_bytes(raw[2:4], "big"), raw)
        if family == AF_INET6 and len(raw) >= 24:
            return cls(family, _inet_ntop(AF_INET6, raw[8:24]),
                       int.from_bytes(raw[2:4], "big"), raw)
        if family == AF_UNIX and len(raw) > 2:
            path = raw[2:]
            path = b"@" + path[1:] if path[:1] == b"\0" else path.split(b"\0", 1)[0]
            return cls(family, path.decode("utf-8", "surrogateescape"), None, raw)
        return cls(family, None, None, raw)


class Cut(bytes):
    """The start of a string whose rest did not fit the engine's record: text outputs
    print `...` after it, JSON flags it `"cut": true`; otherwise plain bytes."""

    __slots__ = ()


# What a decoded argument can be: an integer (normalised to its C type), a
# string or buffer (raw bytes, never decoded as text; a `Cut` when only its
# start was carried), NULL, memory we could not read, a string array (argv),
# or a socket address.
ArgValue = int | bytes | None | Unreadable | tuple[bytes, ...] | SockAddr


class Event(NamedTuple):
    """One matched system call, as seen at entry (`before`) or at exit (`after`).

    `signature` and `args`/`values` are the arguments as the rule sees them: for
    a classic rule firing on a modern variant (`unlink` on `unlinkat`) they are
    the classic call's.  `abi`, `nr` and `name` are the call that really
    happened.  `args` are raw values normalised to their C types; `values` the
    decoded ones (strings read from the caller's memory).

    An engine may leave out what no output shows, since reading it costs: the
    per-command engine then sets the ids (uid ... sgid) and ppid to -1.

    A named tuple, so immutable and cheap: the system-wide engine builds
    hundreds of thousands a second with ``tuple.__new__(Event, fields)``
    (~0.3 µs; a slotted dataclass's ``__init__`` cost ~0.75 µs, a frozen
    one's 7.5 µs).
    """

    abi: str
    nr: int
    name: str
    signature: tuple[Arg, ...]
    args: tuple[int, ...]
    values: tuple[ArgValue, ...]
    pid: int
    tid: int
    ppid: int
    uid: int
    euid: int
    suid: int
    gid: int
    egid: int
    sgid: int
    comm: bytes
    timestamp_ns: int  # wall clock, ns since the Unix epoch (CLOCK_REALTIME)
    when: str = "before"
    rule: str | None = None
    action: str | None = None
    log_format: str | None = None
    cwd: bytes | None = None
    retval: int | None = None
    paths: Mapping[int, bytes] = NO_PATHS  # PATH[n] resolved, 0-based

    # The filter-evaluation context (see rules.context.FilterContext), so a
    # recorded event can be re-evaluated by the Python filter evaluator.
    def arg(self, index: int) -> int:
        return self.args[index]

    def string(self, index: int) -> bytes | None:
        value = self.values[index]
        return value if isinstance(value, bytes) else None

    def path(self, index: int) -> bytes | None:
        return self.paths.get(index)

    def path_last(self, index: int) -> bytes | None:
        return None  # (the paths are resolved already: nothing to save)

    def sockaddr(self, index: int) -> SockAddr | None:
        value = self.values[index] if index < len(self.values) else None
        return value if isinstance(value, SockAddr) else None


@dataclass(frozen=True, slots=True)
class Lost:
    """`count` events of rule `rule` were dropped before reaching user space (buffer full)."""

    rule: str
    index: int
    count: int


@dataclass(frozen=True, slots=True)
class Undecided:
    """The engine could not decide rule `rule` for this call, so it took no action.

    `event` is the call as it was seen (its `rule` is the undecided one); `reason`
    says why, when the engine knows.
    """

    rule: str
    index: int
    event: Event
    reason: str = ""


# What an engine's event stream carries: events, and notices that say what it did not.
StreamItem = Event | Lost | Undecided
