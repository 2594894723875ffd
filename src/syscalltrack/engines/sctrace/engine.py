"""The per-command engine: a rule set applied to one command or process tree.

It is the ptrace `Consumer`: at each stop it finds the call's rule list,
evaluates the first match (rules.RuleSet), turns the rule's action into a
`Decision`, and hands matched calls as `Event`s to `emit`.  What is printed,
and how, is the caller's (see `output.py`): the engine knows no formats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ...events import Event
from ...ptrace import Consumer, Decision, ProcessEvent, Syscall, Tracer
from ...rules import ActionType, BoundRule, RuleSet, Str, When
from ...rules.values import MASK64, const_value
from ...syscalls import X86_64, Variant, table
from ...syscalls import Syscall as SyscallSpec
from .context import AfterView, CallView
from .policy import build_policy

Emit = Callable[[Event], None]
Notice = Callable[[str], None]


class RuleConsumer(Consumer):
    """Applies `ruleset` at every stop; `trace_names` are also shown when no rule matched."""

    def __init__(self, ruleset: RuleSet, emit: Emit, notice: Notice,
                 trace_names: Iterable[str] = (), capture: Iterable[str] = ()):
        """`capture` names the costly Event fields an output shows: "ids", "cwd", "paths"."""
        self.ruleset = ruleset
        self._capture = frozenset(capture)
        self.emit = emit
        self.notice = notice
        self.trace_names = frozenset(trace_names)
        self._entries: dict[int, tuple[CallView, ...]] = {}  # tid -> views awaiting the exit
        self._calls: dict[tuple[str, int], tuple[SyscallSpec, bool] | None] = {}
        self._fail_decisions: dict[tuple[int, bool], Decision] = {}

    # -- the ptrace side
    def on_entry(self, call: Syscall) -> Decision | None:
        known = self._calls.get((call.abi, call.nr), False)
        if known is False:
            known = self._learn(call)
        if known is None:
            return None
        real, after = known
        views: dict[Variant | None, CallView | None] = {}
        match = self.ruleset.first_match(
            real.family, When.BEFORE, lambda variant: self._view(views, call, real, variant))
        if after:
            self._remember(call, real, views)
        if match is None:
            return Decision.proceed(want_exit=after)
        return self._act(match.rule, match.context, call, want_exit=after)

    def _learn(self, call: Syscall) -> tuple[SyscallSpec, bool] | None:
        """What a call number means, once per (ABI, number): its spec, and if its exit matters."""
        abi = X86_64 if call.abi == "x32" else call.abi  # x32 shares the native numbers
        real = table().by_nr(abi, call.nr)
        known = None
        if real is not None:
            name = real.family
            known = (real, bool(self.ruleset.rules_for(name, When.AFTER))
                     or name in self.trace_names)
        self._calls[(call.abi, call.nr)] = known
        return known

    def on_exit(self, call: Syscall, retval: int) -> None:
        entries = self._entries.pop(call.tid, None)
        if not entries:
            return
        name = entries[0].real.family
        after_views = {view.variant: AfterView(view, retval) for view in entries}
        match = self.ruleset.first_match(name, When.AFTER, after_views.get)
        if match is not None:
            rule = match.rule.rule
            self.emit(match.context.event(When.AFTER, rule.name, rule.action.type.value,
                                          rule.action.log_format, retval, self._capture))
        elif name in self.trace_names:
            self.emit(after_views[None].event(When.AFTER, None, None, None, retval,
                                              self._capture))

    def on_process_event(self, event: ProcessEvent) -> None:
        if event.kind in ("exit", "suspended", "detached"):
            self._entries.pop(event.tid, None)

    def on_rewrite_error(self, call: Syscall, error: OSError) -> None:
        self.notice(f"could not rewrite an argument of pid {call.pid}'s call "
                    f"{call.nr} ({error}); the call was failed with EFAULT")

    # -- rules to decisions
    def _act(self, bound: BoundRule, view: CallView, call: Syscall,
             want_exit: bool) -> Decision:
        rule = bound.rule
        action = rule.action
        kind = action.type
        if kind is ActionType.LOG or action.log_format is not None:
            self.emit(view.event(When.BEFORE, rule.name, kind.value, action.log_format,
                                 None, self._capture))
        if kind is ActionType.FAIL:
            key = (bound.index, want_exit)
            decision = self._fail_decisions.get(key)
            if decision is None:
                result = action.error_code.value
                decision = self._fail_decisions[key] = (
                    Decision.fail(-result, want_exit) if -4095 <= result <= 0
                    else Decision.returning(result, want_exit))
            return decision
        if kind is ActionType.KILL:
            self.notice(f"rule '{rule.name}' killed pid {call.pid} at {view.real.name}")
            return Decision.kill()
        if kind is ActionType.SUSPEND:
            self.notice(
                f"rule '{rule.name}' suspended pid {call.pid} before {view.real.name}: it is "
                f"stopped (SIGSTOP) and no longer traced. Attach a debugger with "
                f"'gdb -p {call.pid}', or let it go on with 'kill -CONT {call.pid}'; note "
                f"that without a tracer, the calls sctrace's seccomp filter stops then fail "
                f"with ENOSYS")
            return Decision.suspend()
        if kind is ActionType.REWRITE:
            index = action.param - 1
            if bound.variant is not None:
                index = bound.variant.args[index]
            value = action.value
            new = value.value if isinstance(value, Str) else const_value(value) & MASK64
            return Decision.proceed(want_exit, rewrite={index: new})
        return Decision.proceed(want_exit)

    # -- views
    @staticmethod
    def _view(views: dict, call: Syscall, real: SyscallSpec,
              variant: Variant | None) -> CallView | None:
        if variant in views:
            return views[variant]
        if variant is None:
            view = CallView(call, real, real.args, None)
        elif variant.condition is not None and not variant.condition.holds(call.args):
            view = None
        else:
            classic = table().by_name(variant.classic, real.abi) or table().lookup(variant.classic)
            view = CallView(call, real, classic.args, variant)
        views[variant] = view
        return view

    def _remember(self, call: Syscall, real: SyscallSpec, views: dict) -> None:
        """Keep the entry views the after list will need, with their strings read now.

        Strings are read at entry because after the call the memory may be gone
        (execve replaces it) or reused.
        """
        wanted = {b.variant for b in self.ruleset.rules_for(real.family, When.AFTER)}
        wanted.add(None)
        kept = []
        for variant in wanted:
            view = self._view(views, call, real, variant)
            if view is not None:
                for i in range(len(view.signature)):
                    view.value(i)
                kept.append(view)
        kept.sort(key=lambda v: v.variant is not None)  # the plain view first
        self._entries[call.tid] = tuple(kept)


def run_command(ruleset: RuleSet, argv: list[str], emit: Emit, notice: Notice,
                trace_names: Iterable[str] = (), capture: Iterable[str] = ()) -> int:
    """Run `argv` under `ruleset`; the command's exit status (128+signal if killed)."""
    consumer = RuleConsumer(ruleset, emit, notice, trace_names, capture)
    with Tracer(consumer) as tracer:
        tracer.spawn(argv, seccomp_policy=build_policy(ruleset, trace_names))
        return tracer.run()


def attach(ruleset: RuleSet, pids: list[int], emit: Emit, notice: Notice,
           trace_names: Iterable[str] = (), capture: Iterable[str] = ()) -> int:
    """Trace running processes until they exit or we are interrupted; they keep running."""
    consumer = RuleConsumer(ruleset, emit, notice, trace_names, capture)
    policy = build_policy(ruleset, trace_names)
    with Tracer(consumer) as tracer:
        for pid in pids:
            tracer.attach(pid, policy)
        return tracer.run()
