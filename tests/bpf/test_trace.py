"""Attaching to real tracepoints and reading events through the ring buffer."""

import os
import struct
import threading

import pytest
from kernel_objects import held_bpf_ids

from syscalltrack.bpf import asm, tracefs
from syscalltrack.bpf.asm import R0, R1, R2, R3, R4, R6, R7, R10, Assembler
from syscalltrack.bpf.link import attach_raw_tracepoint, attach_tracepoint
from syscalltrack.bpf.maps import Map, MapSpec, MapType
from syscalltrack.bpf.prog import Program, ProgType
from syscalltrack.bpf.ringbuf import RingBuffer

pytestmark = pytest.mark.usefixtures("root")
GETPPID_NR = 110
RECORD = struct.Struct("<QII")  # pid_tgid, syscall nr, pad


def getppid_reporter(nr_offset: int, raw: bool = False) -> tuple[asm.Instruction, ...]:
    """Emit (pid_tgid, nr) for this process's calls; count failed outputs in ``drops``."""
    a = Assembler()
    a.mov(R6, R1)
    a.call("get_current_pid_tgid")
    a.mov(R7, R0)
    a.rsh(R7, 32)
    a.jne(R7, os.getpid(), "out")
    a.stxdw(R10, -16, R0)
    a.ldxdw(R1, R6, nr_offset) if raw else a.ldxw(R1, R6, nr_offset)
    a.stxw(R10, -8, R1)
    a.st(4, R10, -4, 0)
    if raw:  # sys_enter sees every syscall: keep getppid only
        a.jne(R1, GETPPID_NR, "out")
    a.ld_map_fd(R1, "events")
    a.mov(R2, R10)
    a.add(R2, -16)
    a.mov(R3, RECORD.size)
    a.mov(R4, 0)
    a.call("ringbuf_output")
    a.jeq(R0, 0, "out")
    a.st(4, R10, -20, 0)
    a.ld_map_fd(R1, "drops")
    a.mov(R2, R10)
    a.add(R2, -20)
    a.call("map_lookup_elem")
    a.jeq(R0, 0, "out")
    a.mov(R1, 1)
    a.atomic_add(8, R0, 0, R1)
    a.label("out")
    a.mov(R0, 0)
    a.exit()
    return a.instructions()


def make_maps(ring_size: int) -> tuple[Map, Map]:
    events = Map.create(MapSpec("events", MapType.RINGBUF, 0, 0, ring_size))
    try:
        drops = Map.create(MapSpec("drops", MapType.ARRAY, 4, 8, 1))
    except BaseException:
        events.close()
        raise
    return events, drops


def drops_of(drops: Map) -> int:
    return struct.unpack("<Q", drops.lookup(b"\0\0\0\0"))[0]


def test_event_format_gives_syscall_argument_offsets():
    fmt = tracefs.event_format("syscalls", "sys_enter_unlinkat")
    assert fmt.id == tracefs.event_id("syscalls", "sys_enter_unlinkat")
    assert fmt.field("__syscall_nr").offset == 8
    assert [(f.name, f.offset) for f in fmt.args] == [("dfd", 16), ("pathname", 24),
                                                       ("flag", 32)]


def test_syscall_tracepoint_delivers_our_getppid_calls():
    nr_offset = tracefs.event_format("syscalls", "sys_enter_getppid").field("__syscall_nr")
    events, drops = make_maps(1 << 16)
    with events, drops, Program.load(ProgType.TRACEPOINT, getppid_reporter(nr_offset.offset),
                                     maps=[events, drops], name="t_getppid") as prog, \
            attach_tracepoint(prog, "syscalls", "sys_enter_getppid") as link, \
            RingBuffer(events) as ring:
        assert link.method == "perf_event+bpf_link"
        for _ in range(10):
            os.getppid()
        assert ring.poll(0)
        records = ring.read_fixed(RECORD).rows()
        assert ring.pending == 0
        assert drops_of(drops) == 0
    assert len(records) == 10
    pid_tgid, nr, _ = records[0]
    assert (pid_tgid >> 32, nr) == (os.getpid(), GETPPID_NR)
    assert pid_tgid & 0xFFFF_FFFF == threading.get_native_id()


def test_full_ring_counts_drops_exactly():
    nr_offset = tracefs.event_format("syscalls", "sys_enter_getppid").field("__syscall_nr")
    events, drops = make_maps(4096)
    with events, drops, Program.load(ProgType.TRACEPOINT, getppid_reporter(nr_offset.offset),
                                     maps=[events, drops]) as prog, \
            attach_tracepoint(prog, "syscalls", "sys_enter_getppid"), \
            RingBuffer(events) as ring:
        for _ in range(1000):
            os.getppid()
        delivered = len(ring.read())
        dropped = drops_of(drops)
    assert delivered == 4096 // 24
    assert delivered + dropped == 1000


def test_raw_tracepoint_sys_enter_sees_the_call_id():
    events, drops = make_maps(1 << 16)
    insns = getppid_reporter(8, raw=True)  # ctx = (struct pt_regs *regs, long id)
    with events, drops, Program.load(ProgType.RAW_TRACEPOINT, insns,
                                     maps=[events, drops]) as prog, \
            attach_raw_tracepoint(prog, "sys_enter"), RingBuffer(events) as ring:
        os.getppid()
        os.getppid()
        records = [RECORD.unpack(r) for r in ring.read()]
    assert [nr for _, nr, _ in records] == [GETPPID_NR, GETPPID_NR]


def test_nothing_of_ours_remains_after_close_even_on_exception():
    nr_offset = tracefs.event_format("syscalls", "sys_enter_getppid").field("__syscall_nr")
    ids = set()
    with pytest.raises(RuntimeError, match="boom"):
        events, drops = make_maps(4096)
        with events, drops, Program.load(ProgType.TRACEPOINT,
                                         getppid_reporter(nr_offset.offset),
                                         maps=[events, drops]) as prog, \
                attach_tracepoint(prog, "syscalls", "sys_enter_getppid"), RingBuffer(events):
            ids = {("prog_id", prog.id), ("map_id", events.id), ("map_id", drops.id)}
            assert ids <= held_bpf_ids()
            raise RuntimeError("boom")
    assert len(ids) == 3
    assert not ids & held_bpf_ids()
