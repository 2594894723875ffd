"""An after rule on a call that never returns (exit, exit_group) could never act: refused
at check time with its position (it passed `sct check` and never fired, review)."""

import pytest

from syscalltrack.rules import RuleError, load_rules


def _rule(call: str, when: str) -> str:
    return (f"rule\n{{\nsyscall_name = {call}\nrule_name = r\naction\n{{\ntype = LOG\n}}\n"
            f"when = {when}\n}}\n")


@pytest.mark.parametrize("call", ["exit", "exit_group"])
def test_an_after_rule_on_a_call_that_never_returns_is_refused(call):
    with pytest.raises(RuleError) as caught:
        load_rules(_rule(call, "after"), filename="r.conf")
    assert str(caught.value) == (f"r.conf:9:8: error: {call} never returns: an after rule on "
                                 "it would never act (use when = before)")


@pytest.mark.parametrize("call", ["exit", "exit_group", "execve"])
def test_before_rules_on_them_and_after_rules_on_execve_are_fine(call):
    assert load_rules(_rule(call, "before")).rules
    assert load_rules(_rule("execve", "after")).rules
