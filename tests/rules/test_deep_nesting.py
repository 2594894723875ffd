"""However deep an expression is nested -- unary operators, or chains of arithmetic the
grammar nests one level per operator -- it is refused as a RuleError at the expression's
position, never a RecursionError; and the parse cache leaves no temporary file behind.
Up to ~550 levels these used to crash pickling the tree for the cache (leaving an empty
`.rules-ast-*` file), beyond that the message pointed at 1:1."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syscalltrack.rules import RuleError, Unary, Var, load_rules, parse, source
from syscalltrack.rules.ast import MAX_DEPTH, Num, RuleFile


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source.cache_dir.cache_clear()
    yield tmp_path / "syscalltrack"
    source.cache_dir.cache_clear()


def rule_text(filter_: str) -> str:
    """An unlink rule whose filter starts at line 4, column 20."""
    return ("rule {\nsyscall_name = unlink\nrule_name = deep\n"
            f"filter_expression {{{filter_}}}\naction {{ type = LOG }}\n}}\n")


def deep_filter(kind: str, n: int) -> tuple[str, str]:
    """A filter nested `n` levels by `kind`, and the text of its outermost operator."""
    if kind in "-+~!":
        return kind * n + "(UID == 1)", kind
    if kind == "parenthesised":
        return "-(" * n + "UID" + ")" * n + " == 1", "=="
    return f" {kind} ".join(["UID"] * n) + " == 1", "=="


def refused_at(text: str, top: str) -> None:
    with pytest.raises(RuleError) as exc:
        load_rules(text, "deep.rules")
    (diag,) = exc.value.diagnostics
    assert diag.message == f"expression nested too deeply (more than {MAX_DEPTH} levels)"
    at = text.index(top, text.index("filter_expression {") + 19)
    assert (diag.file, diag.line, diag.col) == ("deep.rules", 4, at - text.rindex("\n", 0, at))


# The cache directory is shared by the examples: none may leave a file behind.
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["-", "+", "~", "!", "&", "|", "+", "-", "parenthesised"]),
       st.integers(MAX_DEPTH, 3000))
def test_deep_nesting_is_a_rule_error_at_the_expression(cache, kind, n):
    filt, top = deep_filter(kind, n)
    refused_at(rule_text(filt), top)
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".rules-ast-")]


@pytest.mark.parametrize("n", [450, 550, 700, 20000])
def test_the_depths_that_crashed(cache, n):
    for kind in "-+&|":
        filt, top = deep_filter(kind, n)
        refused_at(rule_text(filt), top)
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".rules-ast-")]


def test_a_rewrite_value_nested_too_deeply_is_refused_at_its_position(cache):
    text = ("rule {\nsyscall_name = kill\nrule_name = r\naction {\ntype = REWRITE\nparam = 2\n"
            f"value = {'-' * 600}1\n}}\n}}\n")
    with pytest.raises(RuleError) as exc:
        load_rules(text, "deep.rules")
    (diag,) = exc.value.diagnostics
    assert (diag.line, diag.col, diag.message) == (
        7, 9, f"expression nested too deeply (more than {MAX_DEPTH} levels)")


def test_parentheses_add_no_level_but_are_limited_too(cache):
    (rule,) = load_rules(rule_text("(" * MAX_DEPTH + "UID == 1" + ")" * MAX_DEPTH))
    assert rule.filter == load_rules(rule_text("UID == 1")).rules[0].filter
    for n in (MAX_DEPTH + 1, 20000):
        with pytest.raises(RuleError) as exc:
            load_rules(rule_text("(" * n + "UID == 1" + ")" * n), "deep.rules")
        (diag,) = exc.value.diagnostics
        assert (diag.line, diag.col, diag.message) == (
            4, 20 + MAX_DEPTH, f"parentheses nested too deeply (more than {MAX_DEPTH} levels)")
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".rules-ast-")]


def test_the_deepest_accepted_filter_is_unchanged(cache):
    filt = "-" * (MAX_DEPTH - 2) + "UID == 0"  # the unary chain and UID, under ==
    (rule,) = load_rules(rule_text(filt))
    node, levels = rule.filter.left, 1
    while isinstance(node, Unary):
        node, levels = node.operand, levels + 1
    assert isinstance(node, Var) and levels + 1 == MAX_DEPTH
    refused_at(rule_text("-" + filt), "==")


def test_a_cache_entry_that_cannot_be_pickled_leaves_no_file(cache):
    parse(rule_text("UID == 1"))  # makes the cache directory
    deep = Num(1)
    for _ in range(200_000):  # only a hand-built tree can be this deep now
        deep = Unary("-", deep)
    source._store(str(cache / "rules-ast-x.pickle"), RuleFile((), "x"))
    source._store(str(cache / "rules-ast-y.pickle"), deep)
    names = sorted(p.name for p in cache.iterdir() if "rules-ast-" in p.name)
    assert "rules-ast-x.pickle" in names and "rules-ast-y.pickle" not in names
    assert not [n for n in names if n.startswith(".")]
