"""Rule errors a review found crashing or slipping through: now `FILE:LINE:COL: error: ...`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from syscalltrack.rules import RuleError, check_rules

SCT = [sys.executable, "-m", "syscalltrack.cli.sct"]


def rule(filter_: str = "", action: str = "type = LOG") -> str:
    """An unlink rule; its filter, if any, is line 5, and its action comes next."""
    filt = f"    filter_expression {{{filter_}}}\n" if filter_ else ""
    return (f"rule\n{{\n    syscall_name = unlink\n    rule_name = r\n{filt}"
            f"    action {{ {action} }}\n}}\n")


def sct_check(tmp_path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "test.rules"
    path.write_text(text)
    return subprocess.run([*SCT, "check", str(path)], capture_output=True, text=True,
                          cwd=tmp_path)


@pytest.mark.parametrize("literal, col", [
    (r'"a\x4"', 39),
    (r'"a\x"', 39),
    (r'"a\xg1"', 39),
    (r'"\x41\x4"', 42),
])
def test_hex_escape_without_two_hex_digits_is_a_rule_error(tmp_path, literal, col):
    result = sct_check(tmp_path, rule(f"PARAMS[1] == {literal}"))
    assert result.returncode == 1
    assert result.stderr == (f"{tmp_path / 'test.rules'}:5:{col}: error: "
                             "'\\x' needs two hex digits, as in \\x41\n")


def test_error_code_below_the_errno_range_is_a_rule_error(tmp_path):
    result = sct_check(tmp_path, rule(action="type = FAIL  error_code = -5000"))
    assert result.returncode == 1
    assert result.stderr == (
        f"{tmp_path / 'test.rules'}:5:40: error: error_code -5000 is not an errno: a negative "
        "error_code is -1 to -4095 (or a name, such as -EACCES); 0 pretends success, a "
        "positive number is returned as is\n")


def fail_result(code: str) -> int:
    """What a FAIL rule with `error_code = code` makes the call return."""
    (checked,) = check_rules(rule(action=f"type = FAIL  error_code = {code}"))
    return checked.action.error_code.value


def test_error_code_takes_errnos_zero_and_positive_results_only():
    assert [fail_result(code) for code in ("-1", "-EACCES", "EACCES", "-4095", "0", "5000")] \
        == [-1, -13, -13, -4095, 0, 5000]
    for code in ("-4096", "-70000", "-0x1000"):
        with pytest.raises(RuleError, match="is not an errno"):
            fail_result(code)
