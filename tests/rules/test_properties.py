"""Property tests: print/parse round trips, fuzzing, compiled versus reference evaluation."""

from __future__ import annotations

import contextlib
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import matches
from strategies import SYSCALLS, contexts, filters, rules, signature

from syscalltrack.rules import (
    Action,
    ActionType,
    Rule,
    RuleError,
    check_rules,
    compile_filter,
    load_rules,
    parse,
    rules_text,
)

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "article.rules").read_text()
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(rules(), max_size=4))
def test_printed_rules_parse_back_equal(generated):
    text = rules_text(generated)
    assert parse(text).rules == tuple(generated)
    validated = check_rules(text)
    assert validated == tuple(generated)
    assert rules_text(validated) == text


@SETTINGS
@given(st.text(max_size=200))
def test_random_text_raises_only_rule_errors(text):
    with contextlib.suppress(RuleError):
        load_rules(text)


_EDIT_CHARS = string.printable + "{}[]()\"\\#%=!~&|<>é\x00"


@st.composite
def mutations(draw):
    text = EXAMPLE
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        insert = draw(st.text(st.sampled_from(_EDIT_CHARS), max_size=3))
        text = text[:at] + insert + text[at + cut:]
    return text


@SETTINGS
@given(mutations())
def test_mutated_article_rules_raise_only_rule_errors(text):
    try:
        load_rules(text, "try.conf")
    except RuleError as exc:
        assert all(d.file == "try.conf" and d.line >= 1 and d.col >= 1 for d in exc.diagnostics)


@st.composite
def filter_cases(draw):
    syscall = draw(st.sampled_from(SYSCALLS))
    return syscall, draw(filters(syscall)), draw(st.lists(contexts(syscall), min_size=1,
                                                          max_size=4))


@SETTINGS
@given(filter_cases())
def test_compiled_filter_agrees_with_reference_interpreter(case):
    syscall, expr, ctxs = case
    text = rules_text([Rule("r", syscall, Action(ActionType.LOG), filter=expr)])
    (rule,) = check_rules(text)  # resolves constants, as the product's pipeline does
    compiled = compile_filter(rule.filter, signature(syscall))
    for ctx in ctxs:
        assert compiled.evaluate(ctx) == matches(rule.filter, ctx, signature(syscall)), \
            compiled.source
