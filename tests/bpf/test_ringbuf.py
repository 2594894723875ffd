"""Ring buffer consumer: discarded records, wrap-around, batch decoding."""

import contextlib
import os
import struct

import pytest

from syscalltrack.bpf import tracefs
from syscalltrack.bpf.asm import R0, R1, R2, R3, R6, R7, Assembler
from syscalltrack.bpf.link import attach_tracepoint
from syscalltrack.bpf.maps import Map, MapSpec, MapType
from syscalltrack.bpf.prog import Program, ProgType
from syscalltrack.bpf.ringbuf import RingBuffer, record_stride

pytestmark = pytest.mark.usefixtures("root")
RECORD = struct.Struct("<qQ")  # fd argument of close(), pid_tgid
BASE_FD = 100_000  # far above any open descriptor: close() fails with EBADF


def close_reporter(fd_offset: int):
    """Reserve a record per close() of this process; discard those with odd fd."""
    a = Assembler()
    a.mov(R6, R1)
    a.call("get_current_pid_tgid")
    a.mov(R7, R0)
    a.rsh(R0, 32)
    a.jne(R0, os.getpid(), "out")
    a.ld_map_fd(R1, "events")
    a.mov(R2, RECORD.size)
    a.mov(R3, 0)
    a.call("ringbuf_reserve")
    a.jeq(R0, 0, "out")
    a.ldxdw(R1, R6, fd_offset)
    a.stxdw(R0, 0, R1)
    a.stxdw(R0, 8, R7)
    a.mov(R2, 0)
    a.mov(R1, R0)
    a.ldxdw(R3, R0, 0)
    a.and_(R3, 1)
    a.jne(R3, 0, "discard")
    a.call("ringbuf_submit")
    a.ja("out")
    a.label("discard")
    a.call("ringbuf_discard")
    a.label("out")
    a.mov(R0, 0)
    a.exit()
    return a.instructions()


@pytest.fixture
def traced_close():
    fd_offset = tracefs.event_format("syscalls", "sys_enter_close").field("fd").offset
    with Map.create(MapSpec("events", MapType.RINGBUF, 0, 0, 4096)) as events, \
            Program.load(ProgType.TRACEPOINT, close_reporter(fd_offset), maps=[events]) as p, \
            attach_tracepoint(p, "syscalls", "sys_enter_close"), RingBuffer(events) as ring:
        yield ring


def close_range(first: int, count: int) -> None:
    for fd in range(first, first + count):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_discarded_records_are_skipped_by_both_readers(traced_close):
    ring = traced_close
    close_range(BASE_FD, 20)
    assert [fd for fd, _ in ring.read_fixed(RECORD).rows()] == list(range(BASE_FD, BASE_FD + 20, 2))
    close_range(BASE_FD, 6)
    assert [RECORD.unpack(r)[0] for r in ring.read()] == [BASE_FD, BASE_FD + 2, BASE_FD + 4]
    assert ring.pending == 0


def test_records_wrap_around_the_ring_many_times(traced_close):
    ring = traced_close
    per_round = 4096 // record_stride(RECORD.size) // 2 * 2  # fits, half discarded
    seen = []
    for r in range(12):
        close_range(BASE_FD + r * per_round, per_round)
        seen += [fd for fd, _ in ring.read_fixed(RECORD).rows()]
    expected = list(range(BASE_FD, BASE_FD + 12 * per_round, 2))
    assert seen == expected
    assert 12 * per_round * record_stride(RECORD.size) > 4 * 4096


def test_read_fixed_refuses_a_mismatched_layout(traced_close):
    ring = traced_close
    close_range(BASE_FD, 2)
    with pytest.raises(ValueError, match=r"16-byte record, expected 8|other than 8-byte"):
        ring.read_fixed(struct.Struct("<Q"))


def test_poll_returns_false_on_timeout_when_empty(traced_close):
    assert traced_close.poll(0) is False
