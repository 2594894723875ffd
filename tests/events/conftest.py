"""A factory for Event records, so each test states only the fields it is about."""

from __future__ import annotations

import pytest

from syscalltrack.events import Event
from syscalltrack.syscalls import X86_64, table

_DEFAULTS = dict(
    pid=876, tid=876, ppid=1, uid=0, euid=0, suid=0, gid=0, egid=0, sgid=0,
    comm=b"mkdir", timestamp_ns=1_700_000_000_123_456_789, when="before",
)


def build_event(name: str, values=(), abi: str = X86_64, args=None, **fields) -> Event:
    """An event of syscall `name` (table signature); raw args default to the int values.

    String-like values get a plausible user-space address as their raw argument.
    """
    sc = table().by_name(name, abi)
    values = tuple(values) + (0,) * (len(sc.args) - len(values))
    if args is None:
        args = tuple(
            v if isinstance(v, int) else (0 if v is None else 0x7FFD0000 + 0x100 * i)
            for i, v in enumerate(values)
        )
    return Event(abi=abi, nr=sc.nr, name=sc.name, signature=sc.args, args=tuple(args),
                 values=values, **{**_DEFAULTS, **fields})


@pytest.fixture(scope="session")
def make_event():
    return build_event
