"""`log_format` rendering and the value printers behind `%params` and `%args`.

A format string is compiled once (`LogFormat`) into a generated function that
concatenates literal text and field values; the daemon renders hundreds of
thousands of lines a second, so nothing is parsed per event.

A macro is `%` and a run of letters, so `%sid_%sname` is `%sid`, `_`,
`%sname` and `%params` is never `%param` + `s` (the rule validator, in
`rules.macros`, reads formats the same way):

    %ruleid %sid %sname %params %pid %uid %euid %suid %gid %egid %sgid
    %comm %retval %cwd                          the original's (reference §5)
    %ppid %tid %abi %when %action               the event's other fields
    %time       ISO-8601 with microseconds and UTC offset, local time by
                default: 2026-11-26T15:51:07.123456+01:00
    %args       the arguments strace-style: O_RDONLY|O_CLOEXEC, 0755, AT_*, NULL
    %path       the resolved absolute path of the first path argument
    %barecomm   the command name without quotes (the default format's `[%barecomm]`);
                inside `[...]` of the format, a `]` in it prints as `\\x5d`
    %%          a literal percent sign

`%comm`, `%cwd`, `%path` and string arguments print in double quotes, as the
article's `"rm" : "./dummy" delete by 0 --> 0`; one cut (at `max_string`, or a
`Cut` of which the engine carried only the start) ends in `...` after its quotes,
`"/very/long/pa"...`.  The original manual's default format shows the bare
name (`876[mkdir]`); rather than give `%comm` two meanings, the default format
uses `%barecomm`.  A process names itself (prctl(PR_SET_NAME), 15 bytes), and
a name must not close the brackets it is printed in: a `%barecomm` inside
`[...]` of the format (after more `[` than `]` of its literal text) also prints
`]` as `\\x5d`, so that in the default format the first `]` after the pid ends
the name, and a command called `x]: 87_unlink` cannot make its line read as
another call (`876[x\\x5d: 87_unlink]: 83_mkdir(...)`).  (`\\` prints as `\\\\`
already, so the escape cannot be forged either.)  Other names print as the
original's did, byte for byte, and elsewhere `%barecomm` is the name escaped as
any value.  Unknown values (`%retval` of
a before rule, `%cwd` or `%path` not captured, no rule name) print as `?`.
An unknown `%word` is left as it is; `unknown_macros` lets the rule validator
reject it.  `%params` is the original's: integers in signed decimal of their
C width (i386 longs 32-bit, so the article's `-1073748200`), `<NULL>`.

Security: the tool runs as root and prints attacker-chosen bytes.  Every
rendered line is printable ASCII: in values, bytes outside 0x20-0x7e and `"`
and `\\` print as `\\n \\t \\r \\" \\\\` or `\\xHH` (always two hex digits;
UTF-8 is escaped byte by byte, so no bidi or look-alike characters reach a
terminal); in the format's literal text, control and non-ASCII bytes are
escaped the same way.  No file name can forge a line or a terminal escape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from ..syscalls import Arg, ArgKind
from ..syscalls.constants import ADDRESS_FAMILIES, AT_FDCWD, AT_FLAGS, MODES, OPEN_FLAGS
from .event import ArgValue, Cut, Event, SockAddr, Unreadable
from .view import EventView, Memo, Template

if TYPE_CHECKING:
    from datetime import tzinfo

DEFAULT_FORMAT = "syscall: %pid[%barecomm]: %sid_%sname(%params) (rule %ruleid)"

# ---------------------------------------------------------------- escaping

_SPECIAL = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
_VALUE_TABLE = {
    b: _SPECIAL.get(b, chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}") for b in range(256)
}
# Literal format text keeps its quotes and backslashes: root wrote them on purpose.
_LITERAL_TABLE = {**_VALUE_TABLE, 0x22: '"', 0x5C: "\\"}


_needs_escape = re.compile(rb'[^\x20\x21\x23-\x5b\x5d-\x7e]').search


def escape(data: bytes) -> str:
    """`data` as printable ASCII, with `\\n \\t \\r \\" \\\\ \\xHH` escapes."""
    if _needs_escape(data) is None:
        return data.decode("ascii")
    return data.decode("latin-1").translate(_VALUE_TABLE)


# A name inside brackets (`[%barecomm]`): `]` as well, so that the name cannot close them.
_BRACKETED_TABLE = {**_VALUE_TABLE, 0x5D: "\\x5d"}
_bracketed_needs_escape = re.compile(rb'[^\x20\x21\x23-\x5b\x5e-\x7e]').search


def escape_bracketed(data: bytes) -> str:
    """`data` escaped as `escape` does, and `]` as `\\x5d`: printed between brackets
    (`876[mkdir]`), no value can close them."""
    if _bracketed_needs_escape(data) is None:
        return data.decode("ascii")
    return data.decode("latin-1").translate(_BRACKETED_TABLE)


def quote(data: bytes, limit: int | None = None, more: bool = False) -> str:
    """`data` escaped in double quotes; beyond `limit` bytes (or if `more`) cut, then `...`."""
    if limit is not None and len(data) > limit:
        data, more = data[:limit], True
    text = data.decode("ascii") if _needs_escape(data) is None else escape(data)
    return f'"{text}"...' if more else f'"{text}"'


def _utf8(text: str) -> bytes:
    """Text as bytes; `surrogateescape`-decoded bytes come back as they were."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that did not come from bytes
        return text.encode("utf-8", "surrogatepass")


def _escape_literal(text: str) -> str:
    return _utf8(text).decode("latin-1").translate(_LITERAL_TABLE)


# ---------------------------------------------------------------- value printers


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of a value to print; `None` means no limit.

    `max_string` cuts strings and buffers (not paths: a security log wants the
    whole name), `max_array` cuts argv/envp, `max_line` cuts the whole line.
    1024 is the classic syslog record size.
    """

    max_string: int | None = 32
    max_array: int | None = 32
    max_line: int | None = 1024

    def __post_init__(self):
        if (self.max_string or 0) < 0 or (self.max_array or 0) < 0:
            raise ValueError("max_string and max_array must not be negative")
        if self.max_line is not None and self.max_line < 3:
            raise ValueError("max_line must leave room for the closing '...'")


# A printer gets the value, its Arg, its width in bits for the caller's ABI,
# the event (for length arguments and the call's name) and the limits.
Printer = Callable[[ArgValue, Arg, int, Event, Limits], str]


def _bits(arg: Arg) -> int:
    """Width an integer prints at: its C type's (i386 longs and pointers are 32-bit).

    Narrower types are promoted to int as printf would: umode_t 0100644 is 33188.
    """
    return max(arg.width, 4) * 8


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _other(value: ArgValue, limits: Limits, null: str) -> str:
    """A value of a type its kind does not expect (e.g. an unread pointer)."""
    if value is None:
        return null
    if isinstance(value, Unreadable):
        return f"0x{value.address:x}"
    if isinstance(value, bytes):
        return quote(value, limits.max_string, value.__class__ is Cut)
    if isinstance(value, tuple):
        return _strarray(value, limits)
    if isinstance(value, SockAddr):
        return _sockaddr(value)
    return str(value)


def _strarray(items: tuple[bytes, ...], limits: Limits) -> str:
    cut = limits.max_array is not None and len(items) > limits.max_array
    shown = items[: limits.max_array] if cut else items
    body = ", ".join(quote(s, limits.max_string, s.__class__ is Cut) for s in shown)
    return f"[{body}, ...]" if cut else f"[{body}]"


_FAMILY_NAMES = {}
for _name, _num in ADDRESS_FAMILIES.items():
    _FAMILY_NAMES.setdefault(_num, _name)  # AF_UNIX before its alias AF_LOCAL


def _sockaddr(sa: SockAddr) -> str:
    family = _FAMILY_NAMES.get(sa.family, str(sa.family))
    if sa.address is None:
        return f"{{{family}}}"
    if sa.family == ADDRESS_FAMILIES["AF_UNIX"]:
        return f"{{{family}, {quote(_utf8(sa.address))}}}"
    host = escape(_utf8(sa.address))
    if ":" in host:
        host = f"[{host}]"
    return f"{{{family}, {host}}}" if sa.port is None else f"{{{family}, {host}:{sa.port}}}"


def _make_printers(null: str, symbolic: bool) -> dict[ArgKind, Printer]:
    """One printer per kind: faithful (`%params`) or strace-like (`%args`)."""

    # A Cut (only the start of the value reached us) prints `...` after its quotes.
    def path(v, a, bits, e, lim):
        if v.__class__ is bytes:
            return quote(v)
        return quote(v, None, True) if v.__class__ is Cut else _other(v, lim, null)

    def string(v, a, bits, e, lim):  # (a Cut goes through _other, which marks it)
        return quote(v, lim.max_string) if v.__class__ is bytes else _other(v, lim, null)

    def buffer(v, a, bits, e, lim):
        if v.__class__ is not bytes:
            return _other(v, lim, null)
        i = a.length_arg
        more = i is not None and i < len(e.args) and e.args[i] > len(v)
        return quote(v, lim.max_string, more)

    def strarray(v, a, bits, e, lim):
        return _strarray(v, lim) if v.__class__ is tuple else _other(v, lim, null)

    def sockaddr(v, a, bits, e, lim):
        return _sockaddr(v) if v.__class__ is SockAddr else pointer(v, a, bits, e, lim)

    def signed(v, a, bits, e, lim):
        if v.__class__ is not int:
            return _other(v, lim, null)
        v &= (1 << bits) - 1
        return str(v - (1 << bits) if v >> (bits - 1) else v)

    def unsigned(v, a, bits, e, lim):
        return str(v & ((1 << bits) - 1)) if v.__class__ is int else _other(v, lim, null)

    def dirfd(v, a, bits, e, lim):
        if v.__class__ is int and _signed(v, 32) == AT_FDCWD:
            return "AT_FDCWD"
        return signed(v, a, bits, e, lim)

    def pointer(v, a, bits, e, lim):
        if v == 0:
            return null
        if v.__class__ is not int:
            return _other(v, lim, null)
        return f"0x{v & ((1 << bits) - 1):x}" if symbolic else signed(v, a, bits, e, lim)

    def open_flags(v, a, bits, e, lim):
        return _open_flags(v) if v.__class__ is int else _other(v, lim, null)

    def at_flags(v, a, bits, e, lim):
        return _at_flags(v, e.name) if v.__class__ is int else _other(v, lim, null)

    def mode(v, a, bits, e, lim):
        return _mode(v) if v.__class__ is int else _other(v, lim, null)

    printers = {
        ArgKind.PATH: path, ArgKind.STRING: string, ArgKind.BUFFER: buffer,
        ArgKind.STRARRAY: strarray, ArgKind.SOCKADDR: sockaddr, ArgKind.PTR: pointer,
        ArgKind.INT: signed, ArgKind.FD: signed, ArgKind.DIRFD: dirfd,
        ArgKind.UINT: signed, ArgKind.OPEN_FLAGS: signed, ArgKind.AT_FLAGS: signed,
        ArgKind.MODE: signed,
    }
    if symbolic:
        printers.update({ArgKind.UINT: unsigned, ArgKind.OPEN_FLAGS: open_flags,
                         ArgKind.AT_FLAGS: at_flags, ArgKind.MODE: mode})
    return printers


def _flag_names(value: int, flags: list[tuple[str, int]]) -> list[str]:
    """Names of the flags set in `value` (multi-bit flags first), then any rest in hex."""
    names = []
    for name, bits in flags:
        if value & bits == bits:
            names.append(name)
            value &= ~bits
    if value:
        names.append(f"0x{value:x}")
    return names


_ACCESS_MODES = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR", 3: "O_ACCMODE"}
_OPEN_BITS = sorted(
    ((n, v) for n, v in OPEN_FLAGS.items() if v & ~3 and n != "O_ACCMODE"),
    key=lambda nv: -nv[1].bit_count(),
)
_AT_BITS = [(n, v) for n, v in AT_FLAGS.items() if n != "AT_EACCESS"]
_AT_BITS_ACCESS = [(n, v) for n, v in AT_FLAGS.items() if n != "AT_REMOVEDIR"]
_FILE_TYPES = {v: n for n, v in MODES.items() if n.startswith("S_IF") and n != "S_IFMT"}


def _open_flags(value: int) -> str:
    value &= 0xFFFFFFFF
    return "|".join([_ACCESS_MODES[value & 3], *_flag_names(value & ~3, _OPEN_BITS)])


def _at_flags(value: int, syscall: str) -> str:
    bits = _AT_BITS_ACCESS if syscall.startswith("faccessat") else _AT_BITS
    return "|".join(_flag_names(value & 0xFFFFFFFF, bits)) or "0"


def _mode(value: int) -> str:
    value &= 0xFFFF
    kind = _FILE_TYPES.get(value & MODES["S_IFMT"])
    if kind:
        return f"{kind}|{_octal(value & 0o7777)}"
    return _octal(value)


def _octal(value: int) -> str:
    """C's `%#03o`, as strace prints modes: 0755, 000."""
    return f"0{value:o}" if value else "000"


PARAMS_PRINTERS: dict[ArgKind, Printer] = _make_printers("<NULL>", symbolic=False)
ARGS_PRINTERS: dict[ArgKind, Printer] = _make_printers("NULL", symbolic=True)


class _ArgumentPrinter:
    """Prints an event's arguments with one printer table.

    The (index, arg, bits, printer) plan of each signature is built once and
    found by the signature's identity: engines pass the table's own tuples,
    so this is a dict lookup per event.
    """

    __slots__ = ("_plans", "_printers")

    def __init__(self, printers: dict[ArgKind, Printer]):
        self._printers = printers
        self._plans: dict[int, tuple[tuple[Arg, ...], tuple]] = {}

    def _plan(self, sig: tuple[Arg, ...]) -> tuple:
        plan = self._plans.get(id(sig))
        if plan is None or plan[0] is not sig:
            if len(self._plans) > 4096:  # signatures built per event: do not grow forever
                self._plans.clear()
            steps = tuple((i, a, _bits(a), self._printers[a.kind]) for i, a in enumerate(sig))
            plan = self._plans[id(sig)] = (sig, steps)
        return plan[1]

    def all(self, event: Event, limits: Limits) -> str:
        values = event.values
        if len(values) < len(event.args):  # not decoded: the raw values
            values = values + event.args[len(values):]
        plan = self._plan(event.signature)
        return ", ".join([p(values[i], a, bits, event, limits) for i, a, bits, p in plan])

    def one(self, event: Event, index: int, limits: Limits) -> str:
        if index >= len(event.signature):
            return "?"
        _i, arg, bits, printer = self._plan(event.signature)[index]
        value = event.values[index] if index < len(event.values) else event.args[index]
        return printer(value, arg, bits, event, limits)


_PARAMS = _ArgumentPrinter(PARAMS_PRINTERS)
_ARGS = _ArgumentPrinter(ARGS_PRINTERS)


def format_params(event: Event, limits: Limits = Limits(), symbolic: bool = False) -> str:
    """All arguments, `, `-separated: `%params` (`"foo", 509`), or `%args` if `symbolic`."""
    return (_ARGS if symbolic else _PARAMS).all(event, limits)


def format_value(event: Event, index: int, limits: Limits = Limits(),
                 symbolic: bool = False) -> str:
    """Argument `index` (0-based) of `event` as in `format_params`; `?` if there is none."""
    return (_ARGS if symbolic else _PARAMS).one(event, index, limits)


# ---------------------------------------------------------------- macros


def _first_path(event: Event) -> str:
    for i, arg in enumerate(event.signature):
        if arg.kind is ArgKind.PATH and i in event.paths:
            return quote(event.paths[i])
    return "?"


class _Clock:
    """`%time`: the date/second part is computed once per second, not per line."""

    __slots__ = ("_head", "_second", "_tail", "_tz")

    def __init__(self, tz: tzinfo | None):
        self._tz = tz
        self._second = None
        self._head = self._tail = ""

    def __call__(self, timestamp_ns: int) -> str:
        second, ns = divmod(timestamp_ns, 1_000_000_000)
        if second != self._second:
            from datetime import UTC, datetime  # once a second; not at start-up

            when = datetime.fromtimestamp(second, self._tz or UTC)
            if self._tz is None:
                when = when.astimezone()
            head, tail = when.isoformat(timespec="seconds")[:19], when.strftime("%z")
            self._head, self._tail = head, f"{tail[:3]}:{tail[3:]}"
            self._second = second
        return f"{self._head}.{ns // 1000:06d}{self._tail}"


# Macro name -> expression over the event `e` (helpers bound by LogFormat).
# Even the engine-set names go through _esc_str: the line is printable ASCII
# whatever an engine puts in an event.
_FIELDS = {
    "ruleid": "_esc_str(e.rule)", "sid": "str(e.nr)", "sname": "_esc_str(e.name)",
    "params": "_params(e, _lim)", "args": "_args(e, _lim)",
    "pid": "str(e.pid)", "tid": "str(e.tid)", "ppid": "str(e.ppid)",
    "uid": "str(e.uid)", "euid": "str(e.euid)", "suid": "str(e.suid)",
    "gid": "str(e.gid)", "egid": "str(e.egid)", "sgid": "str(e.sgid)",
    "comm": "_quote(e.comm)", "barecomm": "_escape(e.comm)",
    "retval": "'?' if e.retval is None else str(e.retval)",
    "cwd": "'?' if e.cwd is None else _quote(e.cwd)",
    "path": "_first_path(e)", "time": "_clock(e.timestamp_ns)",
    "abi": "_esc_str(e.abi)", "when": "_esc_str(e.when)", "action": "_esc_str(e.action)",
}
LOG_MACROS: frozenset[str] = frozenset(_FIELDS)
# `%barecomm` inside `[...]` of a format; not a macro name (those are letters only).
_BRACKETED_COMM = "[barecomm]"
_ALL_FIELDS = {**_FIELDS, _BRACKETED_COMM: "_escape_bracketed(e.comm)"}

_TOKEN = re.compile(r"%(%|[A-Za-z]+)")


def macros_used(formats) -> frozenset[str]:
    """The macro names the given log formats print (without `%`)."""
    return frozenset(m.group(1) for fmt in formats for m in _TOKEN.finditer(fmt))


def unknown_macros(fmt: str) -> list[tuple[int, str]]:
    """(offset, `%word`) of each `%word` that is not a macro, for the rule validator."""
    return [(m.start(), m.group()) for m in _TOKEN.finditer(fmt)
            if m.group(1) != "%" and m.group(1) not in _FIELDS]


def _esc_str(text: str | None) -> str:
    """A name from the rule file or the engine: printed as is when it is safe."""
    if text is None:
        return "?"
    return text if text.isascii() and text.isprintable() else _escape_literal(text)


def _cut(line: str, limit: int) -> str:
    """`line` cut to `limit` characters ending in `...`, never inside an escape.

    Escapes are at most 4 characters (`\\xHH`) and contain no backslash after
    the first, so only the last backslash before the cut can begin a broken one.
    """
    keep = limit - 3
    start = line.rfind("\\", max(keep - 3, 0), keep)
    if start >= 0 and (start - len(line[:start].rstrip("\\"))) % 2 == 0:
        size = 4 if line[start + 1] == "x" else 2
        if start + size > keep:
            keep = start
    return line[:keep] + "..."


# Specialising a format for a view rewrites the _FIELDS expressions above as source: they
# name the event only as `e.<field>`, and `str(e.<field>)` is an int the f-string formats.
_EVENT_FIELD = re.compile(r"\be\.(\w+)")
_STR_OF_FIELD = re.compile(r"str\((e\.\w+)\)")


def _on_view(expr: str, view: EventView) -> str:
    """A macro's expression over the event `e` rewritten over the view's record `r`."""
    return _EVENT_FIELD.sub(lambda m: f"({view.expression(m.group(1))})", expr)


# Macros whose inputs repeat from one event to the next: remembered when specialised
# (what they print depends on the bytes only, not on the format or its limits).
_VIEW_FIELDS = {**_ALL_FIELDS, "comm": "_quoted[e.comm]", "barecomm": "_escaped[e.comm]",
                _BRACKETED_COMM: "_escaped_bracketed[e.comm]"}
_QUOTED, _ESCAPED, _ESCAPED_BRACKETED = Memo(quote), Memo(escape), Memo(escape_bracketed)


def _brackets_open(opened: int, text: str) -> int:
    """Brackets still open after `text`: a `]` with none open closes nothing (so that
    `] %pid[%barecomm]` still has the name inside a pair)."""
    for char in text:
        if char == "[":
            opened += 1
        elif char == "]" and opened:
            opened -= 1
    return opened


class LogFormat:
    """A log_format string compiled once into a renderer: `LogFormat(fmt)(event) -> str`.

    The generated function (`render`, for hot loops; `source` shows it) is one
    concatenation of literals and field expressions.  The line is cut at
    `limits.max_line` characters, ending in `...`.  `tz` is the zone of
    `%time`, local time when None.  `for_view` specialises the format for one
    family of engine records (see `events.view`).
    """

    def __init__(self, fmt: str = DEFAULT_FORMAT, limits: Limits = Limits(),
                 tz: tzinfo | None = None):
        self.format = fmt
        self.limits = limits
        # (True, macro name) or (False, literal text already escaped), in order.
        self._parts: list[tuple[bool, str]] = []
        pos = 0
        opened = 0  # `[` less `]` in the literal text so far
        for m in _TOKEN.finditer(fmt):
            literal, name = fmt[pos:m.start()], m.group(1)
            if name == "%":
                literal += "%"
            elif name not in _FIELDS:  # left as written; the validator rejects it
                literal += m.group()
            if literal:
                self._parts.append((False, _escape_literal(literal)))
                opened = _brackets_open(opened, literal)
            if name == "barecomm" and opened > 0:
                self._parts.append((True, _BRACKETED_COMM))
            elif name in _FIELDS:
                self._parts.append((True, name))
            pos = m.end()
        if fmt[pos:]:
            self._parts.append((False, _escape_literal(fmt[pos:])))
        self._namespace = {
            "_esc_str": _esc_str, "_params": _PARAMS.all, "_args": _ARGS.all,
            "_quote": quote, "_escape": escape, "_escape_bracketed": escape_bracketed,
            "_first_path": _first_path,
            "_clock": _Clock(tz), "_lim": limits, "_cut": _cut,
            "_params_by_kind": {k.name: p for k, p in PARAMS_PRINTERS.items()},
            "_args_by_kind": {k.name: p for k, p in ARGS_PRINTERS.items()},
        }
        self._views: WeakKeyDictionary[EventView, Callable[[tuple], str]] = \
            WeakKeyDictionary()  # what for_view compiled; goes with the view
        body = " + ".join(repr(text) if not macro else f"({_ALL_FIELDS[text]})"
                          for macro, text in self._parts)
        self.source = f"def render(e):\n    return {self._cut_line(body or repr(''))}\n"
        namespace = dict(self._namespace)
        exec(compile(self.source, f"<log_format {fmt!r}>", "exec"), namespace)
        self.render: Callable[[Event], str] = namespace.pop("render")  # no cycle

    def _cut_line(self, body: str) -> str:
        """The expression of the whole line, cut at `limits.max_line`."""
        n = self.limits.max_line
        return body if n is None else f"_cut(_s, {n}) if len(_s := {body}) > {n} else _s"

    def __call__(self, event: Event) -> str:
        return self.render(event)

    def for_view(self, view: EventView) -> Callable[[tuple], str]:
        """A renderer of view's records `r`, printing what `self(view.make(r))` would.

        The view's constants (call, rule, a `before` rule's `?` retval...) are
        printed once, here; fields become the view's expressions, `%params`
        one printer call per argument.  What needs the whole event (`%args`
        on a buffer, `%path`) gets it from `view.make`.
        """
        renderer = self._views.get(view)
        if renderer is not None:
            return renderer
        extra = {**self._namespace, "_make": view.make, "_quoted": _QUOTED,
                 "_escaped": _ESCAPED, "_escaped_bracketed": _ESCAPED_BRACKETED}
        names = view.names(extra)
        # One f-string of literal text and locals: no intermediate strings.
        line, whole_event = Template(), False
        for macro, text in self._parts:
            if not macro:
                line.text(text)
                continue
            field = _VIEW_FIELDS[text]
            expr = self._view_params(view, text) or _on_view(field, view)
            used = compile(expr, "<macro>", "eval").co_names
            whole_event |= "e" in used
            if "r" not in used and "e" not in used:  # nothing varies: print it now
                line.text(eval(expr, dict(names)))
                continue
            plain = _STR_OF_FIELD.fullmatch(field)  # str(int): the f-string formats it
            line.expr(_on_view(plain[1], view) if plain else expr)
        if whole_event:
            line.first("e = _make(r)")
        renderer = view.compile(f"log_format {self.format!r}", self._cut_line(line.body()),
                                line.prelude(), extra)
        self._views[view] = renderer
        return renderer

    def _view_params(self, view: EventView, macro: str) -> str | None:
        """`%params`/`%args` as one printer call per argument, when no printer needs
        the whole event (buffers look at their length argument, AT flags at the call)."""
        if macro not in ("params", "args"):
            return None
        symbolic = macro == "args"
        needs_event = {ArgKind.BUFFER, ArgKind.AT_FLAGS} if symbolic else {ArgKind.BUFFER}
        if any(a.kind in needs_event for a in view.signature):
            return None
        table = "_args_by_kind" if symbolic else "_params_by_kind"
        calls = [f"{table}[{a.kind.name!r}]({v}, _view_signature[{i}], {_bits(a)}, None, _lim)"
                 for i, (a, v) in enumerate(zip(view.signature, view.values, strict=True))]
        return " + ', ' + ".join(calls) if calls else "''"

    def __repr__(self) -> str:
        return f"LogFormat({self.format!r})"
