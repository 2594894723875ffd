"""Which format an event is printed in, and as what: one place for every output.

A reader's own format (`sctlog --format`, `sctrace --format`) wins over the
rule's `log_format`, which wins over the default.  Formats are compiled once
and kept, since a handful of rules yields a handful of formats.
"""

from __future__ import annotations

from .event import Event
from .format import _TOKEN, DEFAULT_FORMAT, Limits, LogFormat
from .jsonfmt import to_json

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

    def __call__(self, event: Event) -> str:
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


def macros_used(formats) -> frozenset[str]:
    """The macro names the given log formats print (without `%`)."""
    return frozenset(m.group(1) for fmt in formats for m in _TOKEN.finditer(fmt))
