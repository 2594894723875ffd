"""JSON rendering of events: one object per line, lossless, with stable field names.

    {"time": "2023-11-14T22:13:20.123456Z", "time_ns": 1700000000123456789,
     "rule": "unlink_rule1", "when": "before", "action": "LOG",
     "abi": "x86_64", "sid": 87, "sname": "unlink",
     "pid": 876, "tid": 876, "ppid": 1, "uid": 0, "euid": 0, "suid": 0,
     "gid": 0, "egid": 0, "sgid": 0, "comm": "rm", "cwd": "/tmp", "retval": null,
     "args": [{"name": "pathname", "type": "const char *", "kind": "path",
               "raw": 140726014263552, "value": "./dummy", "path": "/tmp/dummy"}],
     "log_format": "%comm : %params delete by %euid --> %suid"}

`time` is UTC (for people; `time_ns`, nanoseconds since the epoch, is exact).
`rule`, `action`, `cwd`, `retval`, `log_format` are null when unknown.
Each argument has `name`, `type` (C type), `kind` (decoding kind), `raw` (the
register value normalised to its C type) and, when the engine decoded it,
`value`; `path` (resolved absolute path), `length_arg` (index of the length
argument of a buffer or socket address) and `compat` (true: an i386
argument, `long` is 32-bit) only when they exist; `cut` (true, right after
`value`) when the value is only the start of the string the caller passed:
the rest did not fit the engine's record (a `Cut`).

Byte strings (comm, cwd, paths, string values, argv items) that are valid
UTF-8 are JSON strings; any other is `{"base64": "..."}`, so every byte
survives and a consumer that only wants text can still read most of them.
A `value` is a number, a byte string as above, null (NULL pointer), a list
of byte strings (argv), `{"unreadable": address}`, or a socket address
`{"family": 2, "address": "127.0.0.1", "port": 80, "raw": <bytes>}`.

Output is ASCII (`ensure_ascii`), so control characters and terminal escapes
are always `\\uXXXX` escapes and a record is exactly one line.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from ..syscalls import Arg, ArgKind
from .event import ArgValue, Cut, Event, SockAddr, Unreadable
from .view import EventView, Memo, Template

_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _b(data: bytes) -> str | dict[str, str]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _unb(obj: str | dict[str, str]) -> bytes:
    if isinstance(obj, str):
        return obj.encode("utf-8")
    return base64.b64decode(obj["base64"], validate=True)


def _value(value: ArgValue) -> Any:
    if value is None or value.__class__ is int:
        return value
    if isinstance(value, bytes):
        return _b(value)
    if isinstance(value, tuple):
        return [_b(item) for item in value]
    if isinstance(value, Unreadable):
        return {"unreadable": value.address}
    address = value.address
    if address is not None:  # text, or a unix path decoded with surrogateescape
        address = _b(address.encode("utf-8", "surrogateescape"))
    return {"family": value.family, "address": address, "port": value.port,
            "raw": _b(value.raw)}


def _unvalue(obj: Any) -> ArgValue:
    if obj is None or isinstance(obj, int):
        return obj
    if isinstance(obj, list):
        return tuple(_unb(item) for item in obj)
    if isinstance(obj, str) or "base64" in obj:
        return _unb(obj)
    if "unreadable" in obj:
        return Unreadable(obj["unreadable"])
    address = obj["address"]
    if address is not None:
        address = _unb(address).decode("utf-8", "surrogateescape")
    return SockAddr(obj["family"], address, obj["port"], _unb(obj["raw"]))


def _uncut(obj: Any) -> Cut:
    value = _unvalue(obj)
    if value.__class__ is not bytes:
        raise ValueError("only a byte string can be cut")
    return Cut(value)


@functools.lru_cache(maxsize=4)
def _second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _time(ns: int) -> str:
    second, rest = divmod(ns, 1_000_000_000)
    return f"{_second(second)}.{rest // 1000:06d}Z"


_STATIC: dict[int, tuple[tuple[Arg, ...], tuple[dict[str, Any], ...]]] = {}


def _static(sig: tuple[Arg, ...]) -> tuple[dict[str, Any], ...]:
    """The per-signature part of `args` items, built once per signature (found by identity)."""
    entry = _STATIC.get(id(sig))
    if entry is None or entry[0] is not sig:
        if len(_STATIC) > 4096:  # signatures built per event: do not grow forever
            _STATIC.clear()
        entry = _STATIC[id(sig)] = (sig, tuple(
            {"name": a.name, "type": a.ctype, "kind": a.kind.value}
            | ({} if a.length_arg is None else {"length_arg": a.length_arg})
            | ({"compat": True} if a.compat else {})
            for a in sig
        ))
    return entry[1]


def to_dict(event: Event) -> dict[str, Any]:
    """The event as JSON-ready data, with the field names documented above."""
    args = []
    values, raw, paths = event.values, event.args, event.paths
    for i, static in enumerate(_static(event.signature)):
        item = {**static, "raw": raw[i]}
        if i < len(values):
            value = values[i]
            item["value"] = _value(value)
            if value.__class__ is Cut:
                item["cut"] = True
        if i in paths:
            item["path"] = _b(paths[i])
        args.append(item)
    return {
        "time": _time(event.timestamp_ns), "time_ns": event.timestamp_ns,
        "rule": event.rule, "when": event.when, "action": event.action,
        "abi": event.abi, "sid": event.nr, "sname": event.name,
        "pid": event.pid, "tid": event.tid, "ppid": event.ppid,
        "uid": event.uid, "euid": event.euid, "suid": event.suid,
        "gid": event.gid, "egid": event.egid, "sgid": event.sgid,
        "comm": _b(event.comm), "cwd": None if event.cwd is None else _b(event.cwd),
        "retval": event.retval, "args": args, "log_format": event.log_format,
    }


def to_json(event: Event) -> str:
    """One line of JSON (no newline at the end), ASCII only."""
    return _dumps(to_dict(event))


def _json_value(value: ArgValue) -> str:
    """What `to_json` prints for an argument value (or a retval, a cwd: ints, None, bytes)."""
    return str(value) if value.__class__ is int else _dumps(_value(value))


def _json_arg(value: ArgValue) -> str:
    """An argument's `value` member's text, and `,"cut":true` after it for a Cut."""
    text = _json_value(value)
    return text + ',"cut":true' if value.__class__ is Cut else text


def for_view(view: EventView) -> Callable[[tuple], str]:
    """A function printing `to_json(view.make(r))` for records `r` of `view`, without
    building the Event: constant members are encoded once, here, and the line is one
    f-string.  (Views carry no resolved paths, so no `path` members.)"""
    renderer = _JSON_VIEWS.get(view)
    if renderer is not None:
        return renderer
    line = Template()

    def member(name: str, value: Any = None, expr: str | None = None, encode: str = "") -> None:
        """`"name":` then a constant, or the text of `encode(expr)` (null if expr is None)."""
        line.text(f',"{name}":')
        if expr is None:
            line.text(_dumps(value))
        elif expr == "None":
            line.text("null")
        else:
            line.expr(f"{encode}({expr})" if encode else expr)

    ts = view.fields["timestamp_ns"]
    line.text('{"time":"')  # digits, '-', ':', '.', 'T' and 'Z': nothing to escape
    line.expr(f"_time({ts})")
    line.text('"')
    member("time_ns", expr=ts)
    for name, value in (("rule", view.rule), ("when", view.when), ("action", view.action),
                        ("abi", view.abi), ("sid", view.nr), ("sname", view.name)):
        member(name, value)
    for name in ("pid", "tid", "ppid", "uid", "euid", "suid", "gid", "egid", "sgid"):
        member(name, expr=view.fields[name])  # ints (-1 when not captured)
    member("comm", expr=f"_json_comm[{view.fields['comm']}]")
    member("cwd", expr=view.fields["cwd"], encode="_json_value")
    member("retval", expr=view.fields["retval"], encode="_json_value")
    line.text(',"args":[')
    for i, static in enumerate(_static(view.signature)):
        line.text(("," if i else "") + _dumps(static)[:-1] + ',"raw":')
        line.expr(view.args[i])
        line.text(',"value":')
        line.expr(f"_json_arg({view.values[i]})")
        line.text("}")
    line.text("]")
    member("log_format", view.log_format)
    line.text("}")
    renderer = view.compile("json", line.body(), line.prelude(), {
        "_time": _time, "_json_value": _json_value, "_json_arg": _json_arg,
        "_json_comm": _JSON_COMM})
    _JSON_VIEWS[view] = renderer
    return renderer


_JSON_COMM = Memo(lambda comm: _dumps(_b(comm)))
_JSON_VIEWS: WeakKeyDictionary[EventView, Callable[[tuple], str]] = WeakKeyDictionary()


class JSONEventError(ValueError):
    """A line that is not an event as `to_json` writes it."""


def from_dict(obj: dict[str, Any]) -> Event:
    """The Event `to_dict` was made from, byte for byte."""
    args = obj["args"]
    signature = tuple(
        Arg(a["name"], a["type"], ArgKind(a["kind"]), a.get("length_arg"), a.get("compat", False))
        for a in args
    )
    values = tuple(_uncut(a["value"]) if a.get("cut") else _unvalue(a["value"])
                   for a in args if "value" in a)
    paths = {i: _unb(a["path"]) for i, a in enumerate(args) if "path" in a}
    cwd = obj["cwd"]
    return Event(
        abi=obj["abi"], nr=obj["sid"], name=obj["sname"], signature=signature,
        args=tuple(a["raw"] for a in args), values=values,
        pid=obj["pid"], tid=obj["tid"], ppid=obj["ppid"],
        uid=obj["uid"], euid=obj["euid"], suid=obj["suid"],
        gid=obj["gid"], egid=obj["egid"], sgid=obj["sgid"],
        comm=_unb(obj["comm"]), timestamp_ns=obj["time_ns"], when=obj["when"],
        rule=obj["rule"], action=obj["action"], log_format=obj["log_format"],
        cwd=None if cwd is None else _unb(cwd), retval=obj["retval"], paths=paths,
    )


def from_json(line: str | bytes) -> Event:
    """Parse one line written by `to_json`; JSONEventError if it is not one."""
    try:
        return from_dict(json.loads(line))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # incl. base64 errors
        raise JSONEventError(f"not a syscalltrack JSON event: {exc}") from exc
