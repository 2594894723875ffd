"""Event families described once, so outputs can work straight from an engine's records.

An engine whose records share one fixed layout (the system-wide ring buffer)
describes each family of events -- one rule firing on one call -- as an
`EventView`: what every event of the family shares (call, signature, rule,
action...) as constants, and the rest as Python expressions over the record
tuple `r`.  From a view, `make` builds the `Event` of a record (`build`, the
items of a list of records, in one comprehension), and the formatting layer
compiles a log format *for the view* (`LogFormat.for_view`), so the daemon
renders a line from a record with one generated function and no `Event` in
between.  Views know nothing of where the expressions come from.

`Records` is a batch as an engine read it: notices and events, and records
not yet turned into events, each found with its view by the record's key fields.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from operator import countOf, itemgetter
from typing import Any

from ..syscalls import Arg
from .event import NO_PATHS, Event, StreamItem, Undecided

# Event fields an engine gives as expressions over the record (the others are the
# view's constants, `args`/`values` per argument, and no paths).
VARIABLE_FIELDS = ("pid", "tid", "ppid", "uid", "euid", "suid", "gid", "egid", "sgid",
                   "comm", "timestamp_ns", "cwd", "retval")
CONSTANT_FIELDS = ("abi", "nr", "name", "signature", "when", "rule", "action", "log_format")
_LITERAL_TYPES = (str, int, type(None))  # what repr() writes as source giving an equal value


class EventView:
    """One family of events: constants, and expressions over the record `r` for the rest.

    `args` and `values` are one expression per argument of `signature`;
    `fields` maps each name of `VARIABLE_FIELDS` to an expression (missing:
    None); `namespace` holds the names those expressions use.  Expressions give
    the types `Event` documents (the ids are ints, never None).  An
    `undecided_index` (the rule's index) makes every record of the view an
    `Undecided` notice (giving `undecided_reason`) rather than an event; `item`
    and `build` give what a record stands for, `make` always its Event.

    Consumers keep what they compile for a view in their own weak-keyed maps,
    so it goes when a replaced rule set's views do.
    """

    def __init__(self, *, abi: str, nr: int, name: str, signature: tuple[Arg, ...],
                 when: str, rule: str | None, action: str | None, log_format: str | None,
                 args: Sequence[str], values: Sequence[str], fields: Mapping[str, str],
                 namespace: Mapping[str, Any], undecided_index: int | None = None,
                 undecided_reason: str = ""):
        if len(args) != len(signature) or len(values) != len(signature):
            raise ValueError("a view needs one args and one values expression per argument")
        unknown = set(fields) - set(VARIABLE_FIELDS)
        if unknown:
            raise ValueError(f"not variable Event fields: {sorted(unknown)}")
        self.abi, self.nr, self.name, self.signature = abi, nr, name, signature
        self.when, self.rule, self.action, self.log_format = when, rule, action, log_format
        self.args, self.values = tuple(args), tuple(values)
        self.fields = {f: fields.get(f, "None") for f in VARIABLE_FIELDS}
        self.namespace = dict(namespace)
        self.undecided_index = undecided_index
        item = event = self.event_expr()
        self.make: Callable[[tuple], Event] = self.compile("make", event)
        self.item: Callable[[tuple], StreamItem] = self.make
        if undecided_index is not None:
            make = self.make
            self.item = lambda r: Undecided(rule, undecided_index, make(r), undecided_reason)
            item = (f"_Undecided(_view_rule, {undecided_index!r}, {event}, "
                    f"{undecided_reason!r})")
        # No call per record: in a batch of one view, the call cost ~10% of the Event.
        self.build: Callable[[list[tuple]], list[StreamItem]] = self._compile(
            "build", f"def f(rows):\n    return [{item} for r in rows]\n",
            {"_Undecided": Undecided})

    def expression(self, field: str) -> str:
        """Source of an expression over `r` giving `field` (a constant by its bound name)."""
        if field in CONSTANT_FIELDS:
            return f"_view_{field}"
        if field in ("args", "values"):
            return "(" + "".join(f"{x}, " for x in getattr(self, field)) + ")"
        if field == "paths":
            return "_NO_PATHS"
        return self.fields[field]

    def event_expr(self) -> str:
        """Source of the `Event` of record `r` (one tuple built, no __init__ call).

        Constants that are strings, ints or None are written as literals: a literal
        loads faster than a name, and an Event has several of them.
        """
        def source(field: str) -> str:
            if field in CONSTANT_FIELDS and type(getattr(self, field)) in _LITERAL_TYPES:
                return repr(getattr(self, field))
            return self.expression(field)
        return "_tuple_new(_Event, (" + ", ".join(map(source, Event._fields)) + "))"

    def names(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What generated code over this view's records sees: the engine's names, the
        view's constants (`_view_<field>`), and `extra` (a consumer's helpers).

        A name `extra` shares with the engine's is refused: one of them would be
        silently shadowed.
        """
        extra = extra or {}
        clash = set(extra) & set(self.namespace)
        if clash:
            raise ValueError(f"names both the engine and a consumer define: {sorted(clash)}")
        return {**self.namespace, **extra, "_Event": Event, "_tuple_new": tuple.__new__,
                "_NO_PATHS": NO_PATHS,
                **{f"_view_{f}": getattr(self, f) for f in CONSTANT_FIELDS}}

    def compile(self, what: str, body: str, prelude: str = "",
                extra: Mapping[str, Any] | None = None) -> Callable[[tuple], Any]:
        """`def f(r): <prelude> return <body>` over `names(extra)`, compiled once."""
        return self._compile(what, f"def f(r):\n{prelude}    return {body}\n", extra)

    def _compile(self, what: str, source: str,
                 extra: Mapping[str, Any] | None = None) -> Callable[..., Any]:
        namespace = self.names(extra)
        exec(compile(source, f"<{what} for {self.rule!r}/{self.name}>", "exec"), namespace)
        return namespace.pop("f")  # the function keeps its globals, not the reverse: no cycle

    def __repr__(self) -> str:
        kind = " undecided" if self.undecided_index is not None else ""
        return f"<EventView {self.rule}/{self.abi}:{self.name}{kind}>"


class Template:
    """One generated f-string over a record: literal text and expressions.

    Each expression is computed into a local first (in 3.11 an f-string's
    expressions may hold no quotes or backslashes); literal text is escaped
    for the f-string's source.  `body()` and `prelude()` go to `EventView.compile`.
    """

    def __init__(self):
        self._pieces: list[str] = []
        self._prelude: list[str] = []

    def text(self, text: str) -> None:
        """Literal text, any at all (formats print only ASCII; nothing here relies on it)."""
        self._pieces.append(text.encode("unicode_escape").decode("ascii").replace("'", "\\'")
                            .replace("{", "{{").replace("}", "}}"))

    def expr(self, source: str) -> None:
        """An expression over `r` whose value is printed with str()."""
        local = f"_{len(self._prelude)}"
        self._prelude.append(f"    {local} = {source}\n")
        self._pieces.append(f"{{{local}}}")

    def first(self, statement: str) -> None:
        """A statement run before the expressions (e.g. building the whole Event)."""
        self._prelude.insert(0, f"    {statement}\n")

    def body(self) -> str:
        """The f-string expression, for `return`."""
        return "f'" + "".join(self._pieces) + "'"

    def prelude(self) -> str:
        """The statements computing the locals, indented for a function body."""
        return "".join(self._prelude)


class Memo(dict):
    """`function(value)` kept for the few distinct values a stream repeats (command
    names), so generated code computes each once; bounded by starting over."""

    def __init__(self, function: Callable[[Any], Any], size: int = 4096):
        super().__init__()
        self._function, self._size = function, size

    def __missing__(self, value):
        if len(self) >= self._size:
            self.clear()
        result = self[value] = self._function(value)
        return result


class Records:
    """A batch of an engine's stream, in order: `before`, the records `rows`, `after`.

    `before` and `after` are `StreamItem`s already (notices, events decoded
    earlier); each record's view is `views[key(record)]`, where `key` gives the
    record's `key_fields` (a tuple of them, or the value of a single one).
    """

    __slots__ = ("after", "before", "key", "key_fields", "rows", "views")

    def __init__(self, rows: list[tuple], key_fields: Sequence[int],
                 views: Mapping[Hashable, EventView], before: Sequence[StreamItem] = (),
                 after: Sequence[StreamItem] = ()):
        self.rows, self.key_fields, self.views = rows, tuple(key_fields), views
        self.key: Callable[[tuple], Hashable] = itemgetter(*self.key_fields)
        self.before, self.after = list(before), list(after)

    def __len__(self) -> int:
        return len(self.before) + len(self.rows) + len(self.after)

    def stream_items(self) -> list[StreamItem]:
        """Every item as an Event or a notice."""
        return [*self.before, *self.decoded(), *self.after]

    def decoded(self) -> list[StreamItem]:
        """The records as Events (or Undecided notices), a run at a time."""
        out: list[StreamItem] = []
        for view, rows in self.runs():
            out += view.build(rows)
        return out

    def runs(self) -> list[tuple[EventView, list[tuple]]]:
        """The records in order, as runs of consecutive records of one view: a hot loop
        makes one run, which consumers map over with no Python loop per record."""
        rows, views, key = self.rows, self.views, self.key
        if not rows:
            return []
        if self._one_key():
            return [(views[key(rows[0])], rows)]
        out: list[tuple[EventView, list[tuple]]] = []
        last = None
        for k, row in zip(map(key, rows), rows, strict=True):
            if k != last:
                out.append((views[k], []))
                last = k
            out[-1][1].append(row)
        return out

    def _one_key(self) -> bool:
        """True when every record has the first one's key, checked a field at a time in
        C: making every record's key tuple cost twice as much."""
        rows = self.rows
        first, count = rows[0], len(rows)
        return (self.key(rows[-1]) == self.key(first)
                and all(countOf(map(itemgetter(i), rows), first[i]) == count
                        for i in self.key_fields))

    def last(self, count: int) -> Records:
        """The last `count` items, still undecoded (what a history keeps)."""
        if count >= len(self):
            return self
        after = self.after[-count:] if count else []
        rows = self.rows[-(count - len(after)):] if count > len(after) else []
        left = count - len(after) - len(rows)
        before = self.before[-left:] if left else []
        return Records(rows, self.key_fields, self.views, before, after)

    def tail(self, count: int) -> list[StreamItem]:
        """The last `count` items as Events or notices (what `sctlog -n` replays)."""
        return self.last(max(count, 0)).stream_items()
