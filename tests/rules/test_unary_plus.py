"""Unary `+` (the grammar's `ADD_OP unary`) leaves its operand as it is: in the evaluator,
in constants (`sct check`, REWRITE values, error codes) and printed and parsed again.
It used to negate in the evaluator and to crash constant folding with KeyError '+'."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st
from strategies import Context

from syscalltrack.rules import check_rules, load_rules, rules_text
from syscalltrack.rules.values import const_value

SCT = [sys.executable, "-m", "syscalltrack.cli.sct"]
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)


def kill_rule(filter_: str, action: str = "type = LOG") -> str:
    return (f"rule {{\nsyscall_name = kill\nrule_name = r\nfilter_expression {{{filter_}}}\n"
            f"action {{ {action} }}\n}}\n")


def matches(filter_: str, *args: int, uid: int = 0) -> bool:
    (bound,) = load_rules(kill_rule(filter_)).rules_for("kill", "before")
    return bound.filter.evaluate(Context(args, {}, {}, uid=uid))


@given(INT64, INT64)
def test_plus_of_an_argument_is_the_argument(pid, sig):
    sig = (sig + (1 << 31)) % (1 << 32) - (1 << 31)  # an int, as the call sees it
    assert matches(f"+PARAMS[2] == {sig}", pid, sig)
    assert matches(f"PARAMS[2] == +{abs(sig)}", pid, abs(sig))
    assert not matches(f"+PARAMS[2] == {sig}", pid, sig + 1)
    assert matches("-+PARAMS[2] == -(PARAMS[2])", pid, sig)
    assert matches("+(PARAMS[1] + 1) == PARAMS[1] + 1", pid, sig)


def test_plus_of_a_condition_and_of_a_credential():
    assert matches("+(UID == 0) == 1", 1, 2, uid=0)
    assert not matches("+UID == 0", 1, 2, uid=1000)
    assert matches("+UID == 1000", 1, 2, uid=1000)


@given(INT64)
def test_plus_of_a_constant_folds_to_the_constant(value):
    text = kill_rule(f"PARAMS[2] == +({value})")
    (rule,) = check_rules(text)
    assert const_value(rule.filter.right) == value
    (bound,) = load_rules(text).rules_for("kill", "before")
    assert bound.filter.evaluate(Context((1, value), {}, {}))
    assert not bound.filter.evaluate(Context((1, value ^ 1), {}, {}))


def test_rewrite_value_and_error_code_take_a_plus():
    (rewrite,) = check_rules(kill_rule("1", "type = REWRITE\nparam = 2\nvalue = +1"))
    assert const_value(rewrite.action.value) == 1  # sctrace writes this into the register
    (fail,) = check_rules(kill_rule("1", "type = FAIL\nerror_code = +EPERM"))
    assert fail.action.error_code.value == -1
    (five,) = check_rules(kill_rule("1", "type = FAIL\nerror_code = +5"))
    assert five.action.error_code.value == 5


def test_sct_check_accepts_plus(tmp_path):
    path = tmp_path / "plus.rules"
    path.write_text(kill_rule("PARAMS[2] == +15"))
    done = subprocess.run([*SCT, "check", str(path)], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    assert "1 rule OK" in done.stdout


@given(st.lists(st.sampled_from("+-~!"), min_size=1, max_size=6), st.integers(0, 99))
def test_printed_plus_parses_back_equal_and_means_the_same(ops, value):
    filt = "".join(ops) + f"PARAMS[2] == +{value}"
    rules = check_rules(kill_rule(filt))
    text = rules_text(rules)
    again = check_rules(text)
    assert again == rules and rules_text(again) == text
    (printed,) = (line.strip()[len("filter_expression {"):-1] for line in text.splitlines()
                  if line.strip().startswith("filter_expression"))
    assert "+" in printed
    for sig in (value, -value, ~value, 0, 1):
        assert matches(printed, 1, sig) == matches(filt, 1, sig)
