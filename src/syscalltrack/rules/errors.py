"""The one error type of the rule language.

Every problem found in a rule file -- syntax, unknown names, types -- becomes a
`Diagnostic` with its position, and all of them travel together in one
`RuleError`, so a user fixes a file in one pass.  Nothing else escapes the
parser or validator, whatever the input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .ast import Pos

_SHORT_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def printable(text: str) -> str:
    """`text` with each character that does not print escaped (`\\n`, `\\x1b`, `\\u202e`;
    a byte that was not UTF-8, decoded with surrogateescape, as `\\xff`), for quoting
    rule-file text in a message: a rule name or a string there could otherwise send a
    terminal escape or start a forged line of its own."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        else:
            code = ord(char)
            if 0xDC80 <= code <= 0xDCFF:
                code -= 0xDC00
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem at one place.  `str()` is always one line of printable text, whatever
    the file name or a message quotes (the sites quoting rule-file text escape it too, so
    `message` is clean as well)."""

    pos: Pos
    message: str

    @property
    def file(self) -> str:
        return self.pos.file

    @property
    def line(self) -> int:
        return self.pos.line

    @property
    def col(self) -> int:
        return self.pos.col

    def __str__(self) -> str:
        return f"{printable(str(self.pos))}: error: {printable(self.message)}"


class RuleError(Exception):
    """A rule file is invalid; `diagnostics` lists every problem, in file order.

    str() gives one `FILE:LINE:COL: error: MESSAGE` line per problem.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(sorted(diagnostics, key=lambda d: (d.line, d.col)))
        super().__init__("\n".join(str(d) for d in self.diagnostics))
