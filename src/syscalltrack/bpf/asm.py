"""eBPF instructions as immutable values, an assembler and a disassembler.

An :class:`Instruction` keeps its jump target and map reference *symbolic*
(``label``/``map_ref``) until :func:`link` and :func:`encode` resolve them, so
generated code can be built, compared and printed without a kernel::

    a = Assembler()
    a.mov(R0, 0)
    a.jeq(R1, 3, "out")
    a.mov(R0, 1)
    a.label("out")
    a.exit()
    print(disassemble(a.instructions()))

Constructors (module functions, and methods of :class:`Assembler`): ALU64
``add sub mul div or_ and_ lsh rsh mod xor mov arsh neg`` and their ALU32
forms ``add32 ... arsh32 neg32``, ``bswap``; jumps ``jeq jne jgt jge jlt jle
jsgt jsge jslt jsle jset`` plus ``...32`` forms and ``ja``; memory ``ldx stx
st`` (size in bytes) with ``ldxdw/ldxw/ldxh/ldxb stxdw/...`` shorthands and
``atomic_add``; ``ld_imm64``, ``ld_map_fd``, ``ld_func`` (a callback's address,
for ``bpf_loop``; see :func:`subprograms`), ``call`` (helper name or id),
``exit``. The ALU and jump families are generated from the opcode tables.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum

# Instruction classes.
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
# Operand source.
K, X = 0x00, 0x08
# Memory sizes and modes.
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
IMM, MEM, ATOMIC = 0x00, 0x60, 0xC0
PSEUDO_MAP_FD = 1
PSEUDO_FUNC = 4

_SIZE_CODE = {1: B, 2: H, 4: W, 8: DW}
_CODE_SIZE = {v: k for k, v in _SIZE_CODE.items()}

_ALU_OPS = {  # name: (code, C-like operator)
    "add": (0x00, "+="), "sub": (0x10, "-="), "mul": (0x20, "*="), "div": (0x30, "/="),
    "or_": (0x40, "|="), "and_": (0x50, "&="), "lsh": (0x60, "<<="), "rsh": (0x70, ">>="),
    "mod": (0x90, "%="), "xor": (0xA0, "^="), "mov": (0xB0, "="), "arsh": (0xC0, "s>>="),
}
NEG, END = 0x80, 0xD0
_ALU_TEXT = {code: text for code, text in _ALU_OPS.values()}

_JMP_OPS = {  # name: (code, C-like comparison)
    "jeq": (0x10, "=="), "jgt": (0x20, ">"), "jge": (0x30, ">="), "jset": (0x40, "&"),
    "jne": (0x50, "!="), "jsgt": (0x60, "s>"), "jsge": (0x70, "s>="), "jlt": (0xA0, "<"),
    "jle": (0xB0, "<="), "jslt": (0xC0, "s<"), "jsle": (0xD0, "s<="),
}
JA, CALL, EXIT = 0x00, 0x80, 0x90
_JMP_TEXT = {code: text for code, text in _JMP_OPS.values()}

# Helper ids from the kernel's ``___BPF_FUNC_MAPPER`` (stable ABI numbers).
HELPERS: dict[str, int] = {
    "map_lookup_elem": 1, "map_update_elem": 2, "map_delete_elem": 3, "probe_read": 4,
    "ktime_get_ns": 5, "trace_printk": 6, "get_prandom_u32": 7, "get_smp_processor_id": 8,
    "tail_call": 12, "get_current_pid_tgid": 14, "get_current_uid_gid": 15,
    "get_current_comm": 16, "perf_event_output": 25, "get_current_task": 35,
    "probe_write_user": 36, "probe_read_str": 45, "override_return": 58, "get_stack": 67,
    "get_current_cgroup_id": 80, "send_signal": 109, "probe_read_user": 112,
    "probe_read_kernel": 113, "probe_read_user_str": 114, "probe_read_kernel_str": 115,
    "send_signal_thread": 117, "jiffies64": 118, "get_ns_current_pid_tgid": 120,
    "ktime_get_boot_ns": 125, "ringbuf_output": 130, "ringbuf_reserve": 131,
    "ringbuf_submit": 132, "ringbuf_discard": 133, "ringbuf_query": 134,
    "get_current_task_btf": 158, "loop": 181,
}
HELPER_NAMES = {v: k for k, v in HELPERS.items()}

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


class Reg(IntEnum):
    """Registers. R10 (alias FP) is the read-only frame pointer."""

    R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)


R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = Reg
FP = R10


class AsmError(ValueError):
    """An instruction that cannot be built, linked or encoded."""


@dataclass(frozen=True, slots=True)
class Instruction:
    """One eBPF instruction; LD_IMM64 is a single value covering two slots.

    ``symbol`` names this instruction as a jump target; ``label`` is the
    symbolic target of a jump (``off`` is filled by :func:`link`); ``map_ref``
    names the map whose fd an LD_IMM64 loads (filled by :func:`encode`).
    """

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    label: str | None = None
    map_ref: str | None = None
    symbol: str | None = None

    @property
    def cls(self) -> int:
        return self.opcode & 0x07

    @property
    def is_ld_imm64(self) -> bool:
        return self.opcode == LD | IMM | DW

    @property
    def slots(self) -> int:
        return 2 if self.is_ld_imm64 else 1

    @property
    def is_jump(self) -> bool:
        return self.cls in (JMP, JMP32) and self.opcode & 0xF0 not in (CALL, EXIT)

    def __str__(self) -> str:
        return format_instruction(self)


def _imm32(value: int, what: str) -> int:
    if not INT32_MIN <= value <= INT32_MAX:
        raise AsmError(f"{what}: immediate {value:#x} does not fit in a signed 32-bit field; "
                       "load it with ld_imm64 into a register and use the register form")
    return value


def _reg(value) -> Reg:
    if not isinstance(value, Reg):
        raise AsmError(f"expected a register, got {value!r}")
    return value


def _operand(src) -> tuple[int, int, int]:
    """(source bit, src register, imm) for a register-or-immediate operand."""
    if isinstance(src, Reg):
        return X, src, 0
    if isinstance(src, bool) or not isinstance(src, int):
        raise AsmError(f"operand must be a register or an int, got {src!r}")
    return K, 0, _imm32(src, "operand")


def _size(size: int) -> int:
    try:
        return _SIZE_CODE[size]
    except KeyError:
        raise AsmError(f"memory access size must be 1, 2, 4 or 8 bytes, got {size!r}") from None


def _off16(off: int) -> int:
    if not -(1 << 15) <= off < (1 << 15):
        raise AsmError(f"offset {off} does not fit in a signed 16-bit field")
    return off


def _alu(cls: int, code: int):
    def op(dst: Reg, src) -> Instruction:
        source, sreg, imm = _operand(src)
        return Instruction(cls | code | source, _reg(dst), sreg, 0, imm)
    return op


def _jump(cls: int, code: int):
    def op(dst: Reg, src, target: str | int) -> Instruction:
        source, sreg, imm = _operand(src)
        return _with_target(Instruction(cls | code | source, _reg(dst), sreg, 0, imm), target)
    return op


def _with_target(insn: Instruction, target: str | int) -> Instruction:
    if isinstance(target, str):
        return replace(insn, label=target)
    return replace(insn, off=_off16(target))


# Constructors: ALU64 ``add`` ... ``arsh`` and ALU32 ``add32`` ..., jumps ``jeq`` ...
# and ``jeq32`` ... (``or_``/``and_`` avoid Python keywords).
_CONSTRUCTORS: dict[str, object] = {}
for _name, (_code, _) in _ALU_OPS.items():
    _CONSTRUCTORS[_name] = _alu(ALU64, _code)
    _CONSTRUCTORS[_name.rstrip("_") + "32"] = _alu(ALU, _code)
for _name, (_code, _) in _JMP_OPS.items():
    _CONSTRUCTORS[_name] = _jump(JMP, _code)
    _CONSTRUCTORS[_name + "32"] = _jump(JMP32, _code)
globals().update(_CONSTRUCTORS)


def neg(dst: Reg) -> Instruction:
    return Instruction(ALU64 | NEG, _reg(dst))


def neg32(dst: Reg) -> Instruction:
    return Instruction(ALU | NEG, _reg(dst))


def bswap(dst: Reg, bits: int, big_endian: bool = True) -> Instruction:
    """Byte-order conversion of the low ``bits`` (16/32/64) of dst."""
    if bits not in (16, 32, 64):
        raise AsmError(f"byte swap width must be 16, 32 or 64, got {bits}")
    return Instruction(ALU | END | (X if big_endian else K), _reg(dst), 0, 0, bits)


def ja(target: str | int) -> Instruction:
    return _with_target(Instruction(JMP | JA), target)


def call(helper: str | int) -> Instruction:
    """Call a helper by name (see HELPERS) or raw id."""
    if isinstance(helper, str):
        try:
            helper = HELPERS[helper]
        except KeyError:
            raise AsmError(f"unknown helper {helper!r}; known: {sorted(HELPERS)}") from None
    return Instruction(JMP | CALL, imm=helper)


def exit() -> Instruction:
    return Instruction(JMP | EXIT)


def ldx(size: int, dst: Reg, src: Reg, off: int) -> Instruction:
    """``dst = *(size *)(src + off)``."""
    return Instruction(LDX | MEM | _size(size), _reg(dst), _reg(src), _off16(off))


def stx(size: int, dst: Reg, off: int, src: Reg) -> Instruction:
    """``*(size *)(dst + off) = src``."""
    return Instruction(STX | MEM | _size(size), _reg(dst), _reg(src), _off16(off))


def st(size: int, dst: Reg, off: int, imm: int) -> Instruction:
    """``*(size *)(dst + off) = imm``."""
    return Instruction(ST | MEM | _size(size), _reg(dst), 0, _off16(off), _imm32(imm, "st"))


def atomic_add(size: int, dst: Reg, off: int, src: Reg) -> Instruction:
    """``lock *(size *)(dst + off) += src`` (size 4 or 8): per-CPU-safe counters."""
    if size not in (4, 8):
        raise AsmError("atomic add works on 4 or 8 bytes")
    return Instruction(STX | ATOMIC | _size(size), _reg(dst), _reg(src), _off16(off), 0)


def ld_imm64(dst: Reg, value: int) -> Instruction:
    """Load any 64-bit constant (two slots)."""
    if not -(1 << 63) <= value < (1 << 64):
        raise AsmError(f"ld_imm64: {value:#x} does not fit in 64 bits")
    return Instruction(LD | IMM | DW, _reg(dst), 0, 0, value & 0xFFFF_FFFF_FFFF_FFFF)


def ld_map_fd(dst: Reg, map_name: str) -> Instruction:
    """Load a map pointer; the name is resolved to an fd by :func:`encode`."""
    return Instruction(LD | IMM | DW, _reg(dst), PSEUDO_MAP_FD, 0, 0, map_ref=map_name)


def ld_func(dst: Reg, target: str) -> Instruction:
    """``dst`` = the address of the subprogram at label ``target`` (a callback);
    :func:`link` turns the label into the slot distance the kernel wants in imm."""
    return Instruction(LD | IMM | DW, _reg(dst), PSEUDO_FUNC, 0, 0, label=target)


def ldxdw(dst: Reg, src: Reg, off: int) -> Instruction:
    return ldx(8, dst, src, off)


def ldxw(dst: Reg, src: Reg, off: int) -> Instruction:
    return ldx(4, dst, src, off)


def ldxh(dst: Reg, src: Reg, off: int) -> Instruction:
    return ldx(2, dst, src, off)


def ldxb(dst: Reg, src: Reg, off: int) -> Instruction:
    return ldx(1, dst, src, off)


def stxdw(dst: Reg, off: int, src: Reg) -> Instruction:
    return stx(8, dst, off, src)


def stxw(dst: Reg, off: int, src: Reg) -> Instruction:
    return stx(4, dst, off, src)


def stxh(dst: Reg, off: int, src: Reg) -> Instruction:
    return stx(2, dst, off, src)


def stxb(dst: Reg, off: int, src: Reg) -> Instruction:
    return stx(1, dst, off, src)


for _fn in (neg, neg32, bswap, ja, call, exit, ldx, stx, st, atomic_add, ld_imm64,
            ld_map_fd, ld_func, ldxdw, ldxw, ldxh, ldxb, stxdw, stxw, stxh, stxb):
    _CONSTRUCTORS[_fn.__name__] = _fn


class Assembler:
    """Accumulates instructions; every constructor of this module is a method.

    ``a.mov(R1, 5)`` appends ``mov(R1, 5)``; ``a.label("x")`` names the next
    instruction appended.
    """

    def __init__(self) -> None:
        self._insns: list[Instruction] = []
        self._pending: str | None = None
        self._symbols: set[str] = set()

    def label(self, name: str) -> None:
        if name in self._symbols or name == self._pending:
            raise AsmError(f"label {name!r} defined twice")
        if self._pending is not None:
            raise AsmError(f"labels {self._pending!r} and {name!r} on the same instruction")
        self._pending = name

    def emit(self, *insns: Instruction) -> None:
        for insn in insns:
            if self._pending is not None:
                insn = replace(insn, symbol=self._pending)
                self._symbols.add(self._pending)
                self._pending = None
            elif insn.symbol is not None:
                if insn.symbol in self._symbols:
                    raise AsmError(f"label {insn.symbol!r} defined twice")
                self._symbols.add(insn.symbol)
            self._insns.append(insn)

    def instructions(self) -> tuple[Instruction, ...]:
        if self._pending is not None:
            raise AsmError(f"label {self._pending!r} is not followed by an instruction")
        return tuple(self._insns)

    def __len__(self) -> int:
        return len(self._insns)


def _method(fn):
    @functools.wraps(fn)
    def method(self: Assembler, *args, **kwargs) -> None:
        self.emit(fn(*args, **kwargs))
    return method


for _name, _fn in _CONSTRUCTORS.items():
    setattr(Assembler, _name, _method(_fn))


def link(insns: Sequence[Instruction]) -> tuple[Instruction, ...]:
    """Resolve symbolic labels into slot offsets (LD_IMM64 counts twice): a jump's
    ``off``, an :func:`ld_func`'s ``imm`` (the callee is at its slot + imm + 1)."""
    positions: dict[str, int] = {}
    slot = 0
    for insn in insns:
        if insn.symbol is not None:
            if insn.symbol in positions:
                raise AsmError(f"label {insn.symbol!r} defined twice")
            positions[insn.symbol] = slot
        slot += insn.slots
    out = []
    slot = 0
    for insn in insns:
        slot += insn.slots
        if insn.label is not None:
            if insn.label not in positions:
                raise AsmError(f"jump to undefined label {insn.label!r}")
            if insn.is_ld_imm64:
                insn = replace(insn, imm=positions[insn.label] - slot + 1)
            else:
                insn = replace(insn, off=_off16(positions[insn.label] - slot))
        out.append(insn)
    return tuple(out)


def subprograms(insns: Sequence[Instruction]) -> tuple[int, ...]:
    """Start slots of the subprograms (callbacks) ``insns`` reference, in order.

    The verifier wants a BTF FUNC record for each, and for the main program at
    slot 0 (``bpf.btf.stub_func_info``).
    """
    return tuple(sorted({i.imm + slot + 1 for slot, i in _slots(link(insns))
                         if i.is_ld_imm64 and i.src == PSEUDO_FUNC}))


def _slots(insns: Sequence[Instruction]) -> Iterable[tuple[int, Instruction]]:
    slot = 0
    for insn in insns:
        yield slot, insn
        slot += insn.slots


_SLOT = struct.Struct("<BBhi")
_WIDE = struct.Struct("<BBhI")  # LD_IMM64 halves are unsigned


def encode(insns: Sequence[Instruction], maps: Mapping[str, int] | None = None) -> bytes:
    """Link and encode to kernel bytecode; ``maps`` gives the fd for each map_ref."""
    maps = maps or {}
    buf = bytearray()
    for insn in link(insns):
        imm = insn.imm
        if insn.map_ref is not None:
            if insn.map_ref not in maps:
                raise AsmError(f"program references map {insn.map_ref!r} but only "
                               f"{sorted(maps)} were given")
            imm = maps[insn.map_ref]
        regs = (insn.src << 4) | insn.dst
        if insn.is_ld_imm64:
            buf += _WIDE.pack(insn.opcode, regs, insn.off, imm & 0xFFFF_FFFF)
            buf += _WIDE.pack(0, 0, 0, (imm >> 32) & 0xFFFF_FFFF)
            continue
        buf += _SLOT.pack(insn.opcode, regs, insn.off, imm)
    return bytes(buf)


def decode(code: bytes) -> tuple[Instruction, ...]:
    """Bytecode back to instructions (offsets stay numeric, map fds in imm)."""
    if len(code) % 8:
        raise AsmError(f"bytecode length {len(code)} is not a multiple of 8")
    out = []
    slots = list(_SLOT.iter_unpack(code))
    i = 0
    while i < len(slots):
        opcode, regs, off, imm = slots[i]
        insn = Instruction(opcode, regs & 0x0F, regs >> 4, off, imm)
        if insn.is_ld_imm64:
            if i + 1 >= len(slots):
                raise AsmError("truncated LD_IMM64")
            hi = slots[i + 1][3] & 0xFFFF_FFFF
            insn = replace(insn, imm=(hi << 32) | (imm & 0xFFFF_FFFF))
            i += 1
        out.append(insn)
        i += 1
    return tuple(out)


def _r(cls: int, n: int) -> str:
    return f"{'w' if cls in (ALU, JMP32) else 'r'}{n}"


_SIZE_NAME = {B: "u8", H: "u16", W: "u32", DW: "u64"}


def format_instruction(insn: Instruction) -> str:
    """One instruction in the kernel verifier's C-like notation."""
    cls, op, source = insn.cls, insn.opcode & 0xF0, insn.opcode & 0x08
    imm = insn.imm
    if cls in (ALU, ALU64):
        dst = _r(cls, insn.dst)
        if op == NEG:
            return f"{dst} = -{dst}"
        if op == END:
            return f"r{insn.dst} = {'be' if source else 'le'}{imm} r{insn.dst}"
        operand = _r(cls, insn.src) if source else str(imm)
        return f"{dst} {_ALU_TEXT.get(op, f'alu{op:#x}')} {operand}"
    if cls in (JMP, JMP32):
        if op == CALL:
            return f"call {HELPER_NAMES.get(imm, imm)}"
        if op == EXIT:
            return "exit"
        target = f"goto {insn.off:+d}" + (f" <{insn.label}>" if insn.label else "")
        if op == JA:
            return target
        operand = _r(cls, insn.src) if source else str(imm)
        return f"if {_r(cls, insn.dst)} {_JMP_TEXT.get(op, f'j{op:#x}')} {operand} {target}"
    size = _SIZE_NAME[insn.opcode & 0x18]
    mode = insn.opcode & 0xE0
    if insn.is_ld_imm64:
        if insn.src == PSEUDO_MAP_FD:
            return f"r{insn.dst} = map[{insn.map_ref or f'fd {imm}'}]"
        if insn.src == PSEUDO_FUNC:
            return f"r{insn.dst} = func[{insn.label or f'{imm:+d}'}]"
        return f"r{insn.dst} = {imm:#x} ll"
    if cls == LDX and mode == MEM:
        return f"r{insn.dst} = *({size} *)(r{insn.src} {insn.off:+d})"
    if cls == STX and mode == MEM:
        return f"*({size} *)(r{insn.dst} {insn.off:+d}) = r{insn.src}"
    if cls == STX and mode == ATOMIC and imm == 0:
        return f"lock *({size} *)(r{insn.dst} {insn.off:+d}) += r{insn.src}"
    if cls == ST and mode == MEM:
        return f"*({size} *)(r{insn.dst} {insn.off:+d}) = {imm}"
    return (f"<opcode {insn.opcode:#04x} dst={insn.dst} src={insn.src} "
            f"off={insn.off} imm={imm}>")


def disassemble(insns: Iterable[Instruction] | bytes) -> str:
    """Readable listing with slot numbers and labels; accepts bytecode too."""
    if isinstance(insns, bytes | bytearray):
        insns = decode(bytes(insns))
    insns = tuple(insns)
    if any(i.label is not None for i in insns):
        insns = link(insns)
    lines = []
    slot = 0
    for insn in insns:
        if insn.symbol is not None:
            lines.append(f"{insn.symbol}:")
        lines.append(f"{slot:5d}: {format_instruction(insn)}")
        slot += insn.slots
    return "\n".join(lines)
