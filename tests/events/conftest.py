"""A factory for Event records, so each test states only the fields it is about."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from syscalltrack.events import Event, SockAddr, Unreadable
from syscalltrack.syscalls import X86_64, ArgKind, table

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


SYSCALLS = sorted(table(), key=lambda sc: (sc.abi, sc.nr))
any_bytes = st.binary(max_size=40)
raw_register = st.integers(min_value=0, max_value=2**64 - 1)
any_value = st.one_of(
    st.none(), raw_register, st.integers(min_value=-(2**63), max_value=-1), any_bytes,
    st.builds(Unreadable, raw_register),
    st.tuples(any_bytes, any_bytes),
    st.builds(SockAddr, st.sampled_from([1, 2, 10, 16, 255]),
              st.one_of(st.none(), any_bytes.map(lambda b: b.decode("utf-8", "surrogateescape"))),
              st.one_of(st.none(), st.integers(0, 65535)), any_bytes),
)


def value_for(kind: ArgKind):
    """Mostly the value type the kind expects, sometimes any value at all."""
    typical = {
        ArgKind.PATH: any_bytes, ArgKind.STRING: any_bytes, ArgKind.BUFFER: any_bytes,
        ArgKind.STRARRAY: st.lists(any_bytes, max_size=4).map(tuple),
    }.get(kind, raw_register)
    return st.one_of(typical, any_value)


@st.composite
def events(draw):
    """Any event of any syscall of either ABI, with hostile bytes everywhere."""
    sc = draw(st.sampled_from(SYSCALLS))
    values = [draw(value_for(arg.kind)) for arg in sc.args]
    text = st.one_of(st.none(), st.text(max_size=12))
    return build_event(
        sc.name, values, abi=sc.abi, comm=draw(any_bytes), rule=draw(text),
        action=draw(text), cwd=draw(st.one_of(st.none(), any_bytes)),
        retval=draw(st.one_of(st.none(), st.integers(-(2**63), 2**64))),
        when=draw(st.sampled_from(["before", "after"])),
        paths={i: draw(any_bytes) for i in range(len(values)) if draw(st.booleans())},
        timestamp_ns=draw(st.integers(0, 2**62)),
    )


@pytest.fixture(scope="session")
def any_event():
    return events()
