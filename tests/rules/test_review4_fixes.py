"""Session-4 review findings in the rule language: the most negative error_code is called
what it is (not an errno), and a file with CR-only line endings is told so."""

import pytest

from syscalltrack.rules import RuleError, load_rules

RULE = ("rule\n{{\nsyscall_name = unlink\nrule_name = r\naction {{\ntype = FAIL\n"
        "error_code = {code}\n}}\nwhen = before\n}}\n")


def error_of(text: str) -> str:
    with pytest.raises(RuleError) as err:
        load_rules(text, filename="f.rules")
    return str(err.value)


def test_the_most_negative_error_code_is_not_an_errno():
    assert error_of(RULE.format(code="-9223372036854775808")).startswith(
        "f.rules:7:14: error: error_code -9223372036854775808 is not an errno")


def test_a_positive_error_code_past_int64_does_not_fit():
    assert error_of(RULE.format(code="9223372036854775808")) == (
        "f.rules:7:14: error: error_code 9223372036854775808 does not fit in a signed "
        "64-bit return value")


def test_cr_only_line_endings_are_named():
    text = RULE.format(code="-1").replace("\n", "\r")
    assert error_of(text) == ("f.rules:1:5: error: the lines end with CR alone (old Mac "
                              "style); convert the file to LF or CRLF line endings")
    assert len(load_rules(RULE.format(code="-1").replace("\n", "\r\n")).rules) == 1
