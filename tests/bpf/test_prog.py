"""Loading programs and running them with BPF_PROG_TEST_RUN (real kernel)."""

import ctypes
import errno
import struct

import pytest

from syscalltrack.bpf import asm, btf
from syscalltrack.bpf.asm import R0, R1, R2, R3, R4, R10, Assembler
from syscalltrack.bpf.prog import Program, ProgramSpec, ProgType, raw_tp_context
from syscalltrack.bpf.sys import BpfError, Cmd, ProgInfo, fd_by_id, obj_info

pytestmark = pytest.mark.usefixtures("root")


def test_raw_tracepoint_returns_value_through_test_run():
    insns = (asm.mov(R0, 42), asm.exit())
    with Program.load(ProgType.RAW_TRACEPOINT, insns, name="ret42") as prog:
        assert prog.id > 0
        assert prog.test_run(raw_tp_context(0, 0)).retval == 42


def test_filter_on_raw_tp_arguments():
    """ctx is the u64 argument array: ctx[1] is the syscall id for sys_enter."""
    a = Assembler()
    a.ldxdw(R2, R1, 8)
    a.mov(R0, 0)
    a.jne(R2, 110, "out")
    a.mov(R0, 1)
    a.label("out")
    a.exit()
    spec = ProgramSpec("is_getppid", ProgType.RAW_TRACEPOINT, a.instructions())
    with spec.load() as prog:
        assert prog.test_run(raw_tp_context(0, 110)).retval == 1
        assert prog.test_run(raw_tp_context(0, 39)).retval == 0


def _read_first_u64(helper: str) -> tuple[asm.Instruction, ...]:
    """Copy 8 bytes from the pointer in ctx[0] with ``helper``; return the copy or -err."""
    a = Assembler()
    a.ldxdw(R3, R1, 0)
    a.mov(R1, R10)
    a.add(R1, -8)
    a.mov(R2, 8)
    a.call(helper)
    a.jne(R0, 0, "out")
    a.ldxdw(R0, R10, -8)
    a.label("out")
    a.exit()
    return a.instructions()


def test_fake_pt_regs_for_test_run_needs_probe_read_user():
    """Documents the test prologue of prog.py: kernel reads of user memory give -ERANGE,
    user reads work because test_run runs in the caller's process."""
    fake_regs = ctypes.create_string_buffer(struct.pack("<Q", 0x1234_5678_9ABC), 8)
    ctx = raw_tp_context(ctypes.addressof(fake_regs), 87)
    with Program.load(ProgType.RAW_TRACEPOINT, _read_first_u64("probe_read_kernel")) as prog:
        assert prog.test_run(ctx).retval == (-errno.ERANGE) & 0xFFFF_FFFF
    with Program.load(ProgType.RAW_TRACEPOINT, _read_first_u64("probe_read_user")) as prog:
        assert prog.test_run(ctx).retval == 0x5678_9ABC  # retval is the low 32 bits


def test_verifier_log_is_in_the_error():
    with pytest.raises(BpfError) as info:
        Program.load(ProgType.RAW_TRACEPOINT, (asm.exit(),))
    assert info.value.errno == errno.EACCES
    assert "R0 !read_ok" in info.value.log
    assert "R0 !read_ok" in str(info.value)


def test_closed_program_refuses_use():
    prog = Program.load(ProgType.RAW_TRACEPOINT, (asm.mov(R0, 0), asm.exit()))
    prog.close()
    prog.close()
    with pytest.raises(ValueError, match="closed"):
        prog.test_run(raw_tp_context(0))


def test_socket_filter_test_run_takes_a_packet_and_repeat():
    """skb->len (first u32 of the context) excludes the Ethernet header test_run pulls."""
    insns = (asm.ldxw(R0, R1, 0), asm.exit())
    with Program.load(ProgType.SOCKET_FILTER, insns) as prog:
        result = prog.test_run(data=bytes(64), data_out_size=128, repeat=3)
    assert result.retval == 64 - 14
    assert result.data_out == bytes(64)


def _sum_with_loop() -> tuple[asm.Instruction, ...]:
    """bpf_loop(4, cb, &sum): cb adds its index, so the program returns 0+1+2+3."""
    a = Assembler()
    a.st(8, R10, -8, 0)
    a.mov(R1, 4)
    a.ld_func(R2, "cb")
    a.mov(R3, R10)
    a.add(R3, -8)
    a.mov(R4, 0)
    a.call("loop")
    a.ldxdw(R0, R10, -8)
    a.exit()
    a.label("cb")
    a.ldxdw(R3, R2, 0)
    a.add(R3, R1)
    a.stxdw(R2, 0, R3)
    a.mov(R0, 0)
    a.exit()
    return a.instructions()


def test_callbacks_load_with_a_stub_btf_by_default():
    with Program.load(ProgType.RAW_TRACEPOINT, _sum_with_loop(), name="loop_sum") as prog:
        assert prog.test_run(raw_tp_context(0)).retval == 6


def test_callbacks_load_with_given_btf_and_func_info_and_not_without():
    insns = _sum_with_loop()
    blob, info = btf.stub_func_info(insns)
    assert [f.insn_off for f in info] == [0, 10]
    with btf.Handle.load(blob) as handle:
        with Program.load(ProgType.RAW_TRACEPOINT, insns, btf=handle, func_info=info) as prog:
            assert prog.test_run(raw_tp_context(0)).retval == 6
        with pytest.raises(BpfError, match="missing btf func_info"):
            Program.load(ProgType.RAW_TRACEPOINT, insns, btf=handle, name="no_info")


def test_objects_are_found_by_their_kernel_id():
    with Program.load(ProgType.RAW_TRACEPOINT, (asm.mov(R0, 0), asm.exit())) as prog, \
            fd_by_id(Cmd.PROG_GET_FD_BY_ID, prog.id) as again:
        assert obj_info(again.fd, ProgInfo()).id == prog.id
    with pytest.raises(BpfError) as info:
        fd_by_id(Cmd.MAP_GET_FD_BY_ID, 0xFFFF_FFF0)
    assert info.value.errno == errno.ENOENT
