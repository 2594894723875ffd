"""Classic-BPF seccomp filters: an assembler, a policy compiler, a dumper and an emulator.

A :class:`Policy` says, per ABI, which syscalls stop in the tracer (``SECCOMP_RET_TRACE``)
and which fail inside the kernel (``SECCOMP_RET_ERRNO`` rules on the number and integer
arguments: no stop at all).  Everything else is allowed, so unnamed calls cost nothing.
The same policy can be evaluated in Python (:meth:`Policy.decide`) for processes that were
attached rather than spawned and so carry no filter of ours.
"""

import ctypes
import dataclasses
import errno as _errno
import itertools
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from syscalltrack.ptrace.sys import AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT

# Filter return values.
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
RET_ACTION_MASK = 0xFFFF0000
RET_DATA_MASK = 0x0000FFFF

ABIS = ("x86_64", "i386", "x32")
MAX_INSNS = 4096

# cBPF opcode pieces.
LD_W_ABS = 0x20
LD_IMM = 0x00
ALU_XOR_K = 0xA4
ALU_AND_K = 0x54
JA = 0x05
JEQ = 0x15
JGT = 0x25
JGE = 0x35
JSET = 0x45
RET_K = 0x06

_SECCOMP_SET_MODE_FILTER = 1
_NR_SECCOMP = 317
_PR_SET_NO_NEW_PRIVS = 38
_DATA = struct.Struct("<IIQ6Q")  # struct seccomp_data
_INSN = struct.Struct("<HBBI")  # struct sock_filter
_SIGN = 0x80000000
_U64 = 0xFFFFFFFFFFFFFFFF


def ret_errno(err: int) -> int:
    """The filter return value that fails a call with ``err`` (0 = pretend success)."""
    return RET_ERRNO | (err & RET_DATA_MASK)


def describe_ret(value: int) -> str:
    """Human name of a filter return value, for dumps and messages."""
    action, data = value & RET_ACTION_MASK, value & RET_DATA_MASK
    if value == RET_KILL_PROCESS:
        return "KILL_PROCESS"
    names = {RET_KILL_THREAD: "KILL_THREAD", RET_TRAP: "TRAP", RET_TRACE: "TRACE",
             RET_LOG: "LOG", RET_ALLOW: "ALLOW"}
    if action == RET_ERRNO:
        return f"ERRNO({_errno.errorcode.get(data, data)})"
    name = names.get(action, hex(action))
    return f"{name}({data})" if data else name


# ---------------------------------------------------------------- symbolic program

@dataclass(frozen=True, slots=True)
class Stmt:
    """A non-jump instruction (load, ALU, return)."""

    code: int
    k: int


@dataclass(frozen=True, slots=True)
class Jump:
    """A jump whose targets are label names; ``None`` means the next instruction.

    For ``JA`` only ``jt`` is used (cBPF's 32-bit unconditional offset).
    """

    code: int
    k: int
    jt: str | None
    jf: str | None = None


@dataclass(frozen=True, slots=True)
class Label:
    name: str


Item = Stmt | Jump | Label


def assemble(items: Sequence[Item]) -> list[tuple[int, int, int, int]]:
    """Resolve labels into (code, jt, jf, k) tuples.

    Conditional offsets are 8 bits; a branch that reaches further is rewritten into a
    short branch over ``JA`` trampolines, and positions are recomputed until stable.
    """
    items = list(items)
    fresh = itertools.count()
    while True:
        pos: dict[str, int] = {}
        n = 0
        for it in items:
            if isinstance(it, Label):
                pos[it.name] = n
            else:
                n += 1
        out = []
        far = None
        for i, it in enumerate(items):
            if isinstance(it, Label):
                continue
            here = len(out)
            if isinstance(it, Stmt):
                out.append((it.code, 0, 0, it.k))
                continue
            jt = pos[it.jt] - here - 1 if it.jt is not None else 0
            if it.code == JA:
                if jt < 0:
                    raise ValueError(f"backward jump to {it.jt}")
                out.append((JA, 0, 0, jt))
                continue
            jf = pos[it.jf] - here - 1 if it.jf is not None else 0
            if jt < 0 or jf < 0:
                raise ValueError(f"backward jump in {it}")
            if jt > 255 or jf > 255:
                far = i
                break
            out.append((it.code, jt, jf, it.k))
        if far is None:
            return out
        items[far:far + 1] = _trampoline(items[far], f".far{next(fresh)}")


def _trampoline(j: Jump, tag: str) -> list[Item]:
    after = f"{tag}.after"
    if j.jf is None:
        return [Jump(j.code, j.k, None, after), Jump(JA, 0, j.jt), Label(after)]
    if j.jt is None:
        return [Jump(j.code, j.k, after, None), Jump(JA, 0, j.jf), Label(after)]
    false = f"{tag}.false"
    return [Jump(j.code, j.k, None, false), Jump(JA, 0, j.jt),
            Label(false), Jump(JA, 0, j.jf)]


# ---------------------------------------------------------------- filter object

@dataclass(frozen=True)
class Filter:
    """An assembled filter: instructions plus what they mean to a human."""

    insns: tuple[tuple[int, int, int, int], ...]

    def __post_init__(self):
        if not 0 < len(self.insns) <= MAX_INSNS:
            raise ValueError(f"seccomp filter has {len(self.insns)} instructions "
                             f"(1..{MAX_INSNS} allowed)")

    def __len__(self) -> int:
        return len(self.insns)

    def to_bytes(self) -> bytes:
        return b"".join(_INSN.pack(c, jt, jf, k) for c, jt, jf, k in self.insns)

    def dump(self) -> str:
        """Readable assembly with absolute jump targets, for debugging generated filters."""
        return "\n".join(f"{i:04d}: {_disasm(i, insn)}" for i, insn in enumerate(self.insns))

    def run(self, nr: int, arch: int = AUDIT_ARCH_X86_64, args: Sequence[int] = (0,) * 6,
            ip: int = 0) -> int:
        """Emulate the filter on one call: what the kernel would return (for tests/dry runs)."""
        data = _DATA.pack(nr & 0xFFFFFFFF, arch, ip, *(a & _U64 for a in args))
        a = 0
        pc = 0
        while True:
            code, jt, jf, k = self.insns[pc]
            pc += 1
            if code == LD_W_ABS:
                a = struct.unpack_from("<I", data, k)[0]
            elif code == LD_IMM:
                a = k
            elif code == ALU_XOR_K:
                a ^= k
            elif code == ALU_AND_K:
                a &= k
            elif code == RET_K:
                return k
            elif code == JA:
                pc += k
            else:
                taken = {JEQ: a == k, JGT: a > k, JGE: a >= k, JSET: bool(a & k)}[code]
                pc += jt if taken else jf

    def install(self) -> None:
        """Install on the calling thread (seccomp(2), falling back to NO_NEW_PRIVS if needed).

        Root (CAP_SYS_ADMIN) needs no NO_NEW_PRIVS, and setting it would strip setuid
        programs of their privileges, so it is set only when the kernel asks for it.
        """
        code = self.to_bytes()
        buf = ctypes.create_string_buffer(code, len(code))
        prog = _SockFprog(len(self.insns), ctypes.addressof(buf))
        try:
            _seccomp_set_filter(prog)
        except PermissionError:
            if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {_errno.errorcode[err]}") \
                    from None
            _seccomp_set_filter(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _seccomp_set_filter(prog: _SockFprog) -> None:
    res = _libc.syscall(ctypes.c_long(_NR_SECCOMP), ctypes.c_long(_SECCOMP_SET_MODE_FILTER),
                        ctypes.c_long(0), ctypes.byref(prog))
    if res != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp(SECCOMP_SET_MODE_FILTER): {_errno.errorcode.get(err)}")


def _field_name(off: int) -> str:
    if off == 0:
        return "nr"
    if off == 4:
        return "arch"
    if off in (8, 12):
        return "ip" if off == 8 else "ip.hi"
    i, rest = divmod(off - 16, 8)
    return f"args[{i}].{'hi' if rest else 'lo'}"


def _disasm(i: int, insn: tuple[int, int, int, int]) -> str:
    code, jt, jf, k = insn
    if code == LD_W_ABS:
        return f"ld [{k}]        ; {_field_name(k)}"
    if code == LD_IMM:
        return f"ld #{k:#x}"
    if code == ALU_XOR_K:
        return f"xor #{k:#x}"
    if code == ALU_AND_K:
        return f"and #{k:#x}"
    if code == RET_K:
        return f"ret #{k:#010x}  ; {describe_ret(k)}"
    if code == JA:
        return f"ja {i + 1 + k:04d}"
    name = {JEQ: "jeq", JGT: "jgt", JGE: "jge", JSET: "jset"}.get(code, f"op{code:#x}")
    return f"{name} #{k:#x}, {i + 1 + jt:04d}, {i + 1 + jf:04d}"


# ---------------------------------------------------------------- policy

_OPS = ("==", "!=", "<", "<=", ">", ">=", "&")


@dataclass(frozen=True, slots=True)
class ArgCondition:
    """``(args[index] & mask) OP value``; ``&`` is true when any bit of ``value`` is set.

    ``bits=32`` compares only the low half (int arguments such as a dirfd, whose upper
    register half the kernel ignores); ``signed`` compares as two's complement.
    ``mask`` (None: all bits) tests flag fields such as ``flags & AT_REMOVEDIR``.
    """

    index: int
    op: str
    value: int
    signed: bool = False
    bits: int = 64
    mask: int | None = None

    def __post_init__(self):
        if not 0 <= self.index < 6:
            raise ValueError(f"argument index {self.index} out of range 0..5")
        if self.op not in _OPS:
            raise ValueError(f"unknown operator {self.op!r}")
        if self.bits not in (32, 64):
            raise ValueError("bits must be 32 or 64")

    def _norm(self, v: int) -> int:
        width = 1 << self.bits
        v &= width - 1
        if self.signed and v >= width >> 1:
            v -= width
        return v

    def matches(self, args: Sequence[int]) -> bool:
        raw = args[self.index] if self.mask is None else args[self.index] & self.mask
        a, v = self._norm(raw), self._norm(self.value)
        if self.op == "&":
            return bool(a & v)
        return {"==": a == v, "!=": a != v, "<": a < v, "<=": a <= v,
                ">": a > v, ">=": a >= v}[self.op]


@dataclass(frozen=True, slots=True)
class ErrnoRule:
    """Fail ``abi``/``nr`` with ``errno`` in the kernel when all conditions hold."""

    abi: str
    nr: int
    conditions: tuple[ArgCondition, ...]
    errno: int

    def __post_init__(self):
        if self.abi not in ABIS:
            raise ValueError(f"unknown ABI {self.abi!r}")
        if not 0 <= self.errno <= 4095:
            raise ValueError(f"errno {self.errno} out of range 0..4095")


@dataclass(frozen=True)
class Policy:
    """What the filter does, per ABI.  Syscall numbers for x32 are given without the x32 bit.

    ``otherwise`` maps an ABI to the return value for calls it neither traces nor
    matches (absent: ALLOW); ``{"i386": RET_TRACE, "x32": RET_TRACE}`` routes every
    foreign-ABI call to the tracer.  ``unknown_arch`` covers audit arches other than
    x86_64/i386, which an x86_64 kernel never produces.
    """

    trace: Mapping[str, Iterable[int]] = field(default_factory=dict)
    errno_rules: Sequence[ErrnoRule] = ()
    otherwise: Mapping[str, int] = field(default_factory=dict)
    unknown_arch: int = RET_KILL_PROCESS

    def __post_init__(self):
        for abi in (*self.trace, *self.otherwise):
            if abi not in ABIS:
                raise ValueError(f"unknown ABI {abi!r}")
        object.__setattr__(self, "trace", {a: frozenset(v) for a, v in self.trace.items()})
        object.__setattr__(self, "errno_rules", tuple(self.errno_rules))

    def default(self, abi: str) -> int:
        return self.otherwise.get(abi, RET_ALLOW)

    def decide(self, abi: str, nr: int, args: Sequence[int]) -> int:
        """The filter's answer computed in Python (for tracees without our filter)."""
        for rule in self.errno_rules:
            if rule.abi == abi and rule.nr == nr and all(c.matches(args)
                                                         for c in _abi_conditions(rule)):
                return ret_errno(rule.errno)
        if nr in self.trace.get(abi, ()):
            return RET_TRACE
        return self.default(abi)

    def compile(self) -> Filter:
        return Filter(tuple(assemble(_Builder(self).build())))


def _abi_conditions(rule: ErrnoRule) -> tuple[ArgCondition, ...]:
    """i386 arguments are 32-bit: compare only the low halves for that ABI."""
    if rule.abi != "i386":
        return rule.conditions
    return tuple(ArgCondition(c.index, c.op, c.value, c.signed, 32, c.mask)
                 for c in rule.conditions)


Target = int | tuple[list[ErrnoRule], int]


class _Builder:
    """Lays out: arch dispatch → per-ABI number search → per-number rule blocks → returns."""

    LINEAR = 4  # at most this many numbers are compared one by one

    def __init__(self, policy: Policy):
        self.p = policy
        self.items: list[Item] = []
        self.rets: dict[int, str] = {}
        self.labels = itertools.count()

    def label(self, hint: str) -> str:
        return f"{hint}{next(self.labels)}"

    def ret(self, value: int) -> str:
        """A shared label returning ``value`` (emitted once, at the end)."""
        if value not in self.rets:
            self.rets[value] = f"ret_{value:08x}"
        return self.rets[value]

    def build(self) -> list[Item]:
        p = self.p
        x86, i386, x32 = "abi_x86_64", "abi_i386", "abi_x32"
        e = self.items
        e += [Stmt(LD_W_ABS, 4),
              Jump(JEQ, AUDIT_ARCH_X86_64, x86, None),
              Jump(JEQ, AUDIT_ARCH_I386, i386, self.ret(p.unknown_arch)),
              Label(x86), Stmt(LD_W_ABS, 0),
              Jump(JGE, X32_SYSCALL_BIT, None, "x86_64_numbers"),
              # x32 numbers carry bit 30; larger values are no syscall at all.
              Jump(JGE, _SIGN, "x86_64_numbers", x32),
              Label("x86_64_numbers")]
        self.abi("x86_64", 0)
        e += [Label(x32)]
        self.abi("x32", X32_SYSCALL_BIT)
        e += [Label(i386), Stmt(LD_W_ABS, 0)]
        self.abi("i386", 0)
        return [*e,
                *itertools.chain.from_iterable(
                    (Label(name), Stmt(RET_K, value)) for value, name in self.rets.items())]

    def abi(self, abi: str, bias: int) -> None:
        default = self.p.default(abi)
        traced = self.p.trace.get(abi, frozenset())
        rules: dict[int, list[ErrnoRule]] = {}
        for r in self.p.errno_rules:
            if r.abi == abi:
                rules.setdefault(r.nr, []).append(r)
        targets: dict[int, Target] = {}
        for nr in sorted(traced | rules.keys()):
            end = RET_TRACE if nr in traced else default
            if nr in rules:
                targets[nr + bias] = (rules[nr], end)
            elif end != default:
                targets[nr + bias] = end
        self.search(sorted(targets.items()), self.ret(default))

    def search(self, entries: list[tuple[int, Target]], miss: str) -> None:
        """Binary search on A (the number) down to short linear runs of compares.

        A target is a return value, or (rules, return value when none matches).
        """
        e = self.items
        if len(entries) <= self.LINEAR:
            for nr, target in entries:
                # The number's code sits right after its compare: no far branches.
                skip = self.label("skip")
                e.append(Jump(JEQ, nr, None, skip))
                if isinstance(target, int):
                    e.append(Stmt(RET_K, target))
                else:
                    self.rule_block(*target)
                e.append(Label(skip))
            e.append(Jump(JA, 0, miss))
            return
        mid = len(entries) // 2
        upper = self.label("ge")
        e.append(Jump(JGE, entries[mid][0], upper, None))
        self.search(entries[:mid], miss)
        e.append(Label(upper))
        self.search(entries[mid:], miss)

    def rule_block(self, rules: list[ErrnoRule], end: int) -> None:
        b = self.items
        for rule in rules:
            nxt = self.label("next")
            for cond in _abi_conditions(rule):
                ok = self.label("ok")
                self.condition(cond, ok, nxt)
                b.append(Label(ok))
            b += [Stmt(RET_K, ret_errno(rule.errno)), Label(nxt)]
        b.append(Stmt(RET_K, end))

    def condition(self, c: ArgCondition, t: str, f: str) -> None:
        """Branch to ``t`` if ``c`` holds else ``f``, comparing 32-bit halves, high first."""
        if c.op == "!=":
            return self.condition(dataclasses.replace(c, op="=="), f, t)
        if c.op in ("<", "<="):
            return self.condition(dataclasses.replace(c, op=">=" if c.op == "<" else ">"), f, t)
        b = self.items
        lo_off = 16 + 8 * c.index
        if c.op == "&":
            v = c.value & (_U64 if c.mask is None else c.mask) & _U64
            vlo, vhi = v & 0xFFFFFFFF, v >> 32
            if c.bits == 64 and vhi:
                b += [Stmt(LD_W_ABS, lo_off + 4), Jump(JSET, vhi, t, None)]
            b += [Stmt(LD_W_ABS, lo_off), Jump(JSET, vlo, t, f)] if vlo else [Jump(JA, 0, f)]
            return None
        v = c.value & _U64
        vlo, vhi = v & 0xFFFFFFFF, v >> 32
        mask = _U64 if c.mask is None else c.mask & _U64
        # Signed order is unsigned order once the sign bit of the top half is flipped.
        if c.bits == 64:
            b.append(Stmt(LD_W_ABS, lo_off + 4))
            if mask >> 32 != 0xFFFFFFFF:
                b.append(Stmt(ALU_AND_K, mask >> 32))
            if c.signed:
                b.append(Stmt(ALU_XOR_K, _SIGN))
                vhi ^= _SIGN
            if c.op == "==":
                b.append(Jump(JEQ, vhi, None, f))
            else:
                b += [Jump(JGT, vhi, t, None), Jump(JEQ, vhi, None, f)]
        b.append(Stmt(LD_W_ABS, lo_off))
        if mask & 0xFFFFFFFF != 0xFFFFFFFF:
            b.append(Stmt(ALU_AND_K, mask & 0xFFFFFFFF))
        if c.signed and c.bits == 32:
            b.append(Stmt(ALU_XOR_K, _SIGN))
            vlo ^= _SIGN
        code = {"==": JEQ, ">": JGT, ">=": JGE}[c.op]
        b.append(Jump(code, vlo, t, f))
        return None
