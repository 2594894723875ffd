"""A validated rule set and first-match dispatch, in the one place both engines use.

Reference §2: each system call has a before list and an after list of rules
in file order, and the first rule whose filter matches acts; the rest of
that list is ignored.  A rule on a classic call (`unlink`) also sits in the
lists of its modern variants (`unlinkat`) unless it says `exact_syscall =
yes`; there it carries its `Variant`, which tells the engine when the modern
call counts as the classic one and how to map its arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from ..syscalls import Variant, table, variants_of
from .ast import Pos, Rule, When
from .compile import CompiledFilter, compile_filter
from .context import FilterContext
from .errors import Diagnostic, RuleError
from .printer import rules_text
from .source import parse
from .validate import validate


@dataclass(frozen=True, slots=True, eq=False)
class BoundRule:
    """A rule as it sits in one call's list: via `variant` (None: the call it names)."""

    rule: Rule
    variant: Variant | None
    filter: CompiledFilter
    index: int  # the rule's place in the file, from 0

    def condition_holds(self, args) -> bool:
        """Whether the call with raw arguments `args` counts as the rule's call."""
        condition = self.variant.condition if self.variant else None
        return condition is None or condition.holds(args)


class Match(NamedTuple):
    rule: BoundRule
    context: FilterContext


class RuleSet:
    """Validated rules in file order, indexed by (call family name, when)."""

    def __init__(self, rules: Iterable[Rule]):
        """Build from rules the validator accepted (see `load_rules`)."""
        self.rules = tuple(rules)
        lists: dict[tuple[str, When], list[BoundRule]] = {}
        for index, rule in enumerate(self.rules):
            syscall = table().lookup(rule.syscall)
            compiled = compile_filter(rule.filter, syscall.args, rule.name)
            family = syscall.family
            lists.setdefault((family, rule.when), []).append(
                BoundRule(rule, None, compiled, index))
            if not rule.exact_syscall:
                for variant in variants_of(family):
                    lists.setdefault((variant.modern, rule.when), []).append(
                        BoundRule(rule, variant, compiled, index))
        self._lists = {key: tuple(bound) for key, bound in lists.items()}

    def rules_for(self, name: str, when: When | str) -> tuple[BoundRule, ...]:
        """The ordered list for call family `name` (`Syscall.family`) at `when`."""
        return self._lists.get((name, When(when)), ())

    def first_match(self, name: str, when: When | str,
                    context_for: Callable[[Variant | None], FilterContext | None]) -> Match | None:
        """The first rule of the list whose filter matches, with the context it matched.

        `context_for(variant)` builds the context a rule bound through
        `variant` sees (the classic signature for a variant), or returns None
        when the call does not count as that variant's classic call.  It is
        called at most once per distinct variant.
        """
        contexts: dict[Variant | None, FilterContext | None] = {}
        for bound in self.rules_for(name, when):
            if bound.variant in contexts:
                ctx = contexts[bound.variant]
            else:
                ctx = contexts[bound.variant] = context_for(bound.variant)
            if ctx is not None and bound.filter.evaluate(ctx):
                return Match(bound, ctx)
        return None

    def watched(self, when: When | str | None = None) -> frozenset[str]:
        """The call families that have rules (at `when`, or at either)."""
        return frozenset(name for (name, w) in self._lists if when is None or w == when)

    def text(self) -> str:
        """The canonical rule file, as `sct_config download` prints it."""
        return rules_text(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)


def check_rules(text: str, filename: str = "<rules>") -> tuple[Rule, ...]:
    """Parse and validate `text`; the resolved rules, or RuleError with every problem."""
    diagnostics: list[Diagnostic] = []
    rules = validate(parse(text, filename, diagnostics), diagnostics)
    if diagnostics:
        raise RuleError(diagnostics)
    return rules


def load_rules(source: str | bytes | os.PathLike, filename: str | None = None) -> RuleSet:
    """Parse, validate and build a RuleSet; RuleError lists every problem.

    `source` is the rule text (str or UTF-8 bytes), or a path (`pathlib.Path`)
    to read, whose name is then the default `filename` in messages.  An
    unreadable file raises OSError.
    """
    if isinstance(source, os.PathLike):
        filename = filename or os.fspath(source)
        with open(source, "rb") as file:
            source = file.read()
    filename = filename or "<rules>"
    if isinstance(source, bytes):
        try:
            source = source.decode()
        except UnicodeDecodeError as exc:
            before = source[:exc.start]
            line = before.count(b"\n") + 1
            col = len(before) - (before.rfind(b"\n") + 1) + 1
            raise RuleError([Diagnostic(Pos(filename, line, col),
                                        "the file is not valid UTF-8")]) from None
    return RuleSet(check_rules(source, filename))
