"""The per-command engine: a rule set applied to one command or process tree.

It is the ptrace `Consumer`: at each stop it finds the call's rule lists
(`RuleSet.rules_for`, kept per call number), evaluates the first match,
turns the rule's action into a `Decision`, and hands matched calls as
`Event`s to `emit`.  What is printed, and how, is the caller's (see
cli/sctrace.py): the engine knows no formats.

An `Event` is complete when the tracee is let go (everything it shows was
read at the stop), but `emit` is called only after: rendering and writing
then overlap with the tracee running.  Events keep their order, and notices
wait for the events before them.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterable

from ...events import Event
from ...ptrace import Consumer, Decision, ProcessEvent, Syscall, Tracer
from ...ptrace import proc as procfs
from ...ptrace.events import CONTINUE_TO_EXIT
from ...ptrace.resolve import SHORTAGE
from ...ptrace.tracer import SPIN_NS
from ...rules import ActionType, BoundRule, RuleSet, Str, When
from ...rules.values import MASK64, const_value
from ...syscalls import NO_RETURN, FromStruct, Variant, table
from ...syscalls import Syscall as SyscallSpec
from . import context
from .context import AT_ENTRY, ROOT_CHANGERS, CallShape, CallView
from .policy import build_policy, unseen_arguments

Emit = Callable[[Event], None]
Notice = Callable[[str], None]
_PLAIN = id(None)  # the views' key of the call's own view (no variant)
# Enum members the stops use, bound once: in Python 3.11 `When.AFTER` is a lookup of
# 0.1-0.2 µs (timeit), and a logged call's stops make several.
_BEFORE, _AFTER = When.BEFORE, When.AFTER
_LOG, _FAIL = ActionType.LOG, ActionType.FAIL


class _Plan:
    """What the rules make of one (ABI, call number), worked out at its first stop."""

    __slots__ = ("after", "before", "keep_paths", "kept", "labels", "shapes", "sure",
                 "traced", "traced_at_entry", "unjudged", "want_exit")

    def __init__(self, ruleset: RuleSet, real: SyscallSpec, traced: bool, shown_paths: bool):
        """`shown_paths`: the output shows PATH[n] (%path, JSON)."""
        name = real.family
        # A rule reading an argument this call does not pass in its registers (old i386
        # calls: `unseen_arguments`) cannot judge it: an enforcing one has it refused in
        # the filter, before any stop; any other passes it by (`unjudged`, said once).
        rules = {when: ruleset.rules_for(name, when) for when in When}
        self.unjudged = tuple(b for when in When for b in rules[when]
                              if unseen_arguments(b, real))
        self.before, self.after = (tuple(b for b in rules[when] if b not in self.unjudged)
                                   for when in (When.BEFORE, When.AFTER))
        # No exit stop to wait for: a traced one is shown at its entry with the result
        # unknown, as strace shows `exit_group(0) = ?`.
        self.traced_at_entry = traced and name in NO_RETURN
        self.traced = traced and not self.traced_at_entry
        self.want_exit = bool(self.after) or self.traced
        # A call whose names lead elsewhere after it (chdir, chroot, execve, rename) has
        # the PATH[n] its exit tests or shows worked out at entry (CallView.keep_paths).
        self.keep_paths = name in AT_ENTRY and (
            (shown_paths and self.want_exit) or any(b.filter.needs_paths for b in self.after))
        variants = {id(b.variant): b.variant for b in self.before + self.after}
        variants[_PLAIN] = None
        self.shapes = {key: _shape(real, variant) for key, variant in variants.items()}
        # The views the exit needs: the after list's, and the plain one (trace output).
        self.kept = tuple({id(v): v for v in (None, *(b.variant for b in self.after))}.values())
        # An after list whose first rule matches every call (no filter, no variant
        # condition) is decided without evaluating anything.
        first = self.after[0] if self.after else None
        self.sure = first if first is not None and first.filter.always and (
            first.variant is None or first.variant.condition is None) else None
        # What an event shows of each rule: (name, action, log_format), by rule index.
        self.labels = {b.index: (b.rule.name, b.rule.action.type.value, b.rule.action.log_format)
                       for b in self.before + self.after}


def _shape(real: SyscallSpec, variant: Variant | None) -> CallShape:
    if variant is None:
        return CallShape(real, real.args, None)
    classic = table().by_name(variant.classic, real.abi) or table().lookup(variant.classic)
    return CallShape(real, classic.args, variant)


class RuleConsumer(Consumer):
    """Applies `ruleset` at every stop; `trace_names` are also shown when no rule matched."""

    def __init__(self, ruleset: RuleSet, emit: Emit, notice: Notice,
                 trace_names: Iterable[str] = (), capture: Iterable[str] = (),
                 filtered: bool = True):
        """`capture` names the costly Event fields an output shows (see `CallView.event`);
        `filtered`: the processes carry sctrace's seccomp filter (started by it, not
        attached to)."""
        self.ruleset = ruleset
        self.filtered = filtered
        self._capture = frozenset(capture)
        self.emit = emit
        self.notice = notice
        self.trace_names = frozenset(trace_names)
        # tid -> (plan, entry views by variant id) for calls whose exit we wait for
        self._entries: dict[int, tuple[_Plan, dict[int, CallView | None]]] = {}
        self._plans: dict[tuple[str, int], _Plan | None] = {}
        self._fail_decisions: dict[tuple[int, bool], Decision] = {}
        self._events: list[Event] = []  # made at the current stop, emitted after it
        self._fallback_said = False

    # -- the ptrace side
    def on_entry(self, call: Syscall) -> Decision | None:
        plan = self._plans.get((call.abi, call.nr), False)
        if plan is False:
            plan = self._learn(call)
        if plan is None:
            return None
        views: dict[int, CallView | None] = {}
        match = _first_match(plan.before, views, call, plan) if plan.before else None
        if plan.want_exit:
            self._remember(call, plan, views)
        if match is None:
            if plan.traced_at_entry:
                self._events.append(_view(views, call, plan, None).event(
                    _BEFORE, None, None, None, None, self._capture))
            return CONTINUE_TO_EXIT if plan.want_exit else None
        return self._act(match[0], match[1], call, plan.want_exit)

    def _learn(self, call: Syscall) -> _Plan | None:
        """What a call number means, once per (ABI, number)."""
        # (x32 has the native numbers, but for its own forms: its execve is 520)
        real = (table().by_x32_nr(call.nr) if call.abi == "x32"
                else table().by_nr(call.abi, call.nr))
        if real is not None and real.family in ROOT_CHANGERS:
            procfs.roots_may_change()  # (sticky: learnt once, and once is enough)
        plan = None if real is None else _Plan(self.ruleset, real,
                                               real.family in self.trace_names,
                                               "paths" in self._capture)
        self._plans[(call.abi, call.nr)] = plan
        for bound in plan.unjudged if plan is not None else ():
            self._notify(f"rule '{bound.rule.name}' reads arguments that {real.abi} "
                         f"{real.name} ({real.nr}) does not pass in its registers: it does "
                         f"not judge that call")
        return plan

    def on_exit(self, call: Syscall, retval: int) -> None:
        entry = self._entries.pop(call.tid, None)
        if entry is None:
            return
        plan, views = entry
        for view in views.values():
            if view is not None:
                view.at_exit(retval)
        sure = plan.sure
        if sure is not None:
            match = sure, views[id(sure.variant)]
        else:
            match = _first_match(plan.after, views, call, plan)  # views holds every one it needs
        if match is not None:
            name, action, log_format = plan.labels[match[0].index]
            self._events.append(match[1].event(
                _AFTER, name, action, log_format, retval, self._capture))
        elif plan.traced:
            self._events.append(views[_PLAIN].event(
                _AFTER, None, None, None, retval, self._capture))

    def on_process_event(self, event: ProcessEvent) -> None:
        if event.kind in ("exit", "suspended", "detached"):
            entry = self._entries.pop(event.tid, None)
            if entry is not None and entry[0].traced and event.kind == "exit":
                # Killed (or the process exited) in the middle of a traced call: it
                # never returns, show it with the result unknown rather than not at all.
                self._events.append(entry[1][_PLAIN].event(
                    _AFTER, None, None, None, None, self._capture))

    def after_stop(self) -> None:
        events = self._events
        if events:  # (flush, inlined: this runs at every stop)
            self._events = []
            emit = self.emit
            for event in events:
                emit(event)
        if context.text_fallbacks and not self._fallback_said:
            self._fallback_said = True
            error = context.text_fallbacks[0]
            advice = ("; raise the descriptor limit (ulimit -n) and run again"
                      if error.errno in SHORTAGE else "")
            self.notice(f"PATH[n] had to be resolved as text ({error.strerror}): a symlinked "
                        f"directory can go around a rule on it where that happens{advice}")

    def flush(self) -> None:
        """Emit the events made so far."""
        events, self._events = self._events, []
        for event in events:
            self.emit(event)

    def _notify(self, message: str) -> None:
        self.flush()
        self.notice(message)

    def on_rewrite_error(self, call: Syscall, error: OSError) -> None:
        self._notify(f"could not rewrite an argument of pid {call.pid}'s call "
                     f"{call.nr} ({error}); the call was failed with EFAULT")

    def on_suspended_wait(self, pids: list[int]) -> None:
        self._notify(f"nothing left to trace; waiting for suspended pid "
                     f"{', '.join(map(str, pids))} to exit")

    # -- rules to decisions
    def _act(self, bound: BoundRule, view: CallView, call: Syscall,
             want_exit: bool) -> Decision:
        rule = bound.rule
        action = rule.action
        kind = action.type
        if kind is _LOG or action.log_format is not None:
            self._events.append(view.event(_BEFORE, rule.name, kind.value,
                                           action.log_format, None, self._capture))
        if kind is _FAIL:
            key = (bound.index, want_exit)
            decision = self._fail_decisions.get(key)
            if decision is None:
                result = action.error_code.value
                decision = self._fail_decisions[key] = (
                    Decision.fail(-result, want_exit) if -4095 <= result <= 0
                    else Decision.returning(result, want_exit))
            return decision
        name = view.shape.real.name
        if kind is ActionType.KILL:
            self._notify(f"rule '{rule.name}' killed pid {call.pid} at {name}")
            return Decision.kill()
        if kind is ActionType.SUSPEND:
            after = ("note that from then on, gdb or not, the calls sctrace's seccomp filter "
                     "stops fail with ENOSYS" if self.filtered else
                     "it carries no filter of sctrace's and runs as before")
            self._notify(
                f"rule '{rule.name}' suspended pid {call.pid} before {name}: it is "
                f"stopped (SIGSTOP) and no longer traced. Attach a debugger with "
                f"'gdb -p {call.pid}', or let it go on with 'kill -CONT {call.pid}'; "
                f"{after}. sctrace keeps running until it has exited; ending sctrace "
                f"first (Ctrl-C, SIGTERM) kills it if sctrace started it, and leaves it "
                f"stopped if sctrace attached to it")
            return Decision.suspend()
        if kind is ActionType.REWRITE:
            index = action.param - 1
            if bound.variant is not None:
                index = bound.variant.args[index]
            if isinstance(index, FromStruct):  # (open's flags or mode, in openat2's open_how)
                self._notify(f"rule '{rule.name}' cannot rewrite PARAMS[{action.param}] of "
                             f"pid {call.pid}'s {name}: it lies in {index.value} in the "
                             f"caller's memory, not in a register; the call was failed "
                             f"with EFAULT")
                return Decision.fail(errno.EFAULT, want_exit)
            value = action.value
            new = value.value if isinstance(value, Str) else const_value(value) & MASK64
            return Decision.proceed(want_exit, rewrite=view.shape.real.placed(index, new))
        return Decision.proceed(want_exit)

    # -- views
    def _remember(self, call: Syscall, plan: _Plan, views: dict) -> None:
        """Keep the entry views the after list will need, with their strings read now.

        Strings are read at entry because after the call the memory may be gone
        (execve replaces it) or reused.
        """
        for variant in plan.kept:
            if variant is None and _PLAIN not in views:  # (_view, inlined for the usual case)
                view = views[_PLAIN] = CallView(call, plan.shapes[_PLAIN])
            else:
                view = _view(views, call, plan, variant)
            if view is not None:
                view.values()
                if plan.keep_paths:
                    view.keep_paths()
        if plan.traced:  # shown even if the process dies in the call: its name while alive
            with contextlib.suppress(OSError):
                call.task.comm()  # (the Task keeps the name it read last)
        self._entries[call.tid] = (plan, views)


def _first_match(rules: tuple[BoundRule, ...], views: dict, call: Syscall,
                 plan: _Plan) -> tuple[BoundRule, CallView] | None:
    """The first rule of the list whose filter matches (reference §2), with its view.

    `RuleSet.first_match` over the plan's own list and views: no lookup per call.
    """
    for bound in rules:
        variant = bound.variant
        if variant is None and _PLAIN not in views:  # (_view, inlined for the usual case)
            view = views[_PLAIN] = CallView(call, plan.shapes[_PLAIN])
        else:
            view = _view(views, call, plan, variant)
        if view is not None and bound.filter.evaluate(view):
            return bound, view
    return None


def _view(views: dict, call: Syscall, plan: _Plan, variant: Variant | None) -> CallView | None:
    """The call as rules bound through `variant` see it (None if it is not that call)."""
    key = id(variant)
    view = views.get(key, False)
    if view is False:
        if variant is not None and variant.condition is not None \
                and not variant.condition.holds(call.args):
            view = None
        else:
            view = CallView(call, plan.shapes[key])
        views[key] = view
    return view


def _policy(ruleset: RuleSet, trace_names: Iterable[str], capture: Iterable[str]):
    """The seccomp policy; with the calls that change roots when PATH[n] is resolved."""
    resolves = "paths" in capture or any(
        bound.filter.needs_paths for name in ruleset.watched() for when in When
        for bound in ruleset.rules_for(name, when))
    return build_policy(ruleset, (*trace_names, *ROOT_CHANGERS) if resolves else trace_names)


def run_command(ruleset: RuleSet, argv: list[str], emit: Emit, notice: Notice,
                trace_names: Iterable[str] = (), capture: Iterable[str] = (), *,
                spin_ns: int = SPIN_NS) -> int:
    """Run `argv` under `ruleset`; the command's exit status (128+signal if killed).
    `spin_ns`: see `Tracer`."""
    consumer = RuleConsumer(ruleset, emit, notice, trace_names, capture)
    try:
        with Tracer(consumer, spin_ns) as tracer:
            tracer.spawn(argv, seccomp_policy=_policy(ruleset, trace_names, capture))
            return tracer.run()
    finally:
        consumer.flush()


def attach(ruleset: RuleSet, pids: list[int], emit: Emit, notice: Notice,
           trace_names: Iterable[str] = (), capture: Iterable[str] = (), *,
           spin_ns: int = SPIN_NS) -> int:
    """Trace running processes until they exit or we are interrupted; they keep running."""
    consumer = RuleConsumer(ruleset, emit, notice, trace_names, capture, filtered=False)
    policy = _policy(ruleset, trace_names, capture)
    try:
        with Tracer(consumer, spin_ns) as tracer:
            for pid in pids:
                tracer.attach(pid, policy)
            return tracer.run()
    finally:
        consumer.flush()
