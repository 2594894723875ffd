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

import ast
import operator
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from itertools import repeat
from operator import countOf, itemgetter
from typing import Any, Protocol

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
        # What an Event of this view stands for: itself, or the notice holding it.
        self._undecided: Callable[[Event], Undecided] | None = None
        if undecided_index is not None:
            undecided = self._undecided = (
                lambda e: Undecided(rule, undecided_index, e, undecided_reason))
            make = self.make
            self.item = lambda r: undecided(make(r))
            item = (f"_Undecided(_view_rule, {undecided_index!r}, {event}, "
                    f"{undecided_reason!r})")
        # No call per record: in a batch of one view, the call cost ~10% of the Event.
        self.build: Callable[[list[tuple]], list[StreamItem]] = self._compile(
            "build", f"def f(rows):\n    return [{item} for r in rows]\n",
            {"_Undecided": Undecided})
        self._from_columns: Callable[[Callable[[int], list], int], list[Event]] = \
            self._compile("columns", _columns_source(self.field_sources()), _COLUMN_NAMES)

    def columns(self, block: Block) -> list[StreamItem]:
        """What `build(block.rows())` gives, made from the block's columns: no tuple
        unpacked per record, and no Python code run per record for the fields that are
        a column, a constant, or a column and a constant under one operator."""
        events = self._from_columns(block.column, len(block))
        return events if self._undecided is None else list(map(self._undecided, events))

    def expression(self, field: str) -> str:
        """Source of an expression over `r` giving `field` (a constant by its bound name)."""
        if field in CONSTANT_FIELDS:
            return f"_view_{field}"
        if field in ("args", "values"):
            return "(" + "".join(f"{x}, " for x in getattr(self, field)) + ")"
        if field == "paths":
            return "_NO_PATHS"
        return self.fields[field]

    def field_sources(self) -> list[str]:
        """Source of each `Event` field, in order, as an expression over `r`.

        Constants that are strings, ints or None are written as literals: a literal
        loads faster than a name, and an Event has several of them.
        """
        def source(field: str) -> str:
            if field in CONSTANT_FIELDS and type(getattr(self, field)) in _LITERAL_TYPES:
                return repr(getattr(self, field))
            return self.expression(field)
        return list(map(source, Event._fields))

    def event_expr(self) -> str:
        """Source of the `Event` of record `r` (one tuple built, no __init__ call)."""
        return "_tuple_new(_Event, (" + ", ".join(self.field_sources()) + "))"

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


def _columns_source(fields: Sequence[str]) -> str:
    """`def f(c, n)`: the Events of `n` records from `c(i)`, the list of field `i` of
    every record, given each Event field's source over one record `r`.

    Every field becomes an iterable over the records (`_iterable`), and the Events are
    built by `map`, `zip` and `tuple.__new__`, all in C.
    """
    columns = ", ".join(_iterable(ast.parse(source, mode="eval").body) for source in fields)
    return ("def f(c, n):\n"
            f"    return list(_map(_tuple_new, _repeat(_Event, n), _zip({columns})))\n")


_OPERATORS = {ast.Add: "_op.add", ast.Sub: "_op.sub", ast.BitAnd: "_op.and_",
              ast.BitOr: "_op.or_", ast.BitXor: "_op.xor", ast.RShift: "_op.rshift",
              ast.LShift: "_op.lshift"}


def _record_field(node: ast.expr) -> int | None:
    """`i` when `node` is `r[i]`."""
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
            and node.value.id == "r" and isinstance(node.slice, ast.Constant) \
            and type(node.slice.value) is int:
        return node.slice.value
    return None


def _iterable(node: ast.expr) -> str:
    """Source of an iterable giving `node`'s value for each record, in order."""
    field = _record_field(node)
    if field is not None:
        return f"c({field})"
    used = sorted({i for sub in ast.walk(node) if (i := _record_field(sub)) is not None})
    if not used:  # the same for every record (a constant, or a view's constant)
        return f"_repeat({ast.unparse(node)}, n)"
    if isinstance(node, ast.Tuple):
        return f"_zip({', '.join(map(_iterable, node.elts))})"
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS and all(
            _record_field(side) is not None or isinstance(side, ast.Constant)
            for side in (node.left, node.right)):
        return (f"_map({_OPERATORS[type(node.op)]}, {_iterable(node.left)}, "
                f"{_iterable(node.right)})")

    class Fields(ast.NodeTransformer):
        def visit_Subscript(self, sub: ast.Subscript) -> ast.expr:
            i = _record_field(sub)
            return ast.Name(f"_f{i}", ast.Load()) if i is not None else self.generic_visit(sub)

    body = ast.unparse(Fields().visit(node))
    function = f"(lambda {', '.join(f'_f{i}' for i in used)}: {body})"
    if len(used) == 1:
        return f"_each_distinct({function}, c({used[0]}))"
    return f"_map({function}, {', '.join(f'c({i})' for i in used)})"


def _each_distinct(function: Callable[[Any], Any], column: list) -> Iterator:
    """`map(function, column)`, calling `function` once per distinct value when values
    repeat (a command name, a uid: a batch holds few of them). The functions are pure
    (views' expressions compute from the record alone), so equal values give equal
    results."""
    distinct = set(column)
    if 4 * len(distinct) > len(column):
        return map(function, column)
    return map({value: function(value) for value in distinct}.__getitem__, column)


# What `_columns_source`'s code uses, besides the view's names.
_COLUMN_NAMES = {"_map": map, "_zip": zip, "_repeat": repeat, "_op": operator,
                 "_each_distinct": _each_distinct}


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


class Block(Protocol):
    """Records decoded on demand (`bpf.ringbuf.RecordBlock`): as rows, or a field at a time."""

    def __len__(self) -> int: ...

    def rows(self) -> list[tuple]: ...

    def column(self, index: int) -> list: ...


class Records:
    """A batch of an engine's stream, in order: `before`, the records `rows`, `after`.

    `before` and `after` are `StreamItem`s already (notices, events decoded
    earlier); each record's view is `views[key(record)]`, where `key` gives the
    record's `key_fields` (a tuple of them, or the value of a single one).  The
    records come as tuples or as a `Block`, whose rows are unpacked only if asked for:
    a batch of one view becomes Events from the block's columns (`EventView.columns`).
    """

    __slots__ = ("_block", "_rows", "after", "before", "key", "key_fields", "views")

    def __init__(self, rows: list[tuple] | Block, key_fields: Sequence[int],
                 views: Mapping[Hashable, EventView], before: Sequence[StreamItem] = (),
                 after: Sequence[StreamItem] = ()):
        if isinstance(rows, list):
            self._block, self._rows = None, rows
        else:
            self._block, self._rows = rows, None
        self.key_fields, self.views = tuple(key_fields), views
        self.key: Callable[[tuple], Hashable] = itemgetter(*self.key_fields)
        self.before, self.after = list(before), list(after)

    @property
    def rows(self) -> list[tuple]:
        """The records as tuples."""
        if self._rows is None:
            self._rows = self._block.rows()
        return self._rows

    @property
    def record_count(self) -> int:
        """How many records (not notices) the batch holds, without unpacking them."""
        return len(self._rows) if self._rows is not None else len(self._block)

    def __len__(self) -> int:
        return len(self.before) + self.record_count + len(self.after)

    def stream_items(self) -> list[StreamItem]:
        """Every item as an Event or a notice."""
        return [*self.before, *self.decoded(), *self.after]

    def decoded(self) -> list[StreamItem]:
        """The records as Events (or Undecided notices): a batch of one view from its
        columns, else a run of one view at a time from its rows."""
        block = self._block
        if self._rows is None and len(block) and self._one_key():
            first = self.key({i: block.column(i)[0] for i in self.key_fields})
            return self.views[first].columns(block)
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
        rows = self._rows
        if rows is None:
            block = self._block
            count = len(block)
            return all(column.count(column[0]) == count
                       for column in map(block.column, self.key_fields))
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
