"""sctrace: run a command, or attach to processes, under syscalltrack rules (seccomp + ptrace).

With -c RULES every action works, FAIL included, on any kernel.  Without
rules it shows every call (or those -e trace=... selects), strace-style.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys

from ..engines.sctrace import attach, run_command
from ..events import Event, unknown_macros
from ..events.format import macros_used
from ..events.render import Renderer
from ..events.view import VARIABLE_FIELDS, EventView
from ..ptrace import PtraceError, SpawnError, proc
from ..ptrace.tracer import SPIN_NS
from ..rules import RuleSet
from ..syscalls import table
from .common import load_rules_file, run_tool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--rules", metavar="RULES", help="rule file to apply")
    parser.add_argument(
        "-e", dest="expr", metavar="trace=NAMES",
        help="also show these calls: trace=unlink,openat or trace=%%file (strace groups), "
             "trace=all",
    )
    parser.add_argument("-p", dest="pids", type=int, action="append", default=[],
                        metavar="PID", help="attach to a running process (repeatable)")
    parser.add_argument("-f", action="count", default=0,
                        help="accepted for strace habits: children, threads and execs are "
                             "always followed")
    parser.add_argument("-o", dest="output", metavar="FILE", help="write the log to FILE")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument("--format", help="a log_format that overrides the rules' own")
    parser.add_argument(
        "--spin", type=_microseconds, default=SPIN_NS // 1000, metavar="USEC",
        help="while traced calls come fast, poll up to USEC µs for the next one before "
             "sleeping: faster for the command, at the cost of sctrace's CPU time "
             "(default %(default)s; 0 = always sleep)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")
    parser.set_defaults(run=trace)


def selection(expr: str | None) -> frozenset[str]:
    """The call families an -e trace=... expression names."""
    if expr is None:
        return frozenset()
    key, _, names = expr.partition("=")
    if key != "trace" or not names:
        raise SystemExit(f"sctrace: -e takes trace=NAMES, not '{expr}'")
    selected: set[str] = set()
    for name in names.split(","):
        if name == "all":
            selected |= {sc.family for sc in table()}
        elif name.startswith("%"):
            group = table().group(name[1:])
            if not group:
                known = ", ".join(f"%{g}" for g in sorted(table().groups))
                raise SystemExit(f"sctrace: unknown group '{name}'; known: {known}")
            selected |= group
        elif (sc := table().lookup(name)) is not None:
            selected.add(sc.family)
        else:
            raise SystemExit(f"sctrace: unknown system call '{name}'")
    return frozenset(selected)


def trace(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if command and args.pids:
        raise SystemExit("sctrace: give a command to run, or -p PID to attach, not both")
    if not command and not args.pids:
        raise SystemExit("sctrace: give a command to run (sctrace [options] -- CMD ARGS...), "
                         "or -p PID to attach to a running process")
    if args.format is not None:
        _check_format(args.format)
    ruleset = load_rules_file(args.rules) if args.rules else RuleSet(())
    names = selection(args.expr)
    if not args.rules and not names:
        names = selection("trace=all")
    log = _Log(args.output)
    render = Renderer(json=args.json, override=args.format)
    lines = render if args.json else _TextLines(render)

    def emit(event):
        log.write(lines(event))

    capture = _capture(ruleset, args)
    try:
        if args.pids:
            return _attach(ruleset, args.pids, emit, names, capture, args.spin * 1000)
        return run_command(ruleset, command, emit, notice, names, capture,
                           spin_ns=args.spin * 1000)
    except SpawnError as err:
        notice(f"cannot run '{command[0]}': {os.strerror(err.errno)}")
        return 127 if err.errno == 2 else 126
    except PtraceError as err:
        if err.op != "PTRACE_SEIZE":
            raise
        raise SystemExit(f"sctrace: cannot trace '{command[0]}': {_why_not_spawnable(err)}") \
            from None
    finally:
        log.close()


def notice(message: str) -> None:
    """One line on stderr, in one write: the traced command writes there too, at the
    same time.  When stderr is closed or broken there is nobody to tell."""
    if sys.stderr is None:
        return
    with contextlib.suppress(OSError):
        sys.stderr.write(f"sctrace: {message}\n")
        sys.stderr.flush()


def _check_format(fmt: str) -> None:
    """Refuse a --format with an unknown %macro, as the daemon refuses sctlog's."""
    unknown = unknown_macros(fmt)
    if unknown:
        offset, macro = unknown[0]
        raise SystemExit(f"sctrace: unknown macro {macro} in --format at offset {offset}")


def _microseconds(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("give 0 to 1000000 µs")
    return value


def _attach(ruleset: RuleSet, pids: list[int], emit, names, capture, spin_ns: int) -> int:
    """`attach`, with a process that cannot be seized told in words, not a traceback."""
    try:
        return attach(ruleset, pids, emit, notice, names, capture, spin_ns=spin_ns)
    except ProcessLookupError:
        gone = [pid for pid in pids if not os.path.exists(f"/proc/{pid}")]
        if not gone:
            raise
        raise SystemExit(f"sctrace: cannot attach to pid {gone[0]}: no such process") from None
    except PtraceError as err:
        if err.op != "PTRACE_SEIZE":
            raise
        why = _why_not_traceable(err.pid) if err.errno == errno.EPERM else None
        raise SystemExit(f"sctrace: cannot attach to pid {err.pid}: "
                         f"{why or os.strerror(err.errno)}") from None


def _why_not_spawnable(err: PtraceError) -> str:
    """Why the command sctrace started could not be seized: most often a tracer of
    sctrace's own (strace -f, gdb) that took the child first."""
    tracer = proc.tracer_pid(os.getpid())
    if err.errno == errno.EPERM and tracer:
        return (f"sctrace is itself traced by pid {tracer}, which follows its children: "
                "the command has a tracer already (one tracer per process)")
    if err.errno == errno.EPERM:
        return ("ptrace is refused here (a security module, or "
                "kernel.yama.ptrace_scope = 3)")
    return os.strerror(err.errno)


def _why_not_traceable(pid: int) -> str | None:
    """The likely reason PTRACE_SEIZE said EPERM, from what /proc shows of `pid`."""
    if pid == os.getpid():
        return "that is sctrace itself"
    try:
        if proc.state(pid) == "Z":
            return "it is a zombie (it has exited and waits for its parent to reap it)"
        if proc.kernel_thread(pid):
            return "it is a kernel thread"
        tracer = proc.tracer_pid(pid)
    except (OSError, KeyError, IndexError, ValueError):
        return None
    if tracer:
        return f"it is already traced by pid {tracer} (one tracer per process)"
    return ("not permitted (a Yama ptrace_scope setting, or a process in another user "
            "namespace?)")


class _Log:
    """sctrace's log, to -o FILE or stderr.  The traced command must never suffer for
    it: a line that cannot be written is counted, told once, and the count given at
    the end, while tracing (and the rules) go on."""

    def __init__(self, output: str | None):
        if output:
            self.fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                              0o666)
            self.name = output
        else:
            # With stderr closed from the start there is no log; -1 makes every write fail.
            self.fd = sys.stderr.fileno() if sys.stderr is not None else -1
            self.name = "stderr"
        self.owned = bool(output)
        self.lost = 0

    def write(self, line: str) -> None:
        # One write per line, unbuffered: the log is whole if we are killed.
        data = (line + "\n").encode("utf-8", "surrogateescape")
        try:
            written = os.write(self.fd, data)
            while written < len(data):  # (a short write: a full disk, a pipe, a signal)
                data = data[written:]
                written = os.write(self.fd, data)
        except OSError as err:
            if not self.lost:
                notice(f"cannot write the log to {self.name}: {err.strerror}; "
                       "lines are being lost")
            self.lost += 1

    def close(self) -> None:
        if self.owned:
            try:
                os.close(self.fd)
            except OSError as err:
                notice(f"cannot write the log to {self.name}: {err.strerror}; "
                       "its last lines may be lost")
        if self.lost:
            notice(f"{self.lost} log line{'s' if self.lost > 1 else ''} could not be "
                   f"written to {self.name}")


# An Event as the record of an EventView (`_TextLines`): its variable fields as
# expressions over the event itself, and where its constant ones are.
_FIELDS = Event._fields
_EVENT_FIELDS = {name: f"r[{_FIELDS.index(name)}]" for name in VARIABLE_FIELDS}
_ARGS, _VALUES = _FIELDS.index("args"), _FIELDS.index("values")
_SIGNATURE, _PATHS = _FIELDS.index("signature"), _FIELDS.index("paths")
_CALL = slice(_FIELDS.index("abi"), _FIELDS.index("name") + 1)
_LABELS = slice(_FIELDS.index("when"), _FIELDS.index("log_format") + 1)
assert _FIELDS[_CALL] + _FIELDS[_LABELS] == (
    "abi", "nr", "name", "when", "rule", "action", "log_format")


class _TextLines:
    """`render(event)` for text output, from a format specialised per family of events.

    A family is one rule (or the trace view) on one call: what its events share is
    printed once (`LogFormat.for_view`, as the daemon prints its records), the rest
    straight from the event, which serves as the view's record.  Views carry no
    resolved paths, so an event with any (a format showing %path) goes to `render`.
    """

    def __init__(self, render: Renderer):
        self.render = render
        # (abi, nr, name, when, rule, action, log_format) -> (signature, line maker)
        self._families: dict[tuple, tuple] = {}

    def __call__(self, event: Event) -> str:
        if event[_PATHS]:
            return self.render(event)
        # (abi, nr, name) + (when, rule, action, log_format): the family's constants, but
        # the signature, whose hash would cost more than the line; kept and compared instead.
        key = event[_CALL] + event[_LABELS]
        family = self._families.get(key)
        if family is None or family[0] is not event[_SIGNATURE]:
            family = self._families[key] = self._family(event)
        return family[1](event)

    def _family(self, event: Event) -> tuple:
        signature = event.signature
        count = len(signature)
        if len(self._families) > 4096:  # families are a handful: do not grow forever
            self._families.clear()
        if len(event.args) != count or len(event.values) != count:
            # (Never from the engine, which decodes every argument: lengths depend on
            # the call and the rule alone, so they hold for the whole family.)
            return signature, self.render
        try:
            view = EventView(
                abi=event.abi, nr=event.nr, name=event.name, signature=signature,
                when=event.when, rule=event.rule, action=event.action,
                log_format=event.log_format,
                args=[f"r[{_ARGS}][{i}]" for i in range(count)],
                values=[f"r[{_VALUES}][{i}]" for i in range(count)],
                fields=_EVENT_FIELDS, namespace={})
        except ValueError:
            return signature, self.render
        return signature, self.render.for_view(view)


_CAPTURED_BY = {"ids": {"uid", "euid", "suid", "gid", "egid", "sgid"}, "ppid": {"ppid"},
                "cwd": {"cwd"}, "paths": {"path"}}


def _capture(ruleset: RuleSet, args: argparse.Namespace) -> set[str]:
    """The costly event fields some output shows (JSON shows everything)."""
    if args.json:
        return set(_CAPTURED_BY)
    formats = [args.format] if args.format else [
        rule.action.log_format for rule in ruleset.rules if rule.action.log_format]
    used = macros_used(formats)
    return {field for field, macros in _CAPTURED_BY.items() if macros & used}


def main(argv: list[str] | None = None) -> int:
    return run_tool("sctrace", __doc__, add_arguments, argv)


if __name__ == "__main__":
    from .launch import exit_now

    exit_now(main(), "sctrace")
