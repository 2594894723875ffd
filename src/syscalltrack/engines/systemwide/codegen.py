"""From a validated RuleSet to eBPF programs: one per (system call, ABI, when) with rules.

A rule list runs on its x86_64 call and on each i386 (``int $0x80``) call of
its family (``unlink``: x86_64 87 and i386 10), with the same body; i386
programs see 32-bit registers and the compat signature (``long`` and
pointers 32-bit), and their events say abi ``i386`` with the i386 number.
The programs hang off *dispatchers* on the raw syscall tracepoints (see ``engine`` for why
and what that costs). Not seen through their family: the i386 multiplexers
``socketcall`` and ``ipc`` (a ``connect`` rule misses ``socketcall(SYS_CONNECT,
...)``); a rule may name them directly.

Program shape (``dump()`` prints it next to each rule):

* a *prologue* that puts the call's raw arguments into the frame
  (``layout.py``): from the kernel's ``pt_regs`` (tp_btf on the raw tracepoint:
  x86_64 di si dx r10 r8 r9, i386 bx cx dx si di bp, offsets from BTF), from the
  tracepoint context (``syscalls:sys_enter_X`` keeps argument i at the
  offset its format file gives), from the saved entry for exit programs,
  or -- the *test* prologue -- from a fake ``pt_regs`` in the test's own
  memory with ``probe_read_user``, so that BPF_PROG_TEST_RUN on a
  RAW_TRACEPOINT program runs exactly the body that production runs;
* the ids, COMM and strings the filters of this list read (and nothing more:
  a call that no rule can match pays for what its filters look at only);
* the rules in list order: the variant's condition (``unlinkat`` counts as
  ``unlink`` only without AT_REMOVEDIR), then the filter; the first match
  jumps to the shared *emit* tail with the rule index -- first-match is
  decided in the kernel;
* emit: count the match, reserve a fixed-size record in the ring buffer
  (count it lost per rule when the ring is full), fill and submit it, then
  act: KILL and SUSPEND send SIGKILL / SIGSTOP to the caller.

Filter semantics are ``rules.values``'s, reproduced with 64-bit registers:
arguments normalised to their C type (sign- or zero-extended), ``+ - ~``
wrapping, signed comparisons. ``==``, ``startswith`` and ``in`` against short
literals compare the string's length, then its words, with the literal's; other
string tests run a byte automaton (``dfa.py``) over the string with ``bpf_loop``.
A test that the kernel cannot decide makes
the rule *undecided*: no action, and an undecided notice goes to user space
naming the rule -- never a wrong verdict. That happens only for

* a string with no NUL within the compare window (default 4096 bytes =
  PATH_MAX: 4096 bytes or more, a name the kernel refuses with ENAMETOOLONG;
  the 4095 bytes of the longest one it takes and their NUL fit, and are decided),
  when the automaton has not settled on the bytes read;
* a classic rule's path on a modern call relative to a directory fd
  (``unlinkat(fd, "x", 0)`` seen by an ``unlink`` rule: the reference wants
  it resolved against the fd, which this engine does not do);
* a filter reading an argument that the i386 call lacks (i386 ``mmap`` takes
  one pointer to the six values; ``sigaction`` has three of four);
* a string or socket address that could not be read (a pointer other than
  NULL): BPF cannot fault pages in, so memory the caller has not touched yet
  (a path in a library's data used for the first time) reads as an error
  though the kernel will read it. Not read again at the exit: by then the call
  may have written over it (``readlink(p, p, n)``), or another thread, and the
  rule would decide on bytes the call never took. NULL makes every string test
  false, as in the rule language.

Rejected at load, with the rule's position and "use sctrace": FAIL (this
kernel cannot change a call's result; see ``engine.check_fail``), REWRITE,
``PATH[n]`` and ``CWD`` (they need the caller's cwd or a dirfd resolved to a
path; not computed in the kernel), ``==``/``!=`` between two strings that
are both read at run time, string tests on buffer arguments, patterns whose
automaton needs more than 256 states, calls with no x86_64 tracepoint, and
log formats printing ``%cwd`` or ``%path`` (they would print ``?`` on every line).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from functools import cache

from ...bpf import asm, tracefs
from ...bpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, Instruction
from ...bpf.prog import ProgType
from ...rules import ActionType, BoundRule, Diagnostic, RuleError, RuleSet, When
from ...rules.ast import Binary, Expr, In, Unary, Var
from ...rules.errors import printable
from ...rules.macros import Macro, split_log_format
from ...rules.values import const_value, is_constant, is_member, is_string
from ...syscalls import I386, X86_64, Arg, ArgKind, FromStruct, Syscall, filled_length, table
from . import dfa as dfa_mod
from .layout import (
    ARGS,
    CRED,
    EXTRA,
    I386_NR,
    KIND_UNDECIDED,
    KIND_UNREADABLE,
    NR,
    PID,
    PPID,
    REC_FRAME,
    REC_KIND,
    REC_RULE,
    REC_TS,
    RET,
    TID,
    TS_COMPAT,
    Kernel,
    Layout,
    kernel,
)

ACTION_CODES = {ActionType.LOG: 0, ActionType.KILL: 1, ActionType.SUSPEND: 2}
SIGNALS = {1: 9, 2: 19}  # KILL -> SIGKILL, SUSPEND -> SIGSTOP
AT_FDCWD = -100
NOEXIST_ANY = 0

# Map names (at most 15 characters).
SCRATCH, EVENTS, COUNTERS, DFA, AFTER = "sct_scratch", "sct_events", "sct_counters", "sct_dfa", \
    "sct_after"
COUNTER_FIELDS = ("matches", "lost", "undecided")

# Stack: expression slots from fp-8 down, then fixed slots.
MAX_DEPTH = 50
LOOP_CTX = -432  # bpf_loop context: buffer, table, state
KEY = -440
OUTCOME = -448
TMP = -456
TS = -464
TMP2 = -472

# Up to this many distinct call numbers, a dispatcher compares the number before anything
# else and returns at once for the others.
PREFILTER_MAX = 32
# String tests against literals up to DIRECT_MAX bytes (`==`, `startswith`, `in` of
# up to DIRECT_ITEMS of them) compare words of the frame: no automaton, no bpf_loop.
DIRECT_MAX, DIRECT_ITEMS = 64, 8
JUMP_MAX = (1 << 15) - 1  # the farthest a jump reaches, in instructions (16-bit offset)
# Prog arrays the dispatchers tail-call through, indexed by call number.
TABLES = {(X86_64, When.BEFORE): "sct_x86_enter", (X86_64, When.AFTER): "sct_x86_exit",
          (I386, When.BEFORE): "sct_i386_enter", (I386, When.AFTER): "sct_i386_exit"}


class Prologue:
    TRACEPOINT = "tracepoint"  # syscalls:sys_enter_X / sys_exit_X context (x86_64 only)
    BTF = "btf"  # tp_btf sys_enter / sys_exit context (regs as a BTF pointer, id or ret),
    # tail-called from a dispatcher
    TEST = "test"


@dataclass
class DfaTables:
    """Automata shared by all programs of a rule set: one map entry each."""

    tables: list[bytes] = field(default_factory=list)
    index: dict[tuple, int] = field(default_factory=dict)

    def add(self, key: tuple, automaton: dfa_mod.DFA) -> int:
        if key not in self.index:
            self.index[key] = len(self.tables)
            self.tables.append(automaton.table())
        return self.index[key]

    @property
    def value_size(self) -> int:
        return max((len(t) for t in self.tables), default=512)


@dataclass(frozen=True)
class ProgramPlan:
    """One generated program: where it attaches and the rules it evaluates, in order."""

    name: str
    syscall: Syscall
    when: When
    rules: tuple[BoundRule, ...]
    saves_entry: bool  # the enter program saves the frame for after rules
    instructions: tuple[Instruction, ...]
    prog_type: ProgType
    attach: tuple[str, str]  # (PROG_ARRAY, call number) for a dispatcher's table entry
    rule_spans: tuple[tuple[int, int, int], ...] = ()  # (rule index, first, last instruction)
    attach_btf_id: int = 0  # a tp_btf program's raw tracepoint (its btf_trace_* typedef)

    @property
    def tail_called(self) -> bool:
        return self.attach[0] in TABLES.values()


def _signature(bound: BoundRule, sc: Syscall | None = None) -> tuple[Arg, ...]:
    return signature(bound.rule.syscall, sc)


@cache
def signature(name: str, sc: Syscall | None = None) -> tuple[Arg, ...]:
    """The classic signature a rule on ``name`` sees in call ``sc`` (x86_64 if None); on
    i386, ``long`` and pointers are 32-bit (``compat``), and in the rule's own call (not a
    variant) each argument is as the call's row has it: a value over two registers whole
    (``Syscall.registers``), the ids of ``sys_setuid16`` and the like 16-bit."""
    classic = table().lookup(name)
    if sc is None or sc.abi != I386:
        return classic.args
    if sc.family == classic.family:
        return tuple(sc.args[i] if i < sc.nargs else replace(a, compat=True)
                     for i, a in enumerate(classic.args))
    return tuple(replace(a, compat=True) for a in classic.args)


def nr_word(sc: Syscall) -> int:
    """What the frame's NR holds for ``sc`` (and the decoder keys on)."""
    return sc.nr + (I386_NR if sc.abi == I386 else 0)


def i386_calls(name: str) -> tuple[Syscall, ...]:
    """The i386 calls that a list for call family ``name`` covers (``unlink``: nr 10)."""
    return tuple(sc for sc in table().family(name) if sc.abi == I386)


def _source(bound: BoundRule, index: int):
    """Where classic argument ``index`` (0-based) comes from in the real call."""
    return bound.variant.args[index] if bound.variant else index


def string_slots(sc: Syscall) -> dict[int, int]:
    """Argument index -> string slot, for the arguments of ``sc`` whose bytes a record
    carries: strings, buffers, socket addresses passed in (``connect``...) and those the
    call fills in (``accept``..., read at the exit)."""
    return {i: k for k, i in enumerate(i for i, a in enumerate(sc.args)
                                       if a.kind.is_string or a.length_arg is not None
                                       or filled_length(sc.args, i) is not None)}


def _sized(arg: Arg) -> bool:
    """Read as so many bytes (its length argument says how many), not up to a NUL."""
    return arg.kind in (ArgKind.BUFFER, ArgKind.SOCKADDR)


class _Code:
    """Instructions with labels that may pile up on one spot (aliased at the end)."""

    def __init__(self):
        self.insns: list[Instruction] = []
        self.pending: str | None = None
        self.alias: dict[str, str] = {}
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def place(self, name: str) -> None:
        if self.pending is not None:
            self.alias[name] = self.pending
        else:
            self.pending = name

    def __call__(self, *insns: Instruction) -> None:
        for insn in insns:
            if self.pending is not None:
                insn = Instruction(insn.opcode, insn.dst, insn.src, insn.off, insn.imm,
                                   insn.label, insn.map_ref, self.pending)
                self.pending = None
            self.insns.append(insn)

    def __getattr__(self, name):
        ctor = asm._CONSTRUCTORS[name]
        return lambda *args: self(ctor(*args))

    def finish(self) -> tuple[Instruction, ...]:
        """Resolve label aliases and drop code no path reaches (the verifier refuses it:
        e.g. the undecided exit of a rule whose filter has no string test)."""
        if self.pending is not None:
            raise asm.AsmError(f"label {self.pending} at the end of the program")

        def target(label):
            while label in self.alias:
                label = self.alias[label]
            return label
        insns = [Instruction(i.opcode, i.dst, i.src, i.off, i.imm, target(i.label), i.map_ref,
                             i.symbol) if i.label is not None else i for i in self.insns]
        where = {i.symbol: n for n, i in enumerate(insns) if i.symbol is not None}
        todo = [0]
        seen: set[int] = set()
        while todo:
            n = todo.pop()
            if n in seen or n >= len(insns):
                continue
            seen.add(n)
            insn = insns[n]
            op = insn.opcode
            if insn.label is not None:  # a jump's target, or a callback (ld_func)
                todo.append(where[insn.label])
            if op == asm.JMP | asm.EXIT or op == asm.JMP | asm.JA:
                continue
            todo.append(n + 1)
        return tuple(i for n, i in enumerate(insns) if n in seen)


def _load_const(c: _Code, reg, value: int) -> None:
    if asm.INT32_MIN <= value <= asm.INT32_MAX:
        c.mov(reg, value)
    else:
        c.ld_imm64(reg, value)


_JUMPS = {"==": "jeq", "!=": "jne", "<": "jslt", ">": "jsgt", "<=": "jsle", ">=": "jsge"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
_STRING_OPS = {"~=", "startswith", "endswith", "glob"}


class _ProgramGen:
    """Generates one program. ``c`` accumulates code; R6 = ctx (later the record),
    R7 = frame, R8/R9 = rule index and action/kind on the way to emit."""

    def __init__(self, layout: Layout, kern: Kernel, dfas: DfaTables, sc: Syscall, when: When,
                 rules: tuple[BoundRule, ...], prologue: str, saves_entry: bool):
        self.layout, self.kern, self.dfas = layout, kern, dfas
        self.sc, self.when, self.rules = sc, when, rules
        self.prologue, self.saves_entry = prologue, saves_entry
        self.abi = sc.abi
        # Exit programs read the frame the enter program saved (the test runs a
        # single program on the frame it fetched).
        self.exit_prog = when is When.AFTER and prologue != Prologue.TEST
        self.slots = string_slots(sc)
        self.c = _Code()
        self.bound: BoundRule | None = None
        self.undecided = ""
        self.uses_loop = False
        self.spans: list[tuple[int, int, int]] = []

    # -- what the filters read ---------------------------------------------------------
    def _needs(self) -> tuple[set[str], set[int]]:
        variables: set[str] = set()
        slots: set[int] = set()
        for b in self.rules:
            variables |= b.filter.variables
            for i in b.filter.strings:
                if not self._missing(_source(b, i)):
                    slots.add(self.slots[_source(b, i)])
        return variables, slots

    # -- program -----------------------------------------------------------------------
    def generate(self) -> tuple[Instruction, ...]:
        c = self.c
        c.mov(R6, R1)
        c.st(8, R10, OUTCOME, 0)
        exit_prog = self.exit_prog
        if exit_prog:
            c.call("get_current_pid_tgid")
            c.stxw(R10, KEY, R0)
            self._lookup(AFTER, "out")
            c.mov(R7, R0)
            c.ldxdw(R0, R7, NR)
            _load_const(c, R1, nr_word(self.sc))
            c.jne(R0, R1, "done")
            if self.prologue == Prologue.BTF:
                c.ldxdw(R0, R6, 8)  # sys_exit's ctx[1]: the return value
            else:
                ret = tracefs.event_format("syscalls",
                                           f"sys_exit_{self.sc.tracepoint}").field("ret")
                c.ldxdw(R0, R6, ret.offset)
            c.stxdw(R7, RET, R0)
        else:
            c.st(4, R10, KEY, 0)
            self._lookup(SCRATCH, "out")
            c.mov(R7, R0)
            self._fetch_args()
        variables, slots = self._needs()
        self._fetch_ids(variables)
        if not exit_prog:
            for k in sorted(slots):
                self._read_slot(k)
            if self.saves_entry:
                self._save_entry(slots)
        # The slots whose whole string (up to the window) the frame holds when emitting.
        self.in_frame = set(self.slots.values()) if self.saves_entry else slots
        for bound in self.rules:
            self._rule(bound)
        c.place("done")
        if exit_prog:
            c.ld_map_fd(R1, AFTER)
            c.mov(R2, R10)
            c.add(R2, KEY)
            c.call("map_delete_elem")
        c.place("out")
        if self.prologue == Prologue.TEST:
            c.ldxdw(R0, R10, OUTCOME)
        else:
            c.mov(R0, 0)
        c.exit()
        if self.rules:
            self._emit()
        if self.uses_loop:
            self._callback()
        return c.finish()

    def _lookup(self, map_name: str, missing: str) -> None:
        c = self.c
        c.ld_map_fd(R1, map_name)
        c.mov(R2, R10)
        c.add(R2, KEY)
        c.call("map_lookup_elem")
        c.jeq(R0, 0, missing)

    def _fetch_args(self) -> None:
        c = self.c
        n = self.sc.nargs
        if self.prologue == Prologue.TRACEPOINT:
            fmt = tracefs.event_format("syscalls", f"sys_enter_{self.sc.tracepoint}")
            for i, f in enumerate(fmt.args[:n]):
                c.ldxdw(R0, R6, f.offset)
                c.stxdw(R7, ARGS + 8 * i, R0)
        else:
            # ctx[0] is pt_regs: the kernel's, typed by BTF, so read with plain
            # (fault-safe) loads; or a fake one in the test's memory (test runs execute
            # in the caller: probe_read_user works).
            c.ldxdw(R8, R6, 0)
            regs = self.kern.regs[self.abi]
            for i, where in enumerate(self.sc.layout):
                if self.prologue == Prologue.TEST:
                    self._read_register(regs[where[0]], ARGS + 8 * i)
                else:  # an i386 register is its low half only, as the kernel reads it
                    load = c.ldxw if self.abi == I386 else c.ldxdw
                    load(R0, R8, regs[where[0]])
                    c.stxdw(R7, ARGS + 8 * i, R0)
                if len(where) == 2:  # an i386 64-bit value: the high half
                    if self.prologue == Prologue.TEST:
                        self._read_register(regs[where[1]], TMP, frame=R10)
                        c.ldxdw(R0, R10, TMP)
                    else:
                        c.ldxw(R0, R8, regs[where[1]])
                    c.lsh(R0, 32)
                    c.ldxdw(R1, R7, ARGS + 8 * i)
                    c.or_(R0, R1)
                    c.stxdw(R7, ARGS + 8 * i, R0)
            # An i386 call may have fewer arguments than its family's signature (old
            # mmap: one): no stale values from an earlier call in the record.
            for i in range(n, 6):
                c.st(8, R7, ARGS + 8 * i, 0)
            if self.prologue == Prologue.TEST:
                c.ldxdw(R0, R6, 16)  # ctx[2]: the return value an after rule sees
                c.stxdw(R7, RET, R0)
        _load_const(c, R0, nr_word(self.sc))
        c.stxdw(R7, NR, R0)
        if any(b.variant and FromStruct.OPEN_HOW_FLAGS in b.variant.args for b in self.rules):
            # openat2(dfd, path, how, size): open's flags and mode live in *how.
            c.st(8, R7, EXTRA, 0)
            c.st(8, R7, EXTRA + 8, 0)
            c.mov(R1, R7)
            c.add(R1, EXTRA)
            c.mov(R2, 16)
            c.ldxdw(R3, R7, ARGS + 16)
            c.call("probe_read_user")
            c.jeq(R0, 0, "how_ok")
            c.st(8, R7, EXTRA, 0)
            c.st(8, R7, EXTRA + 8, 0)
            c.place("how_ok")

    def _read_register(self, offset: int, dst: int, frame=R7) -> None:
        """frame[dst] = the register at `offset` in the test's fake pt_regs (R8); an
        i386 one is the low half only, as the kernel reads it."""
        c = self.c
        c.mov(R1, frame)
        c.add(R1, dst)
        c.mov(R2, 8)
        c.mov(R3, R8)
        c.add(R3, offset)
        c.call("probe_read_user")
        if self.abi == I386:
            c.ldxw(R0, frame, dst)
            c.stxdw(frame, dst, R0)

    def _fetch_ids(self, variables: set[str]) -> None:
        """Fill the frame with what ``variables`` (or, for emit, everything) need."""
        c, k = self.c, self.kern
        if variables & {"PID", "TID"}:
            c.call("get_current_pid_tgid")
            c.stxw(R7, TID, R0)
            c.rsh(R0, 32)
            c.stxw(R7, PID, R0)
        if variables & {"EUID", "SUID", "EGID", "SGID"}:
            c.call("get_current_task_btf")
            c.ldxdw(R1, R0, k.task_cred)
            for off in range(0, k.cred_size, 4):
                c.ldxw(R0, R1, k.cred_start + off)
                c.stxw(R7, CRED + off, R0)
        elif variables & {"UID", "GID"}:
            c.call("get_current_uid_gid")
            c.stxw(R7, CRED + k.cred["uid"], R0)
            c.rsh(R0, 32)
            c.stxw(R7, CRED + k.cred["gid"], R0)
        if "PPID" in variables:
            c.call("get_current_task_btf")
            c.ldxdw(R1, R0, k.task_real_parent)
            c.ldxw(R0, R1, k.task_tgid)
            c.stxw(R7, PPID, R0)
        if "COMM" in variables:
            c.mov(R1, R7)
            c.add(R1, self.layout.comm)
            c.mov(R2, 16)
            c.call("get_current_comm")

    def _arg_index(self, slot: int) -> int:
        return next(i for i, k in self.slots.items() if k == slot)

    def _read_slot(self, slot: int) -> None:
        """frame slot = the string argument (probe_read_user_str); length = its result
        (the NUL included), or ``window + 1`` when no NUL is within the window (cut).

        probe_read_user_str answers ``window`` both for a string of ``window - 1``
        bytes, whose NUL fills the last byte (4095 bytes: the longest path the kernel
        accepts), and for a longer one that it cut and ended with a NUL of its own.
        The string's byte at ``window - 1`` tells them apart; only that answer pays
        for reading it. It is read alone, not with a read one byte longer: that
        would fault on a long name ending where its mapping ends, which the kernel
        reads (and refuses with ENAMETOOLONG) without faulting. If it cannot be read
        now, the string counts as cut: undecided unless its first ``window - 1``
        bytes settle the test, never a wrong verdict."""
        c, lay = self.c, self.layout
        arg = self._arg_index(slot)
        off = lay.slot(slot)
        if filled_length(self.sc.args, arg) is not None:
            c.st(8, R7, off, 0)  # nothing in it before the call: the exit reads it
            return
        if _sized(self.sc.args[arg]):
            self._read_buffer(arg, R7, off, lay.window)
            return
        c.mov(R1, R7)
        c.add(R1, off + 8)
        c.mov(R2, lay.window)
        c.ldxdw(R3, R7, ARGS + 8 * arg)
        c.call("probe_read_user_str")
        c.stxdw(R7, off, R0)
        done, cut = c.fresh("strdone"), c.fresh("strcut")
        c.jne(R0, lay.window, done)
        c.mov(R1, R10)
        c.add(R1, TMP2)
        c.mov(R2, 1)
        c.ldxdw(R3, R7, ARGS + 8 * arg)
        c.add(R3, lay.window - 1)
        c.call("probe_read_user")
        c.jne(R0, 0, cut)
        c.ldxb(R0, R10, TMP2)
        c.jeq(R0, 0, done)  # the NUL: a whole string of window - 1 bytes
        c.place(cut)
        c.st(8, R7, off, lay.window + 1)
        c.place(done)

    def _read_buffer(self, arg: int, base, off: int, size: int) -> None:
        """A buffer or socket address passed in: as many bytes as its length argument."""
        c = self.c
        c.ldxdw(R2, R7, ARGS + 8 * self.sc.args[arg].length_arg)
        self._copy_user(arg, base, off, size, c.fresh("bufdone"))

    def _copy_user(self, arg: int, base, off: int, size: int, done: str) -> None:
        """R2 bytes (at most size - 1) of argument ``arg`` to base + off + 8; at base + off
        the count + 1 like a string's length, or the error (0 or less: unreadable).
        ``done`` is the store of R0 there: a caller's earlier failure may jump to it."""
        c = self.c
        c.jle(R2, size - 1, bounded := c.fresh("buflen"))
        c.mov(R2, size - 1)
        c.place(bounded)
        c.stxdw(R10, TMP2, R2)
        c.mov(R1, base)
        c.add(R1, off + 8)
        c.ldxdw(R3, R7, ARGS + 8 * arg)
        c.call("probe_read_user")
        c.jne(R0, 0, done)
        c.ldxdw(R0, R10, TMP2)
        c.add(R0, 1)
        c.place(done)
        c.stxdw(base, off, R0)

    def _save_entry(self, already: set[int]) -> None:
        """Enter program of a call with after rules: keep the frame, keyed by thread id."""
        c = self.c
        for k in sorted(set(self.slots.values()) - already):
            self._read_slot(k)
        c.call("get_current_pid_tgid")
        c.stxw(R10, TMP, R0)
        c.ld_map_fd(R1, AFTER)
        c.mov(R2, R10)
        c.add(R2, TMP)
        c.mov(R3, R7)
        c.mov(R4, NOEXIST_ANY)
        c.call("map_update_elem")

    # -- rules -------------------------------------------------------------------------
    def _rule(self, bound: BoundRule) -> None:
        c = self.c
        self.bound = bound
        first = len(c.insns)
        nxt, match, undecided = c.fresh("next"), c.fresh("match"), c.fresh("undecided")
        self.undecided = undecided
        self.unreadable: dict[int, str] = {}  # PARAMS[n] -> its undecided exit
        cond = bound.variant.condition if bound.variant else None
        if cond is not None:
            c.ldxdw(R0, R7, ARGS + 8 * cond.arg)
            _load_const(c, R1, cond.mask)
            c.and_(R0, R1)
            _load_const(c, R1, cond.value)
            c.jne(R0, R1, nxt)
        expr = bound.rule.filter
        if expr is not None:
            self.cond(expr, match, nxt, undecided, 0)
        code = ACTION_CODES[bound.rule.action.type]
        c.place(match)
        c.mov(R8, bound.index)
        c.mov(R9, code)
        c.ja("emit")
        if expr is not None:
            c.place(undecided)
            c.mov(R8, bound.index)
            c.mov(R9, (KIND_UNDECIDED << 8) | code)
            c.ja("emit")
        for n, label in self.unreadable.items():
            c.place(label)
            c.mov(R8, bound.index)
            c.mov(R9, ((KIND_UNREADABLE + n) << 8) | code)
            c.ja("emit")
        c.place(nxt)
        self.spans.append((bound.index, first, len(c.insns)))

    def cond(self, e: Expr, t: str, f: str, u: str, d: int) -> None:
        """Jump to t when ``e`` holds, f when not, u when the kernel cannot tell."""
        c = self.c
        if d >= MAX_DEPTH:
            raise _Reject(f"the filter nests deeper than the kernel's {MAX_DEPTH} stack slots")
        if is_constant(e):
            c.ja(t if const_value(e) else f)
            return
        if isinstance(e, Unary) and e.op == "!":
            self.cond(e.operand, f, t, u, d)
            return
        if isinstance(e, Binary) and e.op in ("&&", "||"):
            mid = c.fresh("mid")
            if e.op == "&&":
                self.cond(e.left, mid, f, u, d)
            else:
                self.cond(e.left, t, mid, u, d)
            c.place(mid)
            self.cond(e.right, t, f, u, d)
            return
        if isinstance(e, In) and self._is_str(e.operand):
            self.string_test("in", e.operand, tuple(const_value(i) for i in e.items), t, f, u)
            return
        if is_member(e):  # a field as a condition: true when present and not 0
            self._load_member(e, f)
            c.jne(R0, 0, t)
            c.ja(f)
            return
        if isinstance(e, In) and is_member(e.operand):
            self._load_member(e.operand, f)
            for item in sorted({const_value(i) for i in e.items}):
                self._jump("==", item, t)
            c.ja(f)
            return
        if isinstance(e, Binary) and e.op in _JUMPS and (is_member(e.left) or is_member(e.right)):
            member, other, op = e.left, e.right, e.op
            if not is_member(member):
                member, other, op = other, member, _FLIP[op]
            # Absent: every test false, and != (being !(a == b)) true.
            self._load_member(member, t if op == "!=" else f)
            self._jump(op, const_value(other), t)
            c.ja(f)
            return
        if isinstance(e, In):
            self.value(e.operand, d)
            for item in sorted({const_value(i) for i in e.items}):
                self._jump("==", item, t)
            c.ja(f)
            return
        if isinstance(e, Binary) and (e.op in _STRING_OPS or (
                e.op in ("==", "!=") and self._is_str(e.left))):
            left, right = e.left, e.right
            if e.op in ("==", "!=") and is_constant(left):
                left, right = right, left
            if e.op == "!=":
                self.string_test("==", left, const_value(right), f, t, u)
            else:
                self.string_test(e.op, left, const_value(right), t, f, u)
            return
        if isinstance(e, Binary) and e.op in _JUMPS:
            left, right, op = e.left, e.right, e.op
            if is_constant(left):
                left, right, op = right, left, _FLIP[op]
            if is_constant(right):
                self.value(left, d)
                self._jump(op, const_value(right), t)
            else:
                self._operands(left, right, d)
                getattr(c, _JUMPS[op])(R0, R1, t)
            c.ja(f)
            return
        self.value(e, d)
        c.jne(R0, 0, t)
        c.ja(f)

    def _jump(self, op: str, value: int, target: str) -> None:
        c = self.c
        if asm.INT32_MIN <= value <= asm.INT32_MAX:
            getattr(c, _JUMPS[op])(R0, value, target)
        else:
            c.ld_imm64(R1, value)
            getattr(c, _JUMPS[op])(R0, R1, target)

    def _operands(self, left: Expr, right: Expr, d: int) -> None:
        """R0 = left, R1 = right; the left value waits in stack slot d meanwhile."""
        c = self.c
        if self._leaf(right):
            self.value(left, d)
            self._load_leaf(right, R1)
            return
        self.value(left, d)
        c.stxdw(R10, -8 * (d + 1), R0)
        self.value(right, d + 1)
        c.mov(R1, R0)
        c.ldxdw(R0, R10, -8 * (d + 1))

    def _leaf(self, e: Expr) -> bool:
        return is_constant(e) or isinstance(e, Var)

    def value(self, e: Expr, d: int) -> None:
        """R0 = the 64-bit value of integer expression ``e``."""
        c = self.c
        if d >= MAX_DEPTH:
            raise _Reject(f"the filter nests deeper than the kernel's {MAX_DEPTH} stack slots")
        if self._leaf(e):
            self._load_leaf(e, R0)
        elif isinstance(e, Unary) and e.op in ("-", "~", "+"):
            self.value(e.operand, d)
            if e.op == "-":
                c.neg(R0)
            elif e.op == "~":
                c.xor(R0, -1)
        elif isinstance(e, Binary) and e.op in ("+", "-", "&", "|"):
            self._operands(e.left, e.right, d)
            {"+": c.add, "-": c.sub, "&": c.and_, "|": c.or_}[e.op](R0, R1)
        else:  # a condition used as a number: 1 or 0
            t, f, end = c.fresh("one"), c.fresh("zero"), c.fresh("bool")
            # An undecided string test inside arithmetic leaves the whole rule undecided.
            self.cond(e, t, f, self.undecided, d)
            c.place(t)
            c.mov(R0, 1)
            c.ja(end)
            c.place(f)
            c.mov(R0, 0)
            c.place(end)

    def _load_leaf(self, e: Expr, reg) -> None:
        c = self.c
        if is_constant(e):
            _load_const(c, reg, const_value(e))
            return
        assert isinstance(e, Var)
        if e.name == "PARAMS":
            index = e.index - 1
            arg = _signature(self.bound, self.sc)[index]
            src = _source(self.bound, index)
            if self._missing(src):
                c.ja(self.undecided)
                return
            if isinstance(src, FromStruct):
                c.ldxdw(reg, R7, EXTRA + (0 if src is FromStruct.OPEN_HOW_FLAGS else 8))
            else:
                c.ldxdw(reg, R7, ARGS + 8 * src)
            if arg.width == 4 and arg.signed:
                c.lsh(reg, 32)
                c.arsh(reg, 32)
            elif arg.width == 4:
                c.mov32(reg, reg)
            elif arg.width == 2:
                c.and_(reg, 0xFFFF)
            return
        k = self.kern
        offsets = {"PID": PID, "TID": TID, "PPID": PPID}
        offsets.update({name.upper(): CRED + off for name, off in k.cred.items()})
        if e.name == "RETVAL":
            c.ldxdw(reg, R7, RET)
        else:
            c.ldxw(reg, R7, offsets[e.name])

    def _load_member(self, e: Var, absent: str) -> None:
        """R0 = socket address field ``e`` from the argument's bytes in the frame, or a
        jump to ``absent`` (unreadable, too short, or a family without that field)."""
        c = self.c
        src = _source(self.bound, e.index - 1)
        if self._missing(src):
            c.ja(self.undecided)
            return
        off = self.layout.slot(self.slots[src])
        size, at, families = _MEMBERS[e.member]
        self._unread(src, off, absent, e.index)
        c.ldxdw(R1, R7, off)  # bytes read + 1
        c.jslt(R1, at + size + 1, absent)
        if families:
            c.ldxh(R0, R7, off + 8)
            present = c.fresh("family")
            for family in families:
                c.jeq(R0, family, present)
            c.ja(absent)
            c.place(present)
        {2: c.ldxh, 4: c.ldxw}[size](R0, R7, off + 8 + at)
        if e.member == "port":
            c.bswap(R0, 16)

    def _unread(self, src: int, slot_off: int, null: str, n: int) -> None:
        """Jump to ``null`` when argument ``src`` (the rule's PARAMS[n]) is NULL; when its
        memory could not be read (the slot's length is 0 or less), the rule is undecided,
        saying so: BPF cannot fault pages in, so a string in a page the process has not
        touched yet reads as an error here though the kernel will read it."""
        c = self.c
        readable = c.fresh("read")
        if n not in self.unreadable:
            self.unreadable[n] = c.fresh("unreadable")
        c.ldxdw(R0, R7, slot_off)
        c.jsgt(R0, 0, readable)
        c.ldxdw(R0, R7, ARGS + 8 * src)
        c.jeq(R0, 0, null)
        c.ja(self.unreadable[n])
        c.place(readable)

    def _missing(self, src) -> bool:
        """Whether the call lacks argument ``src`` of the rule's signature: i386 calls
        such as old mmap (one pointer to the six) or sigaction (three of four). The
        rule is then undecided there, not evaluated on a meaningless register."""
        family = table().by_name(self.sc.family) or self.sc
        return isinstance(src, int) and self.sc.lacks(src, family.args)

    def _is_str(self, e: Expr) -> bool:
        return is_string(e, _signature(self.bound))

    def string_test(self, op: str, var: Expr, operand, t: str, f: str, u: str) -> None:
        """Decide ``var op operand`` on the string: word by word for short literals
        (``_compare_literal``), else by running its automaton; see the module doc."""
        c, lay = self.c, self.layout
        if not isinstance(var, Var) or var.name not in ("PARAMS", "COMM"):
            raise _Reject("string tests in the kernel need PARAMS[n] or COMM on one side")
        literals = operand if op == "in" else (operand,)
        direct = (var.name == "PARAMS" and op in ("==", "in", "startswith")
                  and len(literals) <= DIRECT_ITEMS
                  # shorter than the window: a string cut there must not look whole
                  and all(len(x) <= DIRECT_MAX and len(x) + 1 < lay.window for x in literals))
        if not direct:
            try:
                ident = self.dfas.add((op, operand), dfa_mod.for_test(op, operand))
            except dfa_mod.PatternTooComplex as e:
                raise _Reject(f"the pattern of '{op}' is too complex for the kernel: "
                              f"{e}") from None
        if var.name == "COMM":
            buf, slot_off = lay.comm, None
        else:
            src = _source(self.bound, var.index - 1)
            if self._missing(src):
                c.ja(u)
                return
            slot_off = lay.slot(self.slots[src])
            buf = slot_off + 8
            self._unread(src, slot_off, f, var.index)
            dirfd = self.bound.variant.dirfd_of(src) if self.bound.variant else None
            if dirfd is not None:
                ok = c.fresh("abs")
                c.ldxdw(R0, R7, ARGS + 8 * dirfd)
                c.lsh(R0, 32)
                c.arsh(R0, 32)
                c.jeq(R0, AT_FDCWD, ok)
                c.ldxb(R0, R7, buf)
                c.jeq(R0, ord("/"), ok)
                c.ja(u)
                c.place(ok)
            if direct:
                c.ldxdw(R0, R7, slot_off)
                for literal in literals:
                    self._compare_literal(buf, literal, op == "startswith", t)
                c.ja(f)
                return
        c.mov(R1, R7)
        c.add(R1, buf)
        c.stxdw(R10, LOOP_CTX, R1)
        c.st(4, R10, KEY, ident)
        self._lookup(DFA, u)
        c.stxdw(R10, LOOP_CTX + 8, R0)
        c.st(8, R10, LOOP_CTX + 16, dfa_mod.START)
        c.mov(R1, lay.window if slot_off is not None else 16)
        c.ld_func(R2, "dfa_step")
        self.uses_loop = True
        c.mov(R3, R10)
        c.add(R3, LOOP_CTX)
        c.mov(R4, 0)
        c.call("loop")
        c.ldxdw(R1, R10, LOOP_CTX + 16)
        c.jeq(R1, dfa_mod.DEAD, f)
        c.jeq(R1, dfa_mod.ACCEPT_ALL, t)
        if slot_off is not None:
            c.ldxdw(R0, R7, slot_off)
            c.jeq(R0, lay.window + 1, u)  # cut at the window and not settled
        c.and_(R1, 0xFF)
        c.ldxdw(R2, R10, LOOP_CTX + 8)
        c.add(R2, R1)
        c.ldxb(R0, R2, 0)  # row 0: accept flags
        c.jne(R0, 0, t)
        c.ja(f)

    def _compare_literal(self, buf: int, literal: bytes, prefix: bool, t: str) -> None:
        """Jump to t when the string at frame offset ``buf`` is ``literal`` (starts with it,
        if ``prefix``); fall through otherwise. R0 holds the string's length as
        ``_read_slot`` gave it (NUL included, ``window + 1`` when cut): a length
        that cannot match settles the test at once, as it does for most calls.
        Bytes after the NUL are stale, so only the literal's own bytes are compared."""
        c, n = self.c, len(literal)
        miss = c.fresh("miss")
        if prefix:
            c.jlt(R0, n + 1, miss)
        else:
            c.jne(R0, n + 1, miss)
        whole = n - n % 8
        for i in range(0, whole, 8):
            c.ldxdw(R1, R7, buf + i)
            _load_const(c, R2, int.from_bytes(literal[i:i + 8], "little", signed=True))
            c.jne(R1, R2, miss)
        for i in range(whole, n):
            c.ldxb(R1, R7, buf + i)
            c.jne(R1, literal[i], miss)
        c.ja(t)
        c.place(miss)

    # -- emit and act ------------------------------------------------------------------
    def _emit(self) -> None:
        c, lay = self.c, self.layout
        c.place("emit")
        self._fetch_ids({"PID", "TID", "EUID", "PPID", "COMM"})
        c.call("ktime_get_ns")
        c.stxdw(R10, TS, R0)
        self._count(0)
        c.ld_map_fd(R1, EVENTS)
        c.mov(R2, lay.record_size)
        c.mov(R3, 0)
        c.call("ringbuf_reserve")
        c.jeq(R0, 0, "lost")
        c.mov(R6, R0)
        c.ldxdw(R1, R10, TS)
        c.stxdw(R6, REC_TS, R1)
        c.stxw(R6, REC_RULE, R8)
        c.mov(R1, R9)
        c.rsh(R1, 8)
        c.stxw(R6, REC_KIND, R1)
        for off in range(0, lay.head, 8):
            c.ldxdw(R1, R7, off)
            c.stxdw(R6, REC_FRAME + off, R1)
        for arg, k in sorted(self.slots.items()):
            self._record_slot(arg, k)
        c.mov(R1, R6)
        c.mov(R2, 0)
        c.call("ringbuf_submit")
        c.ja("act")
        c.place("lost")
        self._count(8)
        c.place("act")
        c.mov(R1, R9)
        c.jgt(R1, 0xFF, "finish")  # any kind but an event: no action
        for code, sig in SIGNALS.items():
            if any(ACTION_CODES[b.rule.action.type] == code for b in self.rules):
                skip = c.fresh("nosig")
                c.jne(R1, code, skip)
                c.mov(R1, sig)
                c.call("send_signal")
                c.ja("finish")
                c.place(skip)
        c.place("finish")
        c.mov(R0, R9)
        c.rsh(R0, 8)
        c.lsh(R0, 16)
        c.add(R0, R8)
        c.add(R0, 1)
        c.stxdw(R10, OUTCOME, R0)
        c.ja("done")

    def _count(self, field_off: int) -> None:
        """counters[rule] field += 1 (matches at 0, lost at 8; undecided counted as such)."""
        c = self.c
        c.stxw(R10, KEY, R8)
        self._lookup(COUNTERS, skip := c.fresh("nocount"))
        c.mov(R1, 1)
        if field_off == 0:
            c.mov(R2, R9)
            c.rsh(R2, 8)
            c.jeq(R2, 0, hit := c.fresh("hit"))
            c.atomic_add(8, R0, 16, R1)
            c.ja(skip)
            c.place(hit)
        c.atomic_add(8, R0, field_off, R1)
        c.place(skip)

    def _record_slot(self, arg: int, k: int) -> None:
        c, lay = self.c, self.layout
        off = lay.record_slot(k)
        size = lay.record_string
        length = filled_length(self.sc.args, arg)
        if length is not None:
            if self.exit_prog:
                self._read_filled(arg, length, off, size)
            else:
                c.st(8, R6, off, 0)  # before the call: nothing there yet
            return
        if self.exit_prog:
            # From the entry's copy: the memory may have changed (or gone, after execve).
            c.mov(R1, R6)
            c.add(R1, off + 8)
            c.mov(R2, size)
            c.mov(R3, R7)
            c.add(R3, lay.slot(k) + 8)
            c.call("probe_read_kernel")
            c.ldxdw(R1, R7, lay.slot(k))
            c.stxdw(R6, off, R1)
            return
        if _sized(self.sc.args[arg]):
            self._read_buffer(arg, R6, off, size)
            return
        c.mov(R1, R6)
        c.add(R1, off + 8)
        c.mov(R2, size)
        c.ldxdw(R3, R7, ARGS + 8 * arg)
        c.call("probe_read_user_str")
        c.stxdw(R6, off, R0)
        # A string that fills the record may go on: the record says its whole length (as
        # the frame's read of up to `window` bytes found it: window + 1 when cut there, so
        # a record as large as the window tells a cut string from one of window - 1 bytes),
        # so user space knows it is cut.
        whole = c.fresh("whole")
        c.jne(R0, size, whole)
        if k not in self.in_frame:
            self._read_slot(k)
        c.ldxdw(R1, R7, lay.slot(k))
        c.jsle(R1, size, whole)
        c.stxdw(R6, off, R1)
        c.place(whole)

    def _read_filled(self, arg: int, length: int, off: int, size: int) -> None:
        """At the exit, a socket address the call filled in: as many bytes as the
        ``int`` at argument ``length`` now says (at most size - 1), into the record."""
        c = self.c
        c.st(8, R10, TMP2, 0)
        c.mov(R1, R10)
        c.add(R1, TMP2)
        c.mov(R2, 4)
        c.ldxdw(R3, R7, ARGS + 8 * length)
        c.call("probe_read_user")
        done = c.fresh("filled")
        c.jne(R0, 0, done)
        c.ldxw(R2, R10, TMP2)
        self._copy_user(arg, R6, off, size, done)

    def _callback(self) -> None:
        """dfa_step(i, ctx): one byte of the walk; stops at NUL or a settled state."""
        c, window = self.c, self.layout.window
        c.place("dfa_step")
        c.ldxdw(R3, R2, 0)
        c.and_(R1, window - 1)
        c.add(R3, R1)
        c.ldxb(R4, R3, 0)
        c.mov(R0, 1)
        c.jeq(R4, 0, "step_out")
        c.ldxdw(R5, R2, 16)
        c.and_(R5, 0xFF)
        c.lsh(R5, 8)
        c.or_(R5, R4)
        c.jgt(R5, self.dfas.value_size - 1, "step_out")
        c.ldxdw(R3, R2, 8)
        c.add(R3, R5)
        c.ldxb(R5, R3, 0)
        c.stxdw(R2, 16, R5)
        c.jle(R5, dfa_mod.ACCEPT_ALL, "step_out")
        c.mov(R0, 0)
        c.place("step_out")
        c.exit()


class _Reject(Exception):
    """A filter the kernel cannot evaluate exactly; becomes a Diagnostic."""


def _walk(e: Expr):
    yield e
    if isinstance(e, Unary):
        yield from _walk(e.operand)
    elif isinstance(e, Binary):
        yield from _walk(e.left)
        yield from _walk(e.right)
    elif isinstance(e, In):
        yield from _walk(e.operand)
        for i in e.items:
            yield from _walk(i)


# Socket address fields the kernel engine reads: (bytes, offset, families that have it).
_MEMBERS = {
    "family": (2, 0, ()),
    "port": (2, 2, (socket.AF_INET, socket.AF_INET6)),
    "sin_port": (2, 2, (socket.AF_INET, socket.AF_INET6)),
    "sin_addr": (4, 4, (socket.AF_INET,)),
}


def _check_filter(bound: BoundRule) -> list[tuple[object, str]]:
    """(position, reason) for each part of the filter the kernel cannot evaluate exactly."""
    out = []
    expr = bound.rule.filter
    if expr is None:
        return out
    sig = _signature(bound)
    for node in _walk(expr):
        if isinstance(node, Var) and node.member is not None \
                and node.member not in _MEMBERS:
            out.append((node.pos, f"PARAMS[{node.index}].{node.member}: the kernel engine "
                                  "compares socket addresses as numbers only (.family, .port, "
                                  f".sin_port, .sin_addr: PARAMS[{node.index}].sin_addr == "
                                  'ipaddr("10.0.0.1")), not as text'))
        elif isinstance(node, Binary | In) and _member_compared_with_variable(node):
            out.append((node.pos, "compares a socket address field with something read at run "
                                  "time; the kernel engine compares fields with constants only"))
        elif isinstance(node, Var) and node.name == "PATH":
            out.append((node.pos, f"PATH[{node.index}] needs the path made absolute against "
                                  "the caller's cwd or dirfd, which the kernel engine does not "
                                  "compute"))
        elif isinstance(node, Var) and node.name == "CWD":
            out.append((node.pos, "CWD needs the caller's working directory as a path, which "
                                  "the kernel engine does not compute"))
        elif isinstance(node, Var) and node.name == "PARAMS" and is_string(node, sig) \
                and sig[node.index - 1].kind is ArgKind.BUFFER:
            out.append((node.pos, f"PARAMS[{node.index}] is a buffer; the kernel engine "
                                  "compares NUL-terminated strings only"))
        elif isinstance(node, Binary) and node.op in ("==", "!=") and is_string(node.left, sig) \
                and not is_constant(node.left) and not is_constant(node.right):
            out.append((node.pos, "compares two strings that are both read at run time; the "
                                  "kernel engine compares a string with constants only"))
    return out


# Log macros whose values only sctrace captures: system-wide events carry no cwd and no
# resolved paths, so a rule's log_format using them would print `?` on every line.
_SCTRACE_ONLY_MACROS = {
    "cwd": "the caller's working directory",
    "path": "the first path argument made absolute against the caller's cwd or dirfd",
}


def _check_log_format(bound: BoundRule) -> list[tuple[object, str]]:
    """(position, reason) for each macro of the rule's log_format the kernel engine
    cannot fill in; the position is the log_format's."""
    action = bound.rule.action
    if action.log_format is None:
        return []
    used = {p.name for p in split_log_format(action.log_format) if isinstance(p, Macro)}
    pos = action.keys.get("log_format", action.pos)
    return [(pos, f"log_format prints %{name}, {what}, which the kernel engine does not "
                  "capture (it would print '?' on every line)")
            for name, what in _SCTRACE_ONLY_MACROS.items() if name in used]


def _member_compared_with_variable(node: Binary | In) -> bool:
    if isinstance(node, In):
        return False  # its items are constants (the validator says so)
    sides = (node.left, node.right)
    return any(is_member(x) for x in sides) and not any(is_constant(x) for x in sides)


@dataclass(frozen=True)
class Dispatcher:
    """A tp_btf program on a raw syscall tracepoint sending each call to its program
    (see the engine)."""

    name: str
    when: When
    tables: tuple[tuple[str, int], ...]  # (PROG_ARRAY map, size) for x86_64, then i386
    instructions: tuple[Instruction, ...]
    attach_btf_id: int  # the raw tracepoint's btf_trace_* typedef

    @property
    def attach(self) -> tuple[str, str]:
        return ("tp_btf", _raw_tracepoint(self.when))


@dataclass(frozen=True)
class Plan:
    """Everything the engine loads for one rule set."""

    ruleset: RuleSet
    layout: Layout
    programs: tuple[ProgramPlan, ...]
    dfa_tables: tuple[bytes, ...]
    dfa_value_size: int
    has_after: bool
    dispatchers: tuple[Dispatcher, ...] = ()


def targets(ruleset: RuleSet) -> list[tuple[str, When, tuple[BoundRule, ...]]]:
    """(call family, when, ordered rule list) for every list that has rules."""
    out = []
    for name in sorted(ruleset.watched()):
        for when in (When.BEFORE, When.AFTER):
            bound = ruleset.rules_for(name, when)
            if bound:
                out.append((name, when, bound))
    return out


def generate(ruleset: RuleSet, *, window: int = 4096, record_string: int = 256,
             prologue: str = Prologue.TRACEPOINT, compat: bool = True) -> Plan:
    """The programs for ``ruleset``; RuleError naming every rule the kernel cannot run.

    Each list runs on the x86_64 call and on each i386 call of its family. When
    some watched call exists on i386 (nearly always), every program is a tp_btf
    one on the raw tracepoint that a dispatcher tail-calls; otherwise the x86_64 programs
    attach to the syscalls:* tracepoints (see the engine for the costs).
    ``prologue=TEST`` makes every program a test-run one, i386 ones included.
    ``compat=False`` leaves i386 calls out: cheaper, but then a 32-bit
    ``int $0x80`` call goes around every rule.
    """
    if window & (window - 1) or not 64 <= window <= 4096:
        raise ValueError("window must be a power of two from 64 to 4096")
    if not 16 <= record_string <= window:
        raise ValueError("record_string must be from 16 to window bytes")
    diagnostics: list[Diagnostic] = []

    def reject(bound: BoundRule, pos, why: str) -> None:
        diagnostics.append(Diagnostic(pos, f"rule '{printable(bound.rule.name)}': {why}; the "
                                           "system-wide engine cannot run it -- use sctrace"))

    checked: set[int] = set()
    calls: dict[str, list[Syscall]] = {}  # family -> the calls its lists run on
    lists: dict[str, dict[When, tuple[BoundRule, ...]]] = {}
    for name, when, bound in targets(ruleset):
        for b in bound:
            if b.index in checked:
                continue
            checked.add(b.index)
            kind = b.rule.action.type
            if kind not in ACTION_CODES and kind is not ActionType.FAIL:
                reject(b, b.rule.action.keys.get("type", b.rule.pos_of("action")),
                       f"{kind} is done by the per-command engine only")
            for pos, why in _check_filter(b) + _check_log_format(b):
                reject(b, pos, why)
        native = table().by_name(name)
        if native is None and not compat:
            for b in bound:
                reject(b, b.rule.pos_of("syscall_name"),
                       f"{b.rule.syscall} exists on i386 only, and i386 calls are not watched "
                       "(the tracker runs with --no-compat)")
            continue
        if native is not None and native.tracepoint is None:
            for b in bound:
                reject(b, b.rule.pos_of("syscall_name"),
                       f"{b.rule.syscall} has no x86_64 syscall tracepoint to attach to")
            continue
        calls[name] = ([native] if native else []) + (list(i386_calls(name)) if compat else [])
        lists.setdefault(name, {})[when] = bound
    if diagnostics:
        raise RuleError(diagnostics)
    kern = kernel()
    slots = max((len(string_slots(sc)) for scs in calls.values() for sc in scs), default=0)
    layout = Layout(window, record_string, slots, kern.cred_size)
    dfas = DfaTables()
    dispatched = any(sc.abi == I386 for scs in calls.values() for sc in scs)
    work = []
    for name, scs in calls.items():
        before, after = lists[name].get(When.BEFORE, ()), lists[name].get(When.AFTER, ())
        if prologue == Prologue.TEST:
            progs = [(w, b, False) for w, b in lists[name].items()]
        else:
            # The enter program also saves the frame for after rules (alone if no
            # before rule exists).
            progs = [(When.BEFORE, before, bool(after))] + ([(When.AFTER, after, False)]
                                                            if after else [])
        for sc in scs:
            if prologue == Prologue.TEST:
                pro = prologue
            else:
                pro = Prologue.BTF if dispatched else Prologue.TRACEPOINT
            work += [(sc, w, rules, pro, saves) for w, rules, saves in progs]
    for sc, w, rules, pro, saves in work:
        _program(layout, kern, dfas, sc, w, rules, pro, saves, diagnostics)
    if diagnostics:
        raise RuleError(diagnostics)
    # The callback's bounds check must know the final table size: generate again
    # now that every automaton is known (cheap, and the tables do not change).
    final = tuple(_program(layout, kern, dfas, sc, w, rules, pro, saves, diagnostics)
                  for sc, w, rules, pro, saves in work)
    dispatchers = ()
    if dispatched and prologue != Prologue.TEST:
        dispatchers = tuple(dispatcher(when, kern, [p.syscall for p in final if p.when is when])
                            for when in (When.BEFORE, When.AFTER)
                            if any(p.when is when for p in final))
    return Plan(ruleset, layout, final, tuple(dfas.tables), dfas.value_size,
                any(lists[n].get(When.AFTER) for n in lists) and prologue != Prologue.TEST,
                dispatchers)


def _program(layout, kern, dfas, sc, when, rules, prologue, saves, diagnostics) -> ProgramPlan:
    gen = _ProgramGen(layout, kern, dfas, sc, when, rules, prologue, saves)
    try:
        insns = gen.generate()
        asm.link(insns)
    except _Reject as e:
        b = gen.bound
        why = f"{e}; the system-wide engine cannot run it -- use sctrace"
    except asm.AsmError:  # a jump past the 16-bit offset
        index, first, last = max(gen.spans, key=lambda span: span[2] - span[1])
        if last - first > JUMP_MAX:  # one filter alone is too long
            b = next(b for b in rules if b.index == index)
            why = (f"its filter compiles to {last - first} instructions, too long for the "
                   f"kernel's jumps ({JUMP_MAX}); shorten it (one 'in (...)' takes many "
                   "values of one test) or use sctrace")
        else:  # many rules on one call, together
            b = rules[0]
            why = (f"the {len(rules)} rules on {sc.name} compile to {len(insns)} "
                   f"instructions together, too long for the kernel's jumps "
                   f"({JUMP_MAX}); use fewer, or 'in (...)' for many values of one test")
    else:
        why = None
    if why is not None:
        pos = b.rule.pos_of("filter_expression")
        if not any(d.pos == pos for d in diagnostics):  # once, not for each ABI's program
            diagnostics.append(Diagnostic(pos, f"rule '{printable(b.rule.name)}': {why}"))
        insns = ()
    letter = "x" if when is When.AFTER else "e"
    btf_id = 0
    if prologue == Prologue.TEST:
        attach = ("raw_tracepoint", _raw_tracepoint(when))
        prog_type = ProgType.RAW_TRACEPOINT
    elif prologue == Prologue.BTF:
        attach = (TABLES[(sc.abi, when)], str(sc.nr))
        prog_type, btf_id = ProgType.TRACING, kern.tracepoint_id(_raw_tracepoint(when))
    else:
        attach = ("syscalls", f"{_raw_tracepoint(when)}_{sc.tracepoint}")
        prog_type = ProgType.TRACEPOINT
    name = f"sct_{sc.name[:9]}_{letter}" if sc.abi == X86_64 else f"sct_{sc.name[:7]}_{letter}32"
    return ProgramPlan(name, sc, when, tuple(rules), saves, insns, prog_type, attach,
                       tuple(gen.spans), btf_id)


def _raw_tracepoint(when: When) -> str:
    return "sys_exit" if when is When.AFTER else "sys_enter"


def dispatcher(when: When, kern: Kernel, calls: list[Syscall]) -> Dispatcher:
    """sys_enter / sys_exit on every call: tail-call the program of the call's number
    in the x86_64 table, or the i386 one when the task is in an int $0x80 call
    (TS_COMPAT); a number with no program falls through the tail call.

    It runs on every system call of the machine, so a number no table holds (in
    either ABI) returns after a few compares, before the task is looked at: an
    unrelated call pays the raw tracepoint and those compares only.
    """
    c = _Code()
    c.mov(R6, R1)
    if when is When.AFTER:  # sys_exit has (regs, ret): the number is regs->orig_ax
        c.ldxdw(R3, R6, 0)
        c.ldxdw(R8, R3, kern.orig_ax)
    else:  # sys_enter has (regs, id)
        c.ldxdw(R8, R6, 8)
    numbers = sorted({sc.nr for sc in calls})
    if len(numbers) <= PREFILTER_MAX:
        for nr in numbers:
            c.jeq(R8, nr, "watched")
        c.mov(R0, 0)
        c.exit()
        c.place("watched")
    # A BTF task pointer lets the verifier allow a direct (fault-safe) load: one helper
    # call instead of two.
    c.call("get_current_task_btf")
    c.ldxw(R7, R0, kern.task_status)
    c.mov(R3, R8)
    c.ld_map_fd(R2, TABLES[(X86_64, when)])
    c.jset(R7, TS_COMPAT, "compat")
    c.ja("call")
    c.place("compat")
    c.ld_map_fd(R2, TABLES[(I386, when)])
    c.place("call")
    c.mov(R1, R6)
    c.call("tail_call")
    c.mov(R0, 0)
    c.exit()
    tables = tuple((TABLES[(abi, when)], 1 + max((sc.nr for sc in calls if sc.abi == abi),
                                                  default=0)) for abi in (X86_64, I386))
    letter = "x" if when is When.AFTER else "e"
    return Dispatcher(f"sct_dispatch_{letter}", when, tables, c.finish(),
                      kern.tracepoint_id(_raw_tracepoint(when)))


def cleaner() -> tuple[Instruction, ...]:
    """sched:sched_process_exit: drop the saved entry of a thread that dies mid-call."""
    c = _Code()
    c.call("get_current_pid_tgid")
    c.stxw(R10, KEY, R0)
    c.ld_map_fd(R1, AFTER)
    c.mov(R2, R10)
    c.add(R2, KEY)
    c.call("map_delete_elem")
    c.mov(R0, 0)
    c.exit()
    return c.finish()
