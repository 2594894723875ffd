"""Which format an event is printed in, and as what: one place for every output.

A reader's own format (`sctlog --format`, `sctrace --format`) wins over the
rule's `log_format`, which wins over the default.  Formats are compiled once
and kept, since a handful of rules yields a handful of formats.
"""

from __future__ import annotations

import json as _json

from .event import Event, Lost, StreamItem, Undecided
from .format import DEFAULT_FORMAT, Limits, LogFormat, escape
from .jsonfmt import to_dict, to_json

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

    def __call__(self, item: StreamItem) -> str:
        if item.__class__ is not Event:
            return self.notice(item)
        event = item
        if self.json:
            return to_json(event)
        if self.override is not None:
            fmt = self.override
        elif event.log_format is not None:
            fmt = event.log_format
        else:
            fmt = DEFAULT_FORMAT if event.rule is not None else TRACE_FORMAT
        compiled = self._formats.get(fmt)
        if compiled is None:
            compiled = self._formats[fmt] = LogFormat(fmt, self.limits)
        return compiled.render(event)

    def notice(self, item: Lost | Undecided) -> str:
        """A notice as one line: `-- ... --` in text, an object with "notice" in JSON."""
        if item.__class__ is Lost:
            if self.json:
                return _json.dumps({"notice": "lost", "count": item.count, "where": "kernel",
                                    "rule": item.rule})
            return (f"-- {item.count} events lost in the kernel (rule {escape(_b(item.rule))}: "
                    "ring buffer full) --")
        if self.json:
            return _json.dumps({"notice": "undecided", "rule": item.rule,
                                "event": to_dict(item.event)})
        e = item.event
        return (f"-- rule {escape(_b(item.rule))} undecided in the kernel for "
                f"{e.pid}[{escape(e.comm)}] {e.name}: no action taken --")


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")

