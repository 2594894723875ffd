"""One test per error class: the exact message and where it points."""

from __future__ import annotations

import pytest

from syscalltrack.rules import RuleError, check_rules, load_rules


def rule(body: str = "", syscall: str = "unlink", when: str = "before",
         action: str = "action {\n        type = LOG\n    }") -> str:
    """A rule whose `body` lines start at line 5 (after syscall_name and rule_name)."""
    return (f"rule\n{{\n    syscall_name = {syscall}\n    rule_name = r1\n{body}    {action}\n"
            f"    when = {when}\n}}\n")


def fail(code: str) -> str:
    return f"action {{\n        type = FAIL\n        error_code = {code}\n    }}"


def log(fmt: str) -> str:
    return f"action {{\n        type = LOG\n        log_format {{{fmt}}}\n    }}"


def filt(expr: str) -> str:
    return f"    filter_expression {{{expr}}}\n"


CASES = {
    "syntax error: missing '='": (
        "rule\n{\n    syscall_name unlink\n}\n",
        "3:18: unexpected 'unlink'; expected '='"),
    "syntax error: unexpected end of file": (
        "rule\n{\n    rule_name = r1\n",
        "4:1: unexpected end of file; expected a key (syscall_name, rule_name, "
        "filter_expression, action, when, exact_syscall) or '}'"),
    "syntax error: missing operand": (
        rule(filt("PARAMS[1] == ")),
        "5:37: unexpected '}'; expected an expression"),
    "syntax error: stray character": (
        rule(filt("UID == 0 @ 1")),
        "5:33: unexpected character '@'; expected an operator or '}'"),
    "unknown key, close to a known one": (
        rule("    sycall_name = unlink\n"),
        "5:5: unknown key 'sycall_name' in rule; did you mean 'syscall_name'?"),
    "unknown key": (
        rule("    colour = blue\n"),
        "5:5: unknown key 'colour' in rule; expected one of syscall_name, rule_name, "
        "filter_expression, action, when, exact_syscall"),
    "unknown key in action": (
        rule(action="action {\n        type = LOG\n        colour = blue\n    }"),
        "7:9: unknown key 'colour' in action; expected one of type, error_code, log_format, "
        "param, value"),
    "duplicate key": (
        rule("    when = after\n"),
        "9:5: duplicate key 'when' (already given at line 5)"),
    "missing required keys": (
        "rule\n{\n    when = before\n}\n",
        "1:1: rule has no syscall_name, no rule_name and no action"),
    "missing action type": (
        rule(action="action {\n        error_code = -1\n    }"),
        "5:5: action has no type; expected type = LOG, FAIL, KILL, SUSPEND or REWRITE"),
    "unknown action type": (
        rule(action="action {\n        type = LOGG\n    }"),
        "6:16: unknown action type 'LOGG'; expected LOG, FAIL, KILL, SUSPEND or REWRITE"),
    "bad when": (
        rule(when="later"),
        "8:12: when must be 'before' or 'after', not 'later'"),
    "unknown system call": (
        "rule\n{\n    syscall_name = unlnk\n    rule_name = r1\n    action { type = LOG }\n}\n",
        "3:20: unknown system call 'unlnk'; did you mean 'unlink'?"),
    "PARAMS beyond the arguments": (
        rule(filt("PARAMS[2] == 0")),
        "5:24: PARAMS[2] is out of range: unlink has 1 argument (pathname)"),
    "PARAMS beyond ptrace's arguments": (
        rule(filt("PARAMS[5] == 0"), syscall="ptrace"),
        "5:24: PARAMS[5] is out of range: ptrace has 4 arguments (request, pid, addr, data)"),
    "PARAMS[0]": (
        rule(filt("PARAMS[0] == 0"), syscall="ptrace"),
        "5:24: PARAMS[0] is out of range: ptrace has 4 arguments (request, pid, addr, data); "
        "arguments count from 1"),
    "string argument compared with an integer": (
        rule(filt("PARAMS[1] == 0")),
        "5:34: cannot compare string PARAMS[1] (const char *pathname) with integer 0"),
    "integer argument compared with a string": (
        rule(filt('PARAMS[2] == "x"'), syscall="open"),
        '5:34: cannot compare integer PARAMS[2] (int flags) with string "x"'),
    "RETVAL in a before rule": (
        rule(filt("RETVAL == 0")),
        "5:24: RETVAL is only known after the call, but this rule runs before it "
        "(when = before)"),
    "FAIL in an after rule": (
        rule(action=fail("-1"), when="after"),
        "6:16: FAIL in an after rule: the call has already run (use when = before)"),
    "unknown errno name": (
        rule(action=fail("-EPRM")),
        "7:22: unknown errno name 'EPRM'; did you mean 'EPERM'?"),
    "FAIL without error_code": (
        rule(action="action {\n        type = FAIL\n    }"),
        "5:5: FAIL needs an error_code, such as error_code = -EPERM"),
    "error_code on LOG": (
        rule(action="action {\n        type = LOG\n        error_code = -1\n    }"),
        "7:22: error_code is only for FAIL actions, not LOG"),
    "unknown user": (
        rule(filt('UID == usernametoid("no_such_user")')),
        '5:44: unknown user \'no_such_user\' in usernametoid("no_such_user")'),
    "unknown group": (
        rule(filt('GID == groupnametoid("no_such_group")')),
        '5:45: unknown group \'no_such_group\' in groupnametoid("no_such_group")'),
    "unknown constant": (
        rule(filt("PARAMS[2] & O_CRAET"), syscall="open"),
        "5:36: unknown constant 'O_CRAET'; did you mean 'O_CREAT'?"),
    "PATH of a non-path argument": (
        rule(filt('PATH[2] == "/x"'), syscall="open"),
        "5:24: PATH[2] needs a path argument, but argument 2 of open is int flags"),
    "unknown log_format macro": (
        rule(action=log("%comm did %sname to %parms")),
        "7:41: unknown macro '%parms' in log_format; valid macros are %ruleid %sid %sname "
        "%params %pid %uid %euid %suid %gid %egid %sgid %comm %retval %cwd %ppid %tid %time "
        "%path %args %abi %when %action %barecomm"),
    "%retval in a before rule": (
        rule(action=log("%comm got %retval")),
        "7:31: %retval is only known after the call, but this rule runs before it "
        "(when = before)"),
    "REWRITE value of the wrong type": (
        rule(syscall="open", action="action { type = REWRITE  param = 1  value = 7 }"),
        "5:49: REWRITE value for argument 1 (const char *filename) must be a string"),
    "REWRITE param beyond the arguments": (
        rule(action="action { type = REWRITE  param = 2  value = 7 }"),
        "5:38: param 2 is out of range: unlink has 1 argument (pathname)"),
    "REWRITE in an after rule": (
        rule(action='action { type = REWRITE  param = 1  value = "/x" }', when="after"),
        "5:21: REWRITE in an after rule: the call has already run (use when = before)"),
    "param on a non-REWRITE action": (
        rule(action="action { type = KILL  param = 1 }"),
        "5:35: param is only for REWRITE actions, not KILL"),
    "unknown string escape": (
        rule(filt('PARAMS[1] == "a\\qb"')),
        "5:39: unknown escape '\\q' in string"),
    "bad octal number": (
        rule(filt("PARAMS[2] == 0789"), syscall="open"),
        "5:37: invalid octal number '0789' (a leading 0 means octal)"),
    "number beyond 64 bits": (
        rule(filt("UID == 0x10000000000000000")),
        "5:31: number 0x10000000000000000 does not fit in 64 bits"),
    "string operator on an integer": (
        rule(filt('PARAMS[2] glob "*"'), syscall="open"),
        "5:34: 'glob' needs a string on its left, but PARAMS[2] (int flags) is an integer"),
    "pattern that is not a constant": (
        rule(filt("PARAMS[1] startswith COMM")),
        "5:45: 'startswith' needs a string constant on its right, not COMM"),
    "non-constant in list": (
        rule(filt("PARAMS[2] in (1, PARAMS[3])"), syscall="open"),
        "5:41: the items of 'in' must be constants"),
    "ordering strings": (
        rule(filt('COMM < "a"')),
        "5:24: '<' compares integers only, but COMM is a string"),
    "a string as the whole filter": (
        rule(filt("COMM")),
        "5:24: filter_expression must be a condition, but COMM is a string"),
    "unknown function": (
        rule(filt('UID == uidof("root")')),
        "5:31: unknown function 'uidof'; expected usernametoid, groupnametoid, ipaddr or htons"),
    "bad IPv4 address": (
        rule(filt('UID == ipaddr("300.0.0.1")')),
        "5:38: invalid IPv4 address '300.0.0.1' in ipaddr(\"300.0.0.1\")"),
    "PARAMS without index": (
        rule(filt("PARAMS == 1")),
        "5:24: PARAMS needs an argument number, as in PARAMS[1]"),
    "bad exact_syscall": (
        rule("    exact_syscall = maybe\n"),
        "5:21: exact_syscall must be 'yes' or 'no', not 'maybe'"),
    "empty rule_name": (
        "rule\n{\n    syscall_name = unlink\n    rule_name =\n    action { type = LOG }\n}\n",
        "4:15: rule_name needs a value"),
}


@pytest.mark.parametrize("text, expected", CASES.values(), ids=CASES.keys())
def test_error_message_and_position(text, expected):
    with pytest.raises(RuleError) as info:
        check_rules(text, "try.conf")
    assert str(info.value) == f"try.conf:{expected.split(': ', 1)[0]}: error: " \
                              f"{expected.split(': ', 1)[1]}"
    (diagnostic,) = info.value.diagnostics
    line, col = expected.split(":")[:2]
    assert (diagnostic.file, diagnostic.line, diagnostic.col) == ("try.conf", int(line), int(col))


def test_every_error_of_a_file_is_reported_in_file_order():
    text = (rule(filt("PARAMS[2] == 0")) + rule(action=fail("-EPRM"))
            + "rule\n{\n    syscall_name = unlnk\n    rule_name = r3\n"
            "    action { type = LOG }\n}\n")
    with pytest.raises(RuleError) as info:
        load_rules(text, "try.conf")
    assert str(info.value).splitlines() == [
        "try.conf:5:24: error: PARAMS[2] is out of range: unlink has 1 argument (pathname)",
        "try.conf:17:22: error: unknown errno name 'EPRM'; did you mean 'EPERM'?",
        "try.conf:23:20: error: unknown system call 'unlnk'; did you mean 'unlink'?",
    ]


def test_deep_nesting_is_a_rule_error():
    for expr in ("(" * 3000 + "1" + ")" * 3000, "!" * 3000 + "1", "-" * 60 + "UID == 1"):
        with pytest.raises(RuleError):
            check_rules(rule(filt(expr)))


def test_invalid_utf8_is_a_rule_error():
    with pytest.raises(RuleError, match=r"^try.conf:2:3: error: the file is not valid UTF-8$"):
        load_rules(b"rule\n{ \xff }", "try.conf")


def test_validator_and_formatter_know_the_same_macros():
    from syscalltrack.events.format import LOG_MACROS
    from syscalltrack.rules import MACROS

    assert MACROS == LOG_MACROS


def test_validator_and_formatter_share_the_default_format():
    from syscalltrack.events.format import DEFAULT_FORMAT
    from syscalltrack.rules import DEFAULT_LOG_FORMAT

    assert DEFAULT_LOG_FORMAT == DEFAULT_FORMAT
