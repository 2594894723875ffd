"""Which format an event is printed in, and as what: one place for every output.

A reader's own format (`sctlog --format`, `sctrace --format`) wins over the
rule's `log_format`, which wins over the default.  Formats are compiled once
and kept, since a handful of rules yields a handful of formats.
"""

from __future__ import annotations

from collections.abc import Callable
from weakref import WeakKeyDictionary

from .event import Event, Lost, StreamItem, Undecided
from .format import DEFAULT_FORMAT, Limits, LogFormat, escape, escape_bracketed
from .view import EventView, Records

# sctrace's strace-like view of calls no rule matched: the default format with
# the return value in place of the rule name.
TRACE_FORMAT = "syscall: %pid[%barecomm]: %sid_%sname(%params) = %retval"


class Renderer:
    """Turns events into lines (no newline): text by format, or JSON."""

    def __init__(self, json: bool = False, override: str | None = None,
                 limits: Limits | None = None):
        self.json = json
        self.override = override
        self.limits = limits or Limits()
        self._formats: dict[str, LogFormat] = {}
        # What this renderer compiled per view; goes when the view does (rules replaced).
        self._views: WeakKeyDictionary[EventView, Callable[[tuple], str]] = WeakKeyDictionary()
        # JSON's modules (jsonfmt: json, base64) are imported only for JSON output:
        # a text renderer's start-up (sctrace's) does without them.
        if json:
            from . import jsonfmt

            self._to_json = jsonfmt.to_json

    def __call__(self, item: StreamItem) -> str:
        if item.__class__ is not Event:
            return self.notice(item)
        event = item
        if self.json:
            return self._to_json(event)
        return self._format(event.log_format, event.rule).render(event)

    def _format(self, log_format: str | None, rule: str | None) -> LogFormat:
        """The format an event is printed with: the reader's own, the rule's, else the
        default (for a rule's event, or the trace view's)."""
        fmt = self.override if self.override is not None else log_format
        if fmt is None:
            fmt = DEFAULT_FORMAT if rule is not None else TRACE_FORMAT
        compiled = self._formats.get(fmt)
        if compiled is None:
            compiled = self._formats[fmt] = LogFormat(fmt, self.limits)
        return compiled

    def lines(self, batch: Records | list[StreamItem]) -> list[str]:
        """Every item of a batch as a line; records straight from their view."""
        if not isinstance(batch, Records):
            return [self(x) for x in batch]
        return [*map(self, batch.before), *self._rows(batch), *map(self, batch.after)]

    def _rows(self, batch: Records) -> list[str]:
        out: list[str] = []
        for view, rows in batch.runs():
            render = self._views.get(view)
            if render is None:
                render = self._views[view] = self.for_view(view)
            out += map(render, rows)
        return out

    def for_view(self, view: EventView) -> Callable[[tuple], str]:
        """This renderer's function for the records of `view` (it holds no reference
        to the renderer, so neither keeps the other alive)."""
        if view.undecided_index is not None:
            item, json = view.item, self.json
            return lambda r: _notice(item(r), json)
        if self.json:
            from . import jsonfmt

            return jsonfmt.for_view(view)
        return self._format(view.log_format, view.rule).for_view(view)

    def notice(self, item: Lost | Undecided) -> str:
        """A notice as one line: `-- ... --` in text, an object with "notice" in JSON."""
        return _notice(item, self.json)


def _notice(item: Lost | Undecided, json: bool) -> str:
    if json:
        return _json_notice(item)
    if item.__class__ is Lost:
        return (f"-- {item.count} events lost in the kernel (rule {escape(_b(item.rule))}: "
                "ring buffer full) --")
    e = item.event
    why = f"{item.reason}; " if item.reason else ""
    # The call's arguments too: an admin must see which file a call the rule could not
    # decide acted on (escaped by the %params printer, as in any log line).
    return (f"-- rule {escape(_b(item.rule))} undecided in the kernel for "
            f"{e.pid}[{escape_bracketed(e.comm)}] {e.name}({_PARAMS.render(e)}): {why}"
            "no action taken --")


def _json_notice(item: Lost | Undecided) -> str:
    import json

    from . import jsonfmt

    if item.__class__ is Lost:
        return json.dumps({"notice": "lost", "count": item.count, "where": "kernel",
                           "rule": item.rule})
    return json.dumps({"notice": "undecided", "rule": item.rule,
                       **({"reason": item.reason} if item.reason else {}),
                       "event": jsonfmt.to_dict(item.event)})


_PARAMS = LogFormat("%params")


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")

