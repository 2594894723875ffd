"""RuleSet: per-(call, when) lists in file order, modern variants, first-match dispatch."""

from __future__ import annotations

from pathlib import Path

from strategies import Context

from syscalltrack.rules import load_rules

RULES = """
rule
{
    syscall_name = unlink
    rule_name = classic
    action { type = LOG }
}
rule
{
    syscall_name = unlinkat
    rule_name = modern
    action { type = LOG }
}
rule
{
    syscall_name = unlink
    rule_name = exact
    exact_syscall = yes
    action { type = KILL }
}
rule
{
    syscall_name = unlink
    rule_name = afterwards
    filter_expression {RETVAL < 0}
    action { type = LOG }
    when = after
}
"""


def names(bound):
    return [(b.rule.name, b.variant.modern if b.variant else None) for b in bound]


def test_lists_hold_variants_in_file_order():
    rules = load_rules(RULES)
    assert names(rules.rules_for("unlink", "before")) == [("classic", None), ("exact", None)]
    assert names(rules.rules_for("unlinkat", "before")) == [
        ("classic", "unlinkat"), ("modern", None)]
    assert names(rules.rules_for("unlink", "after")) == [("afterwards", None)]
    assert rules.rules_for("rmdir", "before") == ()
    assert rules.watched("after") == {"unlink", "unlinkat"}


def test_variant_condition_tells_unlink_from_rmdir():
    (bound, _) = load_rules(RULES).rules_for("unlinkat", "before")
    assert bound.condition_holds((-100, 0, 0))
    assert not bound.condition_holds((-100, 0, 0x200))  # AT_REMOVEDIR: that is rmdir


def test_first_match_builds_each_variants_context_once():
    rules = load_rules(RULES)
    asked = []

    def context_for(variant):
        asked.append(variant)
        return None if variant is not None else Context((), {0: b"x"}, {})

    match = rules.first_match("unlinkat", "before", context_for)
    assert match.rule.rule.name == "modern"
    assert [v.modern if v else None for v in asked] == ["unlinkat", None]


def test_first_match_in_after_rules_sees_retval():
    rules = load_rules(RULES)
    failed = Context((), {}, {}, retval=-2)
    assert rules.first_match("unlink", "after", lambda v: failed).rule.rule.name == "afterwards"
    done = Context((), {}, {}, retval=0)
    assert rules.first_match("unlink", "after", lambda v: done) is None


def test_exact_syscall_is_printed_and_kept():
    rules = load_rules(RULES)
    assert "    exact_syscall = yes\n" in rules.text()
    assert load_rules(rules.text()).rules == rules.rules


def test_load_from_a_path(tmp_path: Path):
    path = tmp_path / "try.conf"
    path.write_text(RULES)
    assert len(load_rules(path)) == 4
