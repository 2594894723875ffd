"""Long flat chains of `||` or `&&`: the parser groups them as a balanced tree.

A list of a few hundred values written `PARAMS[1] == 1 || PARAMS[1] == 2 || ...` parses,
validates, evaluates, prints flat and parses back equal, and the system-wide code
generator takes it; nesting written as such (parentheses, `!`) is still refused past
the validator's depth, with the position of the expression.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from strategies import Context

from syscalltrack.rules import (
    Binary,
    Num,
    RuleError,
    Unary,
    Var,
    check_rules,
    compile_filter,
    expr_text,
    load_rules,
    parse,
    rules_text,
)
from syscalltrack.rules.validate import MAX_DEPTH
from syscalltrack.syscalls import table

N = 300
UNLINKAT = table().lookup("unlinkat").args  # (int dfd, const char *pathname, int flag)


def rule_text(filt: str, syscall: str = "unlinkat") -> str:
    return (f"rule\n{{\n    syscall_name = {syscall}\n    rule_name = r\n"
            f"    filter_expression {{{filt}}}\n    action {{ type = LOG }}\n}}\n")


def or_chain(n: int = N) -> str:
    return " || ".join(f"PARAMS[1] == {i}" for i in range(1, n + 1))


def and_chain(n: int = N) -> str:
    return " && ".join(f"PARAMS[1] != {i}" for i in range(1, n + 1))


def depth(expr) -> int:
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(node, Binary):
            stack += [(node.left, d + 1), (node.right, d + 1)]
        elif isinstance(node, Unary):
            stack.append((node.operand, d + 1))
    return deepest


def comparison(op: str, value: int) -> Binary:
    return Binary(op, Var("PARAMS", 1), Num(value))


def evaluate(rule, dfd: int) -> bool:
    compiled = compile_filter(rule.filter, UNLINKAT)
    return compiled.evaluate(Context((dfd, 0, 0), {1: b"/tmp/x"}, {}))


# -- parse, validate, evaluate -------------------------------------------------------------

def test_a_300_term_or_chain_parses_balanced_validates_and_evaluates():
    (rule,) = check_rules(rule_text(or_chain()), "long.rules")
    terms = rule.filter.terms()
    assert terms == tuple(comparison("==", i) for i in range(1, N + 1))  # in written order
    assert depth(rule.filter) <= 12  # log2(300) levels of ||, then the comparisons
    for dfd in (1, 2, 150, 299, N):
        assert evaluate(rule, dfd) is True, dfd
    for dfd in (0, N + 1, -100, 1 << 40):
        assert evaluate(rule, dfd) is False, dfd
    compiled = compile_filter(rule.filter, UNLINKAT)
    assert compiled.args == {0} and compiled.integer_only


def test_a_300_term_and_chain_evaluates():
    (rule,) = check_rules(rule_text(and_chain()))
    assert depth(rule.filter) <= 12
    assert evaluate(rule, N + 1) is True
    assert evaluate(rule, -100) is True
    assert evaluate(rule, 1) is False
    assert evaluate(rule, 123) is False
    assert evaluate(rule, N) is False


def test_an_or_chain_of_and_pairs_keeps_precedence():
    filt = " || ".join(f"PARAMS[1] == {i} && PARAMS[3] == {i % 2}" for i in range(1, N + 1))
    (rule,) = check_rules(rule_text(filt))
    assert all(isinstance(t, Binary) and t.op == "&&" for t in rule.filter.terms())
    compiled = compile_filter(rule.filter, UNLINKAT)
    ctx = lambda dfd, flag: Context((dfd, 0, flag), {}, {})  # noqa: E731
    assert compiled.evaluate(ctx(7, 1)) is True
    assert compiled.evaluate(ctx(8, 0)) is True
    assert compiled.evaluate(ctx(7, 0)) is False
    assert compiled.evaluate(ctx(N + 1, 1)) is False


def test_chains_of_a_thousand_terms_are_accepted():
    (rule,) = check_rules(rule_text(or_chain(1000)))
    assert len(rule.filter.terms()) == 1000
    assert evaluate(rule, 999) is True
    assert evaluate(rule, 1001) is False


# -- printing and equality -----------------------------------------------------------------

def test_a_long_chain_prints_flat_and_parses_back_equal():
    text = rule_text(or_chain())
    rules = check_rules(text)
    printed = rules_text(rules)
    assert f"filter_expression {{{or_chain()}}}" in printed  # flat: no parentheses added
    assert parse(printed).rules == parse(text).rules
    assert check_rules(printed) == rules
    assert rules_text(check_rules(printed)) == printed


def _shape(e):
    """The grouping of a chain, as nested pairs (what equality ignores)."""
    return (_shape(e.left), _shape(e.right)) if isinstance(e, Binary) else expr_text(e)


def test_a_term_deep_inside_a_chain_is_printed_so_that_it_stays_as_deep():
    """!!!...(a) || (b || ... || i): printed flat, the parser would balance the nine terms
    and put the deep one two levels lower -- past the limit the original stayed within."""
    deep = "!" * 45 + "(PARAMS[3] == 1)"
    text = deep + " || (" + " || ".join(f"PARAMS[3] == {i}" for i in range(2, 10)) + ")"
    rules = check_rules(rule_text(text))
    printed = rules_text(rules)
    assert check_rules(printed) == rules
    assert f"{{{text}}}" in printed


def test_grouping_of_a_chain_does_not_matter_to_equality_or_printing():
    terms = [comparison("==", i) for i in range(1, 9)]
    left_deep = terms[0]
    for t in terms[1:]:
        left_deep = Binary("||", left_deep, t)
    right_deep = terms[-1]
    for t in reversed(terms[:-1]):
        right_deep = Binary("||", t, right_deep)
    (rule,) = parse(rule_text(" || ".join(expr_text(t) for t in terms))).rules
    assert rule.filter == left_deep == right_deep
    assert hash(rule.filter) == hash(left_deep) == hash(right_deep)
    # The parser's own grouping prints flat; another keeps the parentheses that give it
    # back, so that the text parses to a tree exactly as deep (the validator limits depth).
    assert expr_text(rule.filter) == " || ".join(expr_text(t) for t in terms)
    for tree in (left_deep, right_deep):
        text = expr_text(tree)
        assert "(" in text
        (again,) = parse(rule_text(text)).rules
        assert again.filter == tree and _shape(again.filter) == _shape(tree)
    # Order and operator still count: they change what is evaluated first.
    assert Binary("||", terms[1], terms[0]) != Binary("||", terms[0], terms[1])
    assert Binary("&&", terms[0], terms[1]) != Binary("||", terms[0], terms[1])
    # Other operators keep their grouping: a - (b - c) is not (a - b) - c.
    a, b, c = Num(1), Num(2), Num(3)
    assert Binary("-", Binary("-", a, b), c) != Binary("-", a, Binary("-", b, c))
    assert expr_text(Binary("-", a, Binary("-", b, c))) == "1 - (2 - 3)"


def test_a_chain_inside_another_operator_keeps_its_parentheses():
    filt = "(" + or_chain(60) + ") && !(" + and_chain(60) + ")"
    (rule,) = check_rules(rule_text(filt))
    assert rule.filter.op == "&&" and len(rule.filter.terms()) == 2
    printed = rules_text([rule])
    assert f"filter_expression {{{filt}}}" in printed
    assert check_rules(printed) == (rule,)


# -- positions -----------------------------------------------------------------------------

def lines_chain(n: int, bad: int, term: str) -> tuple[str, int, int]:
    """An n-term || chain, one term a line, term `bad` (1-based) replaced by `term`;
    the text and the line and column where `term` starts."""
    parts = [term if i == bad else f"PARAMS[1] == {i}" for i in range(1, n + 1)]
    text = rule_text("\n        || ".join(parts))
    before = text[:text.index(term)]
    return text, before.count("\n") + 1, len(before) - before.rfind("\n")


def test_an_error_deep_in_a_long_chain_points_at_its_term():
    text, line, col = lines_chain(N, 250, "PARAMS[1] == NO_SUCH_CONSTANT")
    with pytest.raises(RuleError) as exc:
        check_rules(text, "long.rules")
    (diag,) = exc.value.diagnostics
    const_col = col + len("PARAMS[1] == ")
    assert (diag.file, diag.line, diag.col) == ("long.rules", line, const_col)
    assert "unknown" in diag.message and "NO_SUCH_CONSTANT" in diag.message
    assert str(exc.value).startswith(f"long.rules:{line}:{const_col}: error: ")


def test_a_string_as_a_term_of_a_long_chain_is_reported_at_the_term():
    """Balanced, the term may be the left operand of the operator on the next line: the
    error names the term's own place."""
    text, line, col = lines_chain(N, 120, "PARAMS[2]")
    with pytest.raises(RuleError) as exc:
        check_rules(text, "long.rules")
    (diag,) = exc.value.diagnostics
    assert (diag.line, diag.col) == (line, col)
    assert "needs conditions, but PARAMS[2]" in diag.message


def test_a_type_error_deep_in_a_long_chain_points_at_its_comparison():
    text, line, col = lines_chain(N, 173, 'PARAMS[1] == "x"')
    with pytest.raises(RuleError) as exc:
        check_rules(text, "long.rules")
    (diag,) = exc.value.diagnostics
    assert (diag.line, diag.col) == (line, col + len("PARAMS[1] "))  # at its ==
    assert "cannot compare" in diag.message


def test_parsed_operators_keep_their_own_positions():
    text = rule_text("\n        || ".join(f"PARAMS[1] == {i}" for i in range(1, 41)))
    (rule,) = parse(text, "long.rules").rules
    found, stack = [], [rule.filter]
    while stack:
        node = stack.pop()
        if isinstance(node, Binary) and node.op == "||":
            found.append((node.pos.line, node.pos.col))
            stack += [node.left, node.right]
    first = text[:text.index("||")].count("\n") + 1
    assert sorted(found) == [(first + i, 9) for i in range(39)]  # every line's ||, once


# -- genuine nesting is still refused ------------------------------------------------------

def _filter_start(text: str) -> int:
    return text.index("filter_expression {") + len("filter_expression {")


@pytest.mark.parametrize("nest, top", [
    (lambda inner, i: f"!({inner})", _filter_start),
    (lambda inner, i: f"PARAMS[1] == {i} {'||' if i % 2 else '&&'} ({inner})",
     lambda text: text.index("||")),
    (lambda inner, i: f"PARAMS[1] == {i} || ({inner})",  # parentheses group as written
     lambda text: text.index("||")),
    (lambda inner, i: f"({inner}) && PARAMS[1] != {i}", lambda text: text.rindex("&&")),
], ids=["not", "alternating", "or-in-parentheses", "and-in-parentheses"])
def test_deep_nesting_is_refused_at_the_expression(nest, top):
    filt = "PARAMS[1] == 0"
    for i in range(60):
        filt = nest(filt, i)
    text = rule_text(filt)
    with pytest.raises(RuleError) as exc:
        check_rules(text, "deep.rules")
    (diag,) = exc.value.diagnostics
    assert diag.message == f"expression nested too deeply (more than {MAX_DEPTH} levels)"
    at = top(text)  # the outermost operator (or the `!`): the expression's own position
    line, col = text[:at].count("\n") + 1, at - text[:at].rfind("\n")
    assert (diag.file, diag.line, diag.col) == ("deep.rules", line, col)
    assert str(exc.value).startswith(f"deep.rules:{line}:{col}: error: expression nested")


def test_nesting_just_within_the_limit_is_accepted():
    filt = "PARAMS[1] == 0"  # depth 2
    for _ in range(MAX_DEPTH - 2):
        filt = f"!({filt})"
    (rule,) = check_rules(rule_text(filt))
    assert depth(rule.filter) == MAX_DEPTH
    with pytest.raises(RuleError, match="nested too deeply"):
        check_rules(rule_text(f"!({filt})"))


# -- the system-wide engine ----------------------------------------------------------------

def test_the_systemwide_code_generator_takes_a_300_term_chain():
    from syscalltrack.engines.systemwide import codegen

    for filt in (or_chain(), and_chain()):
        plan = codegen.generate(load_rules(rule_text(filt)))
        assert plan.programs and all(p.instructions for p in plan.programs)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf() loads")
def test_the_kernel_runs_a_300_term_chain_as_python_does():
    support = str(Path(__file__).resolve().parents[1] / "systemwide")
    if support not in sys.path:
        sys.path.insert(0, support)
    from systemwide_support import Bench

    text = rule_text(or_chain()) + rule_text(and_chain()).replace("rule_name = r",
                                                                  "rule_name = s")
    rules = check_rules(text)
    with Bench(text) as bench:
        for dfd in (1, 150, N, N + 1, 0, -100):
            out = bench.run("unlinkat", [dfd, b"/tmp/x", 0])
            expected = next((i for i, r in enumerate(rules) if evaluate(r, dfd)), None)
            assert (out.rule, out.undecided) == (expected, False), dfd
            assert expected == (0 if 1 <= dfd <= N else 1), dfd
