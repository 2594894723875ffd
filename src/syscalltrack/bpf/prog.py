"""Loading programs and running them in the kernel with BPF_PROG_TEST_RUN.

Testing generated filters: BPF_PROG_TEST_RUN works for RAW_TRACEPOINT
programs (not for TRACEPOINT ones: ENOTSUPP). The raw-tracepoint context it
builds is the u64 argument array given as ``ctx`` (at most 12 values), and it
refuses data_in/data_out/ctx_out/repeat. A ``sys_enter`` program receives
``(struct pt_regs *regs, long id)`` there: a test can pass the syscall number
as ``ctx[1]`` but has no kernel ``pt_regs`` to point ``ctx[0]`` at, and
``bpf_probe_read_kernel`` of a user address returns -ERANGE. Test runs
execute in the calling process, though, so ``bpf_probe_read_user`` on a fake
``pt_regs`` in our own memory works, as do user string reads (both measured
in tests/bpf/test_prog.py). A code generator should thus keep argument
fetching in a prologue: production reads ``regs`` with probe_read_kernel,
the test variant reads a fake ``pt_regs`` with probe_read_user (or takes the
arguments as plain u64 values in ``ctx``, see :func:`raw_tp_context`).
"""

from __future__ import annotations

import ctypes
import errno
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from . import asm
from .btf import FuncInfo, Handle, stub_func_info
from .maps import Map
from .sys import (
    FD,
    BpfError,
    Cmd,
    ProgInfo,
    ProgLoadAttr,
    TestRunAttr,
    addr,
    bpf,
    obj_info,
    obj_name,
)

LOG_SIZE = 1 << 20
MAX_RAW_TP_ARGS = 12


class ProgType(IntEnum):
    """``enum bpf_prog_type`` values used here."""

    SOCKET_FILTER = 1
    KPROBE = 2
    TRACEPOINT = 5
    RAW_TRACEPOINT = 17
    TRACING = 26
    LSM = 29


class AttachType(IntEnum):
    """``enum bpf_attach_type`` values used here."""

    TRACE_RAW_TP = 23
    TRACE_FENTRY = 24
    TRACE_FEXIT = 25
    MODIFY_RETURN = 26
    LSM_MAC = 27
    PERF_EVENT = 41


@dataclass(frozen=True)
class ProgramSpec:
    """A program before loading: instructions keep map references by name."""

    name: str
    type: ProgType
    instructions: tuple[asm.Instruction, ...]
    license: str = "GPL"
    expected_attach_type: int = 0
    attach_btf_id: int = 0
    map_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        names = frozenset(i.map_ref for i in self.instructions if i.map_ref is not None)
        object.__setattr__(self, "map_names", names)

    def load(self, maps: Mapping[str, Map] | Sequence[Map] = ()) -> Program:
        return Program.load(self.type, self.instructions, license=self.license, maps=maps,
                            name=self.name, expected_attach_type=self.expected_attach_type,
                            attach_btf_id=self.attach_btf_id)

    def __str__(self) -> str:
        return f"; {self.name} ({self.type.name})\n{asm.disassemble(self.instructions)}"


@dataclass(frozen=True)
class TestRunResult:
    retval: int
    duration_ns: int
    data_out: bytes = b""


def raw_tp_context(*args: int) -> bytes:
    """The ctx for test-running a RAW_TRACEPOINT program: its u64 arguments."""
    if len(args) > MAX_RAW_TP_ARGS:
        raise ValueError(f"a raw tracepoint takes at most {MAX_RAW_TP_ARGS} arguments")
    return struct.pack(f"<{len(args)}Q", *(a & 0xFFFF_FFFF_FFFF_FFFF for a in args))


def _load(attr: ProgLoadAttr, log_level: int) -> tuple[int, str]:
    """PROG_LOAD; on failure, load again with a log buffer for the error."""
    if log_level:
        log = ctypes.create_string_buffer(LOG_SIZE)
        attr.log_level, attr.log_size, attr.log_buf = log_level, LOG_SIZE, ctypes.addressof(log)
        try:
            return bpf(Cmd.PROG_LOAD, attr), log.value.decode(errors="replace")
        except BpfError as e:
            raise BpfError(e.errno, Cmd.PROG_LOAD, log.value.decode(errors="replace")) from None
    try:
        return bpf(Cmd.PROG_LOAD, attr), ""
    except BpfError as first:
        if first.errno not in (errno.EINVAL, errno.EACCES, errno.ENOSPC):
            raise  # not the verifier (EPERM, E2BIG...): a log would say nothing
    return _load(attr, 1)


class Program(FD):
    """A loaded program, owning its fd (and nothing else: maps stay the caller's)."""

    def __init__(self, fd: int, prog_type: ProgType | int, name: str, log: str = ""):
        super().__init__(fd)
        self.type = prog_type
        self.name = name
        self.log = log

    @classmethod
    def load(cls, prog_type: ProgType | int, insns: Sequence[asm.Instruction] | bytes, *,
             license: str = "GPL", maps: Mapping[str, Map] | Sequence[Map] = (),
             name: str = "", expected_attach_type: int = 0, attach_btf_id: int = 0,
             log_level: int = 0, btf: Handle | None = None,
             func_info: Sequence[FuncInfo] = ()) -> Program:
        """Load ``insns``; map references resolve against ``maps`` by name.

        ``btf`` and ``func_info`` describe the subprograms (callbacks); when
        instructions with callbacks come without them, a stub BTF
        (:func:`~.btf.stub_func_info`) is loaded for the load and closed after.
        A verifier refusal raises BpfError whose ``log`` holds the verifier's
        explanation. ``log_level`` > 0 keeps the log of a successful load in
        ``Program.log``.
        """
        if not isinstance(maps, Mapping):
            maps = {m.name: m for m in maps}
        if isinstance(insns, bytes | bytearray):
            code = bytes(insns)
        else:
            if btf is None and not func_info and asm.subprograms(insns):
                blob, info = stub_func_info(insns)
                with Handle.load(blob) as stub:
                    return cls.load(prog_type, insns, license=license, maps=maps, name=name,
                                    expected_attach_type=expected_attach_type,
                                    attach_btf_id=attach_btf_id, log_level=log_level,
                                    btf=stub, func_info=info)
            code = asm.encode(insns, {k: m.fd for k, m in maps.items()})
        code_buf = ctypes.create_string_buffer(code, len(code))
        lic = ctypes.create_string_buffer(license.encode())
        attr = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(code) // 8,
                            insns=ctypes.addressof(code_buf), license=ctypes.addressof(lic),
                            prog_name=obj_name(name) if name else b"",
                            expected_attach_type=expected_attach_type,
                            attach_btf_id=attach_btf_id)
        records = b"".join(struct.pack("<II", *f) for f in func_info)
        info_buf = ctypes.create_string_buffer(records, len(records))
        if btf is not None:
            attr.prog_btf_fd = btf.fd
        if func_info:
            attr.func_info_rec_size, attr.func_info_cnt = 8, len(func_info)
            attr.func_info = ctypes.addressof(info_buf)
        try:
            fd, log = _load(attr, log_level)
        except BpfError as e:
            if not name:
                raise
            raise BpfError(e.errno, Cmd.PROG_LOAD, e.log, detail=name) from None
        return cls(fd, prog_type, name, log)

    @property
    def id(self) -> int:
        """Kernel program id (as in ``bpftool prog`` and fdinfo ``prog_id``)."""
        return obj_info(self.fd, ProgInfo()).id

    def test_run(self, ctx: bytes = b"", data: bytes = b"", *, data_out_size: int = 0,
                 repeat: int = 0) -> TestRunResult:
        """Run once in the kernel (BPF_PROG_TEST_RUN); see :func:`raw_tp_context`.

        For RAW_TRACEPOINT only ``ctx`` is accepted; socket filters take
        ``data`` (a packet) and ``repeat``.
        """
        ctx_buf = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
        data_buf = ctypes.create_string_buffer(data, len(data)) if data else None
        out_buf = ctypes.create_string_buffer(data_out_size) if data_out_size else None
        attr = TestRunAttr(prog_fd=self.fd, repeat=repeat,
                           ctx_size_in=len(ctx), ctx_in=addr(ctx_buf),
                           data_size_in=len(data), data_in=addr(data_buf),
                           data_size_out=data_out_size, data_out=addr(out_buf))
        bpf(Cmd.PROG_TEST_RUN, attr)
        out = out_buf.raw[:attr.data_size_out] if out_buf is not None else b""
        return TestRunResult(attr.retval, attr.duration, out)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self.fd}"
        return f"<Program {self.name or '?'} {getattr(self.type, 'name', self.type)} {state}>"
