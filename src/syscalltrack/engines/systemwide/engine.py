"""The system-wide engine: a rule set's programs loaded, attached and read.

Attach choice. The ``syscalls:sys_enter_X`` tracepoints ignore compat
(i386, ``int $0x80``) calls on x86_64, so with them alone a 32-bit ``unlink``
(nr 10) got past every rule. Only the raw ``sys_enter``/``sys_exit``
tracepoints see those calls (under i386 numbers, with
``thread_info.status & TS_COMPAT`` set). So when the rule set watches a call
that exists on i386 (nearly always), the engine attaches one *dispatcher*
per side to the raw tracepoint; it tail-calls the program of the call's
number from the x86_64 or the i386 table (PROG_ARRAY), or returns. The
dispatcher runs on every system call of the machine; otherwise (only
x86_64-only calls such as ``memfd_secret`` watched) the x86_64 programs go
on the syscall tracepoints, which cost on the watched calls only, plus the
slow path every syscall then takes.

Measured on this machine (a busy, shared 2-vCPU VM where ``getppid()``
costs ~300-400 ns rather than the 110 ns of kernel-notes.md), cost per
unrelated ``getppid`` with one ``unlink`` rule, 40 runs of 10^6 calls,
pinned; min / median: bare 294 / 400 ns; tracepoints only (the previous
engine, which missed i386 calls) +33 / +16 ns; raw dispatchers (this engine)
+94 / +66 ns. Tracepoints for x86_64 plus a raw dispatcher for i386 alone
measured +160-180 ns (two probes on ``sys_enter`` cost more than the sum),
hence one dispatcher for both ABIs.

The dispatchers and the programs they tail-call are *tp_btf* programs (BPF
tracing programs on the raw tracepoint, named by its ``btf_trace_sys_enter``
typedef): their ``pt_regs`` is a BTF pointer, so the call number at exit and
the arguments at entry are plain loads, as are the task's status, creds and
parent (through ``bpf_get_current_task_btf``), where a raw tracepoint
program calls ``probe_read_kernel`` for each. On this VM that saved little:
``bpf_stats`` gave 302 -> 293 ns a non-matching ``unlink`` (three runs each,
within the noise); reading the path from user memory is what costs there. The same bodies load as
RAW_TRACEPOINT programs with the test prologue (``codegen.Prologue.TEST``)
for BPF_PROG_TEST_RUN, which does not run tp_btf programs.

After rules: the enter program saves the frame in ``sct_after`` (HASH keyed
by thread id, allocated on demand: BPF_F_NO_PREALLOC), the exit program reads
and deletes it, and a third program on ``sched:sched_process_exit`` deletes
the entry of a thread that dies inside a call (exit_group, a kill). An
LRU_HASH was not chosen: it evicts *live* entries under pressure, silently
losing after rules, and must preallocate every (12 KB) frame.

Never silent: a full ring buffer counts the record lost for its rule in the
kernel; :meth:`SystemwideEngine.poll` turns the counters' growth into
:class:`Lost` notices in the stream, and undecided filters arrive as
:class:`Undecided` notices (see codegen).
"""

from __future__ import annotations

import errno
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ...bpf import features
from ...bpf.asm import disassemble
from ...bpf.link import Link, attach_tracepoint, attach_tracing
from ...bpf.maps import Map, MapSpec, MapType
from ...bpf.prog import AttachType, Program, ProgType
from ...bpf.ringbuf import RingBuffer
from ...bpf.sys import BpfError
from ...events.event import Cut, Event, Lost, SockAddr, Undecided, Unreadable
from ...events.view import EventView, Memo, Records
from ...rules import ActionType, Diagnostic, RuleError, RuleSet, When, rule_text
from ...rules.errors import printable
from ...syscalls import ArgKind, FromStruct, filled_length
from . import codegen
from .codegen import AFTER, COUNTER_FIELDS, COUNTERS, DFA, EVENTS, SCRATCH, Plan
from .layout import CRED_FIELDS, KIND_EVENT, KIND_UNREADABLE, kernel

BPF_F_NO_PREALLOC = 1
# Where the record's fields sit in a decoded row (layout.record_struct()): ts, rule index
# and kind (one word), six raw arguments, two struct fields, nr word, retval, pid, tid,
# ppid, cred words.
RULE_KIND_FIELD, RAW_FIELD, EXTRA_FIELD, NR_FIELD, RET_FIELD, PID_FIELD, HEAD_FIELDS = (
    1, 2, 8, 10, 11, 12, 15)
AFTER_ENTRIES = 65536
COUNTER_INTERVAL = 0.2  # seconds between reads of the lost counters while polling


@dataclass(frozen=True, slots=True)
class RuleStats:
    index: int
    rule: str
    matches: int
    lost: int
    undecided: int


def caveats(ruleset: RuleSet) -> list[str]:
    """What a valid rule set will not do system-wide that its author may expect: one
    ``FILE:LINE:COL: note: ...`` line each, said at upload."""
    notes = []
    for r in ruleset.rules:
        kind = r.action.type
        if kind in (ActionType.KILL, ActionType.SUSPEND) and r.when is When.BEFORE:
            notes.append(f"{r.action.keys.get('type', r.pos_of('action'))}: note: rule "
                         f"'{r.name}': {kind} is signalled at the call's entry and takes "
                         "effect when the call returns, so the call itself runs; sctrace "
                         "stops a call before it runs")
    return notes


def check_fail(ruleset: RuleSet) -> None:
    """Refuse a rule set containing FAIL, naming what the kernel lacks.

    Where the probe finds a mechanism (kprobe override, fmod_ret, BPF LSM),
    the set is still refused: no test of this project has run such an
    enforcement path, and an untested one would be worse than none.
    """
    fails = [r for r in ruleset.rules if r.action.type is ActionType.FAIL]
    if not fails:
        return
    probes = features.probe().syscall_override
    if features.probe().can_change_syscall_result:
        found = ", ".join(name for name, p in probes.items() if p)
        why = (f"this kernel offers {found}, but the system-wide engine has no tested "
               "enforcement path for it yet")
    else:
        reasons = "; ".join(f"{name}: {p.reason}" for name, p in probes.items())
        why = f"this kernel allows no way to change a system call's result ({reasons})"
    raise RuleError([Diagnostic(r.action.keys.get("type", r.pos_of("action")),
                                f"rule '{r.name}': FAIL cannot run system-wide: {why}; use "
                                "sctrace (per command, seccomp + ptrace) for FAIL rules")
                     for r in fails])


# What PROG_LOAD says of a program past the verifier's limits (instructions it walks,
# states it keeps): the filters of its rules are too big, not the machine broken.
_TOO_BIG = frozenset({errno.ENOMEM, errno.E2BIG, errno.ENOSPC})


def _too_big(spec, exc: BpfError) -> RuleError:
    """The rules of a program the kernel would not load, each at its filter's position."""
    call = f"{spec.syscall.abi}:{spec.syscall.name} ({spec.when.value})"
    return RuleError([Diagnostic(
        b.rule.pos_of("filter_expression"),
        f"rule '{printable(b.rule.name)}': the kernel refused the program for {call}, "
        f"{len(spec.instructions)} instructions for {len(spec.rules)} rule(s), "
        f"{errno.errorcode.get(exc.errno, exc.errno)} ({os.strerror(exc.errno)}): "
        "its filters are too big for the verifier; use fewer string tests per call")
        for b in spec.rules])


class _Decoder:
    """Records to Events: one `EventView` per (rule, kind, call), built on first use.

    Everything that depends on the rule set is looked up when a view is built,
    not per record; the view's generated code then turns a record into an
    Event (~0.5 µs) or, for the daemon, straight into a line.
    """

    def __init__(self, plan: Plan):
        self.struct = plan.layout.record_struct()
        self.key_fields = (RULE_KIND_FIELD, NR_FIELD)
        self.views = _Views(plan)


class _Views(dict):
    """(rule index | kind << 32, nr word) -> EventView, each built the first time a record
    needs it. (It holds what building takes, not the decoder: no reference cycle, so a
    replaced rule set is freed by reference counting alone.)"""

    def __init__(self, plan: Plan):
        super().__init__()
        self.plan = plan
        self.offset_ns = time.time_ns() - time.monotonic_ns()
        self.cred_index = [kernel().cred[name] // 4 for name in CRED_FIELDS]
        self.calls: dict[tuple[int, int], tuple] = {
            (b.index, codegen.nr_word(p.syscall)): (p.syscall, b)
            for p in plan.programs for b in p.rules}
        self.comm = Memo(lambda raw: raw.split(b"\0", 1)[0])  # the ring's NUL-padded comm

    def __missing__(self, key: tuple[int, int]) -> EventView:
        rule_kind, nr_word = key
        view = self[key] = self._build(rule_kind & 0xFFFFFFFF, rule_kind >> 32, nr_word)
        return view

    def _build(self, rule_index: int, kind: int, nr_word: int) -> EventView:
        sc, bound = self.calls[(rule_index, nr_word)]
        rule = self.plan.ruleset.rules[rule_index]
        signature = codegen.signature(bound.rule.syscall, sc)
        slots = codegen.string_slots(sc)
        words = len(self.cred_index)
        comm = HEAD_FIELDS + words + (words & 1)
        args, values = [], []
        for i, arg in enumerate(signature):
            src = codegen._source(bound, i)
            if isinstance(src, FromStruct):
                field = EXTRA_FIELD + (0 if src is FromStruct.OPEN_HOW_FLAGS else 1)
            else:
                field = RAW_FIELD + src
            value = _normalise_code(arg, f"r[{field}]")
            args.append(value)
            if isinstance(src, FromStruct):
                values.append(value)
            elif src in slots and filled_length(sc.args, src) is not None \
                    and rule.when is not When.AFTER:
                values.append(value)  # filled in by the call: before it, just a pointer
            elif src in slots and arg.kind in (ArgKind.PATH, ArgKind.STRING):
                # A string the record carries: its length (NUL included) may exceed the
                # record's bytes, and then what is there is only its start -- a Cut.
                length, data = comm + 1 + 2 * slots[src], comm + 2 + 2 * slots[src]
                cut = self.plan.layout.record_string
                values.append(f"(None if r[{field}] == 0 else r[{data}][:r[{length}] - 1] "
                              f"if 0 < r[{length}] <= {cut} else Cut(r[{data}][:{cut - 1}]) "
                              f"if r[{length}] > 0 else Unreadable(r[{field}]))")
            elif src in slots:  # a buffer or socket address (a buffer's printer sees from its
                # length argument whether the record holds all of it)
                length, data = comm + 1 + 2 * slots[src], comm + 2 + 2 * slots[src]
                cut = self.plan.layout.record_string
                wrap = "_sockaddr" if arg.kind is ArgKind.SOCKADDR else ""
                values.append(f"(None if r[{field}] == 0 else {wrap}(r[{data}][:min(r[{length}], "
                              f"{cut}) - 1]) if r[{length}] > 0 else Unreadable(r[{field}]))")
            elif arg.kind in (ArgKind.PATH, ArgKind.STRING):
                values.append(f"(None if r[{field}] == 0 else Unreadable(r[{field}]))")
            else:
                values.append(value)
        fields = {"pid": f"r[{PID_FIELD}]", "tid": f"r[{PID_FIELD + 1}]",
                  "ppid": f"r[{PID_FIELD + 2}]",
                  **{name: f"r[{HEAD_FIELDS + i}]" for name, i in zip(
                      CRED_FIELDS, self.cred_index, strict=True)},
                  # dict.get first: a subscript on a dict subclass takes a slow generic
                  # path; the memo's own subscript computes what is missing (and b"").
                  "comm": f"(_comm_get(r[{comm}]) or _comm[r[{comm}]])",
                  "timestamp_ns": f"(r[0] + {self.offset_ns})",
                  "retval": f"r[{RET_FIELD}]" if rule.when is When.AFTER else "None"}
        return EventView(
            abi=sc.abi, nr=sc.nr, name=sc.name, signature=signature, when=rule.when.value,
            rule=rule.name, action=rule.action.type.value, log_format=rule.action.log_format,
            args=args, values=values, fields=fields,
            namespace={"Unreadable": Unreadable, "Cut": Cut, "_comm": self.comm,
                       "_comm_get": self.comm.get, "_sockaddr": SockAddr.decode},
            undecided_index=rule_index if kind != KIND_EVENT else None,
            undecided_reason=(f"PARAMS[{kind - KIND_UNREADABLE}] could not be read in the "
                              "kernel (not in memory yet, or a bad pointer)"
                              if kind >= KIND_UNREADABLE else ""))


def _normalise_code(arg, expr: str) -> str:
    """`arg.normalise(value)` as an expression on `expr` (a u64 from the record)."""
    bits = arg.width * 8
    if bits == 64:
        return f"({expr} - (1 << 64) if {expr} >> 63 else {expr})" if arg.signed else expr
    mask = (1 << bits) - 1
    if not arg.signed:
        return f"({expr} & {mask:#x})"
    half = 1 << (bits - 1)
    return f"((({expr} & {mask:#x}) ^ {half:#x}) - {half:#x})"


class SystemwideEngine:
    """One rule set, system-wide, in the kernel.

    ``SystemwideEngine(ruleset)`` validates what the kernel can run (RuleError
    otherwise); ``load()`` creates maps, loads and attaches every program --
    all or nothing; ``poll()``/``events()`` give Events and notices;
    ``replace()`` swaps rule sets with no gap; ``close()`` (or ``with``)
    detaches and frees everything.
    """

    def __init__(self, ruleset: RuleSet, *, window: int = 4096, record_string: int = 256,
                 ring_size: int = 16 << 20, compat: bool = True):
        """`compat=False` does not watch i386 calls (see the module docstring for the cost)."""
        check_fail(ruleset)
        self.plan = codegen.generate(ruleset, window=window, record_string=record_string,
                                     compat=compat)
        self.ring_size = ring_size
        self.compat = compat
        self._options = {"window": window, "record_string": record_string,
                         "ring_size": ring_size, "compat": compat}
        self._maps: dict[str, Map] = {}
        self._programs: list[Program] = []
        self._links: list[Link] = []
        self._ring: RingBuffer | None = None
        self._decoder = _Decoder(self.plan)
        self._reported_lost: dict[int, int] = {}
        self._counters_at = 0.0
        self._pending: list = []

    @property
    def ruleset(self) -> RuleSet:
        return self.plan.ruleset

    @property
    def loaded(self) -> bool:
        return self._ring is not None

    # -- lifetime ----------------------------------------------------------------------
    def load(self) -> SystemwideEngine:
        """Create, load and attach everything; on any failure nothing stays behind."""
        try:
            self._create_maps()
            attach = []  # (when, how, program, where)
            for spec in self.plan.programs:
                try:
                    prog = self._load(spec.prog_type, spec.instructions, spec.name,
                                      spec.attach_btf_id)
                except BpfError as exc:
                    if exc.errno not in _TOO_BIG:
                        raise
                    raise _too_big(spec, exc) from None
                if spec.tail_called:
                    self._maps[spec.attach[0]].update(struct.pack("<I", spec.syscall.nr),
                                                      struct.pack("<I", prog.fd))
                else:
                    attach.append((spec.when, attach_tracepoint, prog, spec.attach))
            for d in self.plan.dispatchers:
                prog = self._load(ProgType.TRACING, d.instructions, d.name, d.attach_btf_id)
                attach.append((d.when, attach_tracing, prog, ()))
            # Attach order: the cleaner and exit programs before the enter programs that
            # create entries, so that no entry is made that nothing will delete.
            if self.plan.has_after:
                cleaner = Program.load(ProgType.TRACEPOINT, codegen.cleaner(), maps=self._maps,
                                       name="sct_cleaner")
                self._programs.append(cleaner)
                self._links.append(attach_tracepoint(cleaner, "sched", "sched_process_exit"))
            for _, how, prog, where in sorted(attach, key=lambda a: a[0] is not When.AFTER):
                self._links.append(how(prog, *where))
            self._ring = RingBuffer(self._maps[EVENTS])
        except BaseException:
            self.close()
            raise
        return self

    def _load(self, prog_type: ProgType, insns, name: str, btf_id: int) -> Program:
        """Load a program (a tp_btf one when it names a BTF target), owned by the engine."""
        prog = Program.load(prog_type, insns, maps=self._maps, name=name,
                            expected_attach_type=AttachType.TRACE_RAW_TP if btf_id else 0,
                            attach_btf_id=btf_id)
        self._programs.append(prog)
        return prog

    def _create_maps(self) -> None:
        create_maps(self.plan, self.ring_size, self._maps)

    def close(self) -> None:
        """Detach (links first), then free programs, the ring and maps. Idempotent."""
        for link in reversed(self._links):
            link.close()
        self._links.clear()
        for prog in self._programs:
            prog.close()
        self._programs.clear()
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        for m in self._maps.values():
            m.close()
        self._maps.clear()

    def __enter__(self) -> SystemwideEngine:
        return self.load() if not self.loaded else self

    def __exit__(self, *exc) -> None:
        self.close()

    def replace(self, ruleset: RuleSet) -> None:
        """Swap in ``ruleset``: the new programs attach before the old ones detach.

        For that instant both sets run, so a call may be reported by both; never
        by neither. Events the old set already produced are kept for poll().
        """
        new = SystemwideEngine(ruleset, **self._options).load()
        old_pending = self._drain()
        old = SystemwideEngine.__new__(SystemwideEngine)
        old.__dict__ = self.__dict__
        self.__dict__ = new.__dict__
        old_pending += old._drain()
        old.close()
        self._pending = old_pending + self._pending

    # -- events ------------------------------------------------------------------------
    def _drain(self) -> list:
        if self._ring is None:
            return []
        block = self._ring.read_fixed(self._decoder.struct)
        return Records(block, self._decoder.key_fields, self._decoder.views,
                       after=self._lost_notices(force=True)).stream_items()

    def read_raw(self) -> list[tuple]:
        """Committed records as tuples (``layout.record_struct`` fields), undecoded."""
        return self._ring.read_fixed(self._decoder.struct).rows()

    def poll(self, timeout: float | None = 0,
             limit: int | None = None) -> list[Event | Lost | Undecided]:
        """What arrived, waiting up to ``timeout`` seconds (None: until something does);
        at most ``limit`` records, so that a caller's loop stays responsive under a burst."""
        return self.poll_records(timeout, limit).stream_items()

    def poll_records(self, timeout: float | None = 0, limit: int | None = None) -> Records:
        """As :meth:`poll`, with the records left undecoded for outputs that render
        them from their views (``Renderer.lines``); ``stream_items()`` decodes them."""
        if self._ring is None:
            raise RuntimeError("engine is not loaded")
        before, self._pending = self._pending, []
        if not before and not self._ring.pending:
            self._ring.poll(timeout)
        block = self._ring.read_fixed(self._decoder.struct, limit)
        return Records(block, self._decoder.key_fields, self._decoder.views, before,
                       self._lost_notices())

    def pending(self) -> bool:
        """True when records wait in the ring (a bounded poll left some behind)."""
        return self._ring is not None and self._ring.pending > 0

    def fileno(self) -> int:
        """The ring buffer's fd: readable when records wait (for select/epoll loops)."""
        if self._ring is None:
            raise RuntimeError("engine is not loaded")
        return self._maps[EVENTS].fd

    def events(self, timeout: float | None = None) -> Iterator[Event | Lost | Undecided]:
        """Yield events and notices as they come; stop after ``timeout`` idle seconds."""
        while True:
            batch = self.poll(timeout)
            if not batch and timeout is not None:
                return
            yield from batch

    def _lost_notices(self, force: bool = False) -> list[Lost]:
        now = time.monotonic()
        if not force and now - self._counters_at < COUNTER_INTERVAL:
            return []
        self._counters_at = now
        out = []
        for s in self.stats():
            seen = self._reported_lost.get(s.index, 0)
            if s.lost > seen:
                out.append(Lost(s.rule, s.index, s.lost - seen))
                self._reported_lost[s.index] = s.lost
        return out

    def stats(self) -> list[RuleStats]:
        """Per rule: matches, records lost to a full ring, undecided calls (all CPUs)."""
        counters = self._maps.get(COUNTERS)
        out = []
        for i, rule in enumerate(self.plan.ruleset.rules):
            totals = [0, 0, 0]
            if counters is not None:
                for value in counters.lookup_percpu(struct.pack("<I", i)) or ():
                    for j, n in enumerate(struct.unpack("<3Q", value)):
                        totals[j] += n
            out.append(RuleStats(i, rule.name, *totals))
        return out

    # -- introspection -----------------------------------------------------------------
    def dump(self) -> str:
        """Every program's assembly, each rule's part preceded by the rule's source."""
        return dump(self.plan)

    def ids(self) -> dict[str, list[int]]:
        """Kernel ids of our programs and maps (what a leak check looks for)."""
        return {"programs": [p.id for p in self._programs],
                "maps": [m.id for m in self._maps.values()]}


def create_maps(plan: Plan, ring_size: int, into: dict[str, Map]) -> dict[str, Map]:
    """The maps ``plan``'s programs reference, added to ``into`` as they are made (so a
    caller can close what exists if a later one fails); automata tables filled in."""
    lay = plan.layout
    specs = [
        MapSpec(SCRATCH, MapType.PERCPU_ARRAY, 4, lay.frame_size, 1),
        MapSpec(EVENTS, MapType.RINGBUF, 0, 0, ring_size),
        MapSpec(COUNTERS, MapType.PERCPU_ARRAY, 4, 8 * len(COUNTER_FIELDS),
                max(1, len(plan.ruleset.rules))),
    ]
    if plan.dfa_tables:
        specs.append(MapSpec(DFA, MapType.ARRAY, 4, plan.dfa_value_size, len(plan.dfa_tables)))
    if plan.has_after:
        specs.append(MapSpec(AFTER, MapType.HASH, 4, lay.frame_size, AFTER_ENTRIES,
                             BPF_F_NO_PREALLOC))
    specs += [MapSpec(name, MapType.PROG_ARRAY, 4, 4, size)
              for d in plan.dispatchers for name, size in d.tables]
    for spec in specs:
        into[spec.name] = spec.create()
    for i, t in enumerate(plan.dfa_tables):
        into[DFA].update(struct.pack("<I", i), t.ljust(plan.dfa_value_size, b"\0"))
    return into


def dump(plan: Plan) -> str:
    rules = plan.ruleset.rules
    out = []
    for p in plan.programs:
        out.append(f"; program {p.name}: {p.prog_type.name} on {':'.join(p.attach)}")
        listing = disassemble(p.instructions).splitlines()
        # Map slot numbers back to instruction indexes, to cut the listing per rule.
        starts = {first: idx for idx, first, _ in p.rule_spans}
        insn = -1
        for line in listing:
            if not line.endswith(":"):
                insn += 1
                if insn in starts:
                    rule = rules[starts[insn]]
                    out.append("")
                    out.extend(f"; {text}" for text in rule_text(rule).splitlines())
            out.append(line)
        out.append("")
    for d in plan.dispatchers:
        out.append(f"; program {d.name}: TRACING on {':'.join(d.attach)}, tail-calls "
                   f"{' or '.join(name for name, _ in d.tables)}[call number]")
        out.append(disassemble(d.instructions))
        out.append("")
    return "\n".join(out)


def describe(plan: Plan) -> str:
    """One line per program: where it attaches and which rules it holds."""
    return "\n".join(f"{p.name}: {':'.join(p.attach)} rules "
                     f"{[plan.ruleset.rules[b.index].name for b in p.rules]}"
                     for p in plan.programs)
