"""Loading programs that call ``bpf_loop``: the kernel wants BTF func_info for them.

A callback is a subprogram referenced by an LD_IMM64 with src BPF_PSEUDO_FUNC,
and the verifier refuses subprograms it has no BTF FUNC record for ("missing
btf func_info"). :func:`load` builds the smallest BTF that satisfies it (one
``int f(int a, int b)`` prototype, one static FUNC per subprogram) and passes
it with the program; ``bpf.prog.Program.load`` does not expose those fields.
"""

from __future__ import annotations

import ctypes
import errno
import struct
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ...bpf import asm
from ...bpf.maps import Map
from ...bpf.prog import LOG_SIZE, Program, ProgType
from ...bpf.sys import FD, BpfError, ProgLoadAttr, bpf, obj_name

BPF_BTF_LOAD = 18
PSEUDO_FUNC = 4
_INT, _FUNC, _FUNC_PROTO = 1, 12, 13


class _BtfLoadAttr(ctypes.Structure):
    _fields_ = [("btf", ctypes.c_uint64), ("btf_log_buf", ctypes.c_uint64),
                ("btf_size", ctypes.c_uint32), ("btf_log_size", ctypes.c_uint32),
                ("btf_log_level", ctypes.c_uint32)]


def func_ref(dst: asm.Reg, symbol: str) -> asm.Instruction:
    """``dst = &symbol`` for a callback; the name rides in ``map_ref`` (``func:NAME``)
    until :func:`resolve_funcs` turns it into the relative offset the kernel wants."""
    return asm.Instruction(asm.LD | asm.IMM | asm.DW, dst, PSEUDO_FUNC, map_ref=f"func:{symbol}")


def resolve_funcs(insns: Sequence[asm.Instruction]) -> tuple[tuple[asm.Instruction, ...],
                                                              list[int]]:
    """Fill callback addresses; return the instructions and the subprogram start slots."""
    slots, slot = {}, 0
    starts = []
    for insn in insns:
        if insn.symbol is not None:
            slots[insn.symbol] = slot
        slot += insn.slots
    out, slot = [], 0
    for insn in insns:
        if insn.map_ref and insn.map_ref.startswith("func:"):
            target = slots[insn.map_ref[5:]]
            starts.append(target)
            insn = replace(insn, map_ref=None, imm=target - slot - 1)
        out.append(insn)
        slot += insn.slots
    return tuple(out), sorted(set(starts))


def _btf(subprograms: int) -> bytes:
    strings = b"\0int\0a\0b\0f\0"
    types = struct.pack("<III", 1, _INT << 24, 4) + struct.pack("<I", (1 << 24) | 32)
    types += struct.pack("<III", 0, (_FUNC_PROTO << 24) | 2, 1) + struct.pack("<IIII", 5, 1, 7, 1)
    types += struct.pack("<III", 9, _FUNC << 24, 2) * subprograms
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def _load_btf(blob: bytes) -> FD:
    buf = ctypes.create_string_buffer(blob, len(blob))
    log = ctypes.create_string_buffer(1 << 16)
    try:
        return FD(bpf(BPF_BTF_LOAD, _BtfLoadAttr(
            btf=ctypes.addressof(buf), btf_size=len(blob), btf_log_buf=ctypes.addressof(log),
            btf_log_size=1 << 16, btf_log_level=1)))
    except BpfError as e:
        raise BpfError(e.errno, "BTF_LOAD", log.value.decode(errors="replace")) from None


def load(prog_type: ProgType, insns: Sequence[asm.Instruction], maps: Mapping[str, Map],
         name: str) -> Program:
    """Load ``insns`` (possibly with callbacks); a refusal carries the verifier log."""
    insns, starts = resolve_funcs(insns)
    code = asm.encode(insns, {k: m.fd for k, m in maps.items()})
    code_buf = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(code) // 8,
                        insns=ctypes.addressof(code_buf), license=ctypes.addressof(lic),
                        prog_name=obj_name(name))
    btf = None
    if starts:
        btf = _load_btf(_btf(1 + len(starts)))
        records = b"".join(struct.pack("<II", off, 3 + i) for i, off in enumerate([0, *starts]))
        info = ctypes.create_string_buffer(records, len(records))
        attr.prog_btf_fd, attr.func_info_rec_size = btf.fd, 8
        attr.func_info, attr.func_info_cnt = ctypes.addressof(info), len(starts) + 1
    try:
        try:
            return Program(bpf(5, attr), prog_type, name)
        except BpfError as first:
            if first.errno not in (errno.EINVAL, errno.EACCES, errno.ENOSPC):
                raise
        log = ctypes.create_string_buffer(LOG_SIZE)
        attr.log_level, attr.log_size, attr.log_buf = 1, LOG_SIZE, ctypes.addressof(log)
        try:
            return Program(bpf(5, attr), prog_type, name)
        except BpfError as e:
            raise BpfError(e.errno, "PROG_LOAD", _tail(log.value.decode(errors="replace")),
                           detail=name) from None
    finally:
        if btf is not None:
            btf.close()


def _tail(log: str, lines: int = 60) -> str:
    """The end of a verifier log: where it gave up, and why."""
    return "\n".join(log.splitlines()[-lines:])
