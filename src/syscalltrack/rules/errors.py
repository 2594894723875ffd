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


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem at one place."""

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
        return f"{self.pos}: error: {self.message}"


class RuleError(Exception):
    """A rule file is invalid; `diagnostics` lists every problem, in file order.

    str() gives one `FILE:LINE:COL: error: MESSAGE` line per problem.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(sorted(diagnostics, key=lambda d: (d.line, d.col)))
        super().__init__("\n".join(str(d) for d in self.diagnostics))
