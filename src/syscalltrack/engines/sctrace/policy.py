"""A rule set as a seccomp filter: which calls stop in sctrace, which fail in the kernel.

Only the calls the rules name (and their modern variants, on both ABIs) stop;
every other call runs at full speed.  A FAIL rule whose filter reads nothing
but integer arguments and constants is compiled into the filter itself as
SECCOMP_RET_ERRNO, so those calls fail without a stop -- as long as doing so
keeps first-match semantics:

- only a leading run of such FAIL rules in a call's before list is compiled
  (a rule before them that might match must be evaluated first, in sctrace);
- not when the call has after rules (they must see the failed call) or when the
  FAIL rule also logs;
- only when every argument test translates exactly to the 32/64-bit compares
  of classic BPF (`exact_condition`); otherwise the call stops and sctrace
  decides.

Foreign ABIs: i386 (`int $0x80`) calls are matched with the i386 table, so a
rule on `unlink` also stops i386 `unlink` (10).  x32 calls are all sent to
sctrace, which judges them as the x86_64 call they are (the calls with an x32 form
by their own numbers: x32 `execve` is 520).  i386 `socketcall` and
`ipc` multiplex many calls behind one number; when a rule set enforces
anything (FAIL, KILL, SUSPEND, REWRITE), they are refused with ENOSYS so that
they cannot be used to go around it.

When a rule set enforces anything, two more ways around it are refused, on
every ABI, before any rule sees the call:

- io_uring: operations submitted through a ring (IORING_OP_UNLINKAT, _OPENAT,
  _RENAMEAT, _CONNECT...) are done by the kernel without a system call, so no
  rule sees them.  `io_uring_setup` fails with ENOSYS, as on a kernel without
  io_uring (programs and libraries fall back to plain calls).  A ring made
  before sctrace attached (`-p`) is not covered.
- an untraced child: `clone(CLONE_UNTRACED)` makes a child the tracer does not
  follow, whose own child-made tracer (PTRACE_TRACEME) can then let through the
  calls our filter sends to a tracer.  `clone` with that flag fails with EPERM;
  `clone3`, whose flags are in memory a filter cannot read (and another thread
  could change after a stop read them), fails with ENOSYS, and glibc falls back
  to `clone`, as under Docker's default profile.
- a seccomp listener of its own: a filter the command adds may answer a call
  with SECCOMP_RET_USER_NOTIF, which takes precedence over our RET_TRACE, and
  its supervisor may then let the call run (SECCOMP_USER_NOTIF_FLAG_CONTINUE)
  with no stop in sctrace.  `seccomp(SECCOMP_SET_MODE_FILTER)` with
  SECCOMP_FILTER_FLAG_NEW_LISTENER fails with EINVAL, as before Linux 5.0.
- a file handle: `open_by_handle_at` opens a file with no path to match (root
  only: it fails with EPERM, as it does for everyone else).

Whatever the rules, a userfaultfd that handles faults the kernel takes in the
command's memory is refused (EPERM, as an unprivileged caller gets it): sctrace
reads strings while the caller is stopped, a read of a page such a userfaultfd
watches waits for its handler thread, and that thread may itself be waiting at a
stop for sctrace, which then can never go on (nor be killed but by SIGKILL).
`userfaultfd(2)` and the /dev/userfaultfd ioctl without UFFD_USER_MODE_ONLY fail;
with it, sctrace's reads of a missing page fail instead of waiting.
"""

from __future__ import annotations

import errno as errno_mod
from collections.abc import Iterable

from ...ptrace import RET_TRACE, ArgCondition, ErrnoRule, Policy
from ...rules import ActionType, ArgTest, BoundRule, RuleSet, When
from ...syscalls import CONSTANTS, I386, X32_CALLS, X86_64, Arg, FromStruct, Syscall, table

_MULTIPLEXERS = ("socketcall", "ipc")
_X32_NUMBERS = {name: nr for nr, name in X32_CALLS.items()}
_SET_MODE_FILTER, _NEW_LISTENER = 1, 8  # seccomp(2): the operation, and the flag
# (call, errno, conditions on its registers): refused whatever the rules say, when they enforce
_WAYS_AROUND = (
    ("io_uring_setup", errno_mod.ENOSYS, ()),
    ("clone", errno_mod.EPERM, (ArgCondition(0, "&", CONSTANTS["CLONE_UNTRACED"]),)),
    ("clone3", errno_mod.ENOSYS, ()),
    ("seccomp", errno_mod.EINVAL, (ArgCondition(0, "==", _SET_MODE_FILTER, bits=32),
                                   ArgCondition(1, "&", _NEW_LISTENER, bits=32))),
    ("open_by_handle_at", errno_mod.EPERM, ()),
)
_USER_MODE_ONLY, _USERFAULTFD_IOC_NEW = 1, 0xAA00  # userfaultfd(2)'s flag; _IO(0xAA, 0)
# (call, errno, conditions): refused whatever the rules, so that sctrace's reads cannot hang
_WEDGES = (
    ("userfaultfd", errno_mod.EPERM, (ArgCondition(0, "==", 0, bits=32,
                                                   mask=_USER_MODE_ONLY),)),
    ("ioctl", errno_mod.EPERM, (ArgCondition(1, "==", _USERFAULTFD_IOC_NEW, bits=32),
                                ArgCondition(2, "==", 0, bits=32, mask=_USER_MODE_ONLY))),
)
_ENFORCING = frozenset({ActionType.FAIL, ActionType.KILL, ActionType.SUSPEND,
                        ActionType.REWRITE})
_INT32 = range(-(1 << 31), 1 << 31)
_UINT32 = range(1 << 32)


def build_policy(ruleset: RuleSet, also_trace: Iterable[str] = ()) -> Policy:
    """The seccomp policy for `ruleset`, stopping also the calls named in `also_trace`."""
    trace: dict[str, set[int]] = {"x86_64": set(), "i386": set()}
    errno_rules: list[ErrnoRule] = []
    names = set(ruleset.watched()) | set(also_trace)
    for name in sorted(names):
        for sc in table().family(name):
            trace[sc.abi].add(sc.nr)
        errno_rules += _unseen_refusals(ruleset, name)
        errno_rules += _in_filter_failures(ruleset, name)
    if any(rule.action.type in _ENFORCING for rule in ruleset.rules):
        for name in _MULTIPLEXERS:
            sc = table().by_name(name, I386)
            errno_rules.append(ErrnoRule(I386, sc.nr, (), errno_mod.ENOSYS))
        errno_rules += _on_every_abi(_WAYS_AROUND)
    errno_rules += _on_every_abi(_WEDGES)
    return Policy(trace=trace, errno_rules=errno_rules, otherwise={"x32": RET_TRACE})


def _on_every_abi(refusals) -> list[ErrnoRule]:
    """ErrnoRules for (call, errno, conditions) on x86_64, i386 and x32 (the x86_64
    numbers, or x32's own for the calls with an x32 form: its ioctl is 514)."""
    return [ErrnoRule(abi, _X32_NUMBERS.get(name) if abi == "x32" and name in _X32_NUMBERS
                      else table().by_name(name, I386 if abi == I386 else X86_64).nr,
                      conditions, errno)
            for name, errno, conditions in refusals for abi in (X86_64, I386, "x32")]


def unseen_arguments(bound: BoundRule, sc: Syscall) -> bool:
    """Whether `bound` reads (or a REWRITE writes) an argument that call `sc` does not pass
    in its registers (`Syscall.lacks`)."""
    f = bound.filter
    indexes = set(f.args | f.strings | f.paths)
    action = bound.rule.action
    if action.type is ActionType.REWRITE:
        indexes.add(action.param - 1)
    if bound.variant is not None:  # (real indexes, and the real call's own arguments)
        indexes = {bound.variant.args[i] for i in indexes}
        expected = (table().by_name(sc.family) or sc).args
    else:  # the arguments the rule's own call has
        expected = (table().lookup(bound.rule.syscall) or sc).args
    return any(isinstance(i, int) and sc.lacks(i, expected) for i in indexes)


def _unseen_refusals(ruleset: RuleSet, name: str) -> list[ErrnoRule]:
    """ENOSYS for the calls of family `name` that an enforcing rule on it cannot decide
    (`unseen_arguments`): refused, rather than let through unjudged."""
    refused = {}
    for when in When:
        for bound in ruleset.rules_for(name, when):
            if bound.rule.action.type in _ENFORCING:
                for sc in table().family(name):
                    if unseen_arguments(bound, sc):
                        refused[(sc.abi, sc.nr)] = ErrnoRule(sc.abi, sc.nr, (),
                                                             errno_mod.ENOSYS)
    return list(refused.values())


def _in_filter_failures(ruleset: RuleSet, name: str) -> list[ErrnoRule]:
    if ruleset.rules_for(name, When.AFTER):
        return []
    out: list[ErrnoRule] = []
    for bound in ruleset.rules_for(name, When.BEFORE):
        compiled = _compile_fail(bound, name)
        if compiled is None:
            break
        out += compiled
    return out


def _compile_fail(bound: BoundRule, name: str) -> list[ErrnoRule] | None:
    """The ErrnoRules for one FAIL rule bound to call `name`, or None if it needs a stop."""
    action = bound.rule.action
    conjunctions = bound.filter.arg_conditions
    if action.type is not ActionType.FAIL or action.log_format or conjunctions is None:
        return None
    result = action.error_code.value
    if result > 0:
        return None  # a positive fake result needs the tracer to set it
    out = []
    for sc in table().family(name):
        if unseen_arguments(bound, sc):
            continue  # (refused before any rule: `_unseen_refusals`)
        for conjunction in conjunctions:
            conditions = _translate(bound, sc, conjunction)
            if conditions is None:
                return None
            out.append(ErrnoRule(sc.abi, sc.nr, conditions, -result))
    return out


def _translate(bound: BoundRule, sc: Syscall,
               conjunction: tuple[ArgTest, ...]) -> tuple[ArgCondition, ...] | None:
    """One AND of rule argument tests as seccomp conditions on the real call's registers.

    An i386 64-bit value split over two registers is left to sctrace (None).
    """
    conditions = []
    variant = bound.variant
    if variant is not None and variant.condition is not None:
        cond = variant.condition
        conditions.append(ArgCondition(cond.arg, "==", cond.value, bits=32, mask=cond.mask))
    for test in conjunction:
        index = variant.args[test.arg] if variant is not None else test.arg
        if isinstance(index, FromStruct):
            return None
        register = sc.register_of(index)
        if register is None:
            return None
        condition = exact_condition(sc.args[index], register, test)
        if condition is None:
            return None
        conditions.append(condition)
    return tuple(conditions)


def exact_condition(arg: Arg, index: int, test: ArgTest) -> ArgCondition | None:
    """`test` on argument `arg` as a seccomp compare, when that compare is exact.

    Filters compare arguments normalised to their C type as signed 64-bit
    numbers (rules/values.py); seccomp sees the raw registers.  A 64-bit
    argument compares the same signed; a narrower one compares its low half,
    which is exact only while the constant lies in the range the argument can
    take (else the outcome is a constant, and sctrace decides at a stop).
    """
    if arg.width == 8:
        return ArgCondition(index, test.op, test.value, signed=True, bits=64, mask=test.mask)
    full = (1 << (8 * arg.width)) - 1
    if arg.signed and test.mask is None:
        if test.value not in _INT32:
            return None
        return ArgCondition(index, test.op, test.value, signed=True, bits=32)
    mask = full if test.mask is None else test.mask & full
    if arg.signed and test.mask is not None and not 0 <= test.mask < (1 << 31):
        return None  # sign-extension could set bits the low half does not show
    if test.value not in _UINT32:
        return None
    return ArgCondition(index, test.op, test.value, signed=False, bits=32,
                        mask=None if mask == 0xFFFFFFFF else mask)
