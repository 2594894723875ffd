"""What a compiled filter reads: the protocol each engine's per-call context implements.

`events.Event` implements it, so a recorded event can be re-evaluated.
Engines should fetch lazily and cache: a filter reads only what
`CompiledFilter` says it needs, but may read one value more than once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..events.event import SockAddr


class FilterContext(Protocol):
    """One system call as a rule sees it (the classic signature for a modern variant)."""

    uid: int
    euid: int
    suid: int
    gid: int
    egid: int
    sgid: int
    pid: int
    ppid: int
    tid: int
    comm: bytes
    cwd: bytes | None  # None when unknown
    retval: int | None  # the return value; always an int for after rules

    def arg(self, index: int) -> int:
        """Argument `index` (0-based) normalised to its C type (`Arg.normalise`)."""
        ...

    def string(self, index: int) -> bytes | None:
        """The string (or buffer) argument `index` points to; None when NULL or unreadable."""
        ...

    def path(self, index: int) -> bytes | None:
        """Path argument `index` made absolute and normalised; None when unknown."""
        ...

    def path_last(self, index: int) -> bytes | None:
        """The last component `path(index)` will end with, if known without working
        the path out (the name as written, for a call that acts on it rather than on
        where a symlink leads); None when unknown.  Where it is not None, `path(index)`
        is None or ends with it after its last `/`: a filter comparing PATH with
        literals skips the costly resolution when no literal ends that way."""
        ...

    def sockaddr(self, index: int) -> SockAddr | None:
        """Socket address argument `index` decoded; None when NULL or unreadable."""
        ...
