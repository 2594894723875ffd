"""The `%macros` of log formats: the one list the validator checks and the formatter renders.

`%name` is a macro when `name` is a run of letters (`%sid_%sname` is two
macros joined by `_`); `%%` is a literal `%`; a `%` followed by anything
else is literal text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The original's, in its documentation's order, then ours (events.format renders them all;
# a test in tests/rules keeps its LOG_MACROS equal to this set).
MACRO_ORDER = (
    "ruleid", "sid", "sname", "params", "pid", "uid", "euid", "suid", "gid", "egid", "sgid",
    "comm", "retval", "cwd", "ppid", "tid", "time", "path", "args", "abi", "when", "action",
    "barecomm",
)
MACROS = frozenset(MACRO_ORDER)
AFTER_ONLY_MACROS = frozenset({"retval"})
DEFAULT_LOG_FORMAT = "syscall: %pid[%barecomm]: %sid_%sname(%params) (rule %ruleid)"

_PIECE = re.compile(r"%(%|[A-Za-z]+)")


@dataclass(frozen=True, slots=True)
class Macro:
    """One `%name` in a log format, at character `offset` of the text."""

    name: str
    offset: int


def split_log_format(text: str) -> tuple[str | Macro, ...]:
    """`text` as literal pieces and macros, in order (`%%` already turned into `%`)."""
    pieces: list[str | Macro] = []
    last = 0
    for m in _PIECE.finditer(text):
        if m.group(1) == "%":
            pieces.append(text[last:m.start()] + "%")
        else:
            pieces.append(text[last:m.start()])
            pieces.append(Macro(m.group(1), m.start()))
        last = m.end()
    pieces.append(text[last:])
    return tuple(p for p in pieces if p != "")
