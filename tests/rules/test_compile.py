"""Compiled filters: the documented semantics, what they read, their integer-only form, speed."""

from __future__ import annotations

import timeit

import pytest
from strategies import Context

from syscalltrack.rules import ArgTest, check_rules, compile_filter
from syscalltrack.syscalls import table


def compiled(expr: str, syscall: str = "open"):
    text = (f"rule\n{{\n    syscall_name = {syscall}\n    rule_name = r\n"
            f"    filter_expression {{{expr}}}\n    action {{ type = LOG }}\n}}\n")
    (rule,) = check_rules(text)
    return compile_filter(rule.filter, table().lookup(syscall).args)


def ctx(*args, strings=None, paths=None, **kw):
    return Context(tuple(args), strings or {}, paths or {}, **kw)


@pytest.mark.parametrize("expr, expected", [
    ('PARAMS[1] == "/etc/passwd"', False),
    ('PARAMS[1] != "/etc/passwd"', True),
    ('PARAMS[1] ~= ""', False),
    ('PARAMS[1] startswith ""', False),
    ('PARAMS[1] glob "*"', False),
    ('PARAMS[1] in ("", "x")', False),
    ("PARAMS[1] == PATH[1]", False),
    ("PARAMS[1] != PATH[1]", True),
])
def test_string_tests_on_absent_strings(expr, expected):
    assert compiled(expr).evaluate(ctx(0, 0, 0)) is expected


@pytest.mark.parametrize("expr", [
    "PARAMS[1] == 0xffffffffffffffff",  # unsigned long reads as signed 64-bit
    "PARAMS[1] == -1",
    "PARAMS[1] < 0",
    "0x7fffffffffffffff + 1 == -0x8000000000000000",
    "-(-0x8000000000000000) == -0x8000000000000000",
    "~0 == -1",
    "(1 == 1) + (2 > 1) == 2",
    "ipaddr(\"127.0.0.1\") == 0x0100007f && htons(7) == 0x0700",
])
def test_integer_semantics(expr):
    assert compiled(expr, "mmap").evaluate(ctx((1 << 64) - 1, 0, 0, 0, 0, 0))


def test_glob_and_substring():
    f = compiled('PATH[1] glob "/etc/*wd" && PARAMS[1] ~= "pass" && COMM endswith "m"')
    assert f.evaluate(ctx(0, 0, 0, strings={0: b"./passwd"}, paths={0: b"/etc/passwd"}))
    assert not f.evaluate(ctx(0, 0, 0, strings={0: b"./passwd"}, paths={0: b"/tmp/passwd"}))


def test_what_a_filter_reads():
    f = compiled('PARAMS[1] == "/x" && PATH[1] != "/y" && PARAMS[2] & O_CREAT && CWD == "/"'
                 " && UID == 0")
    assert (f.strings, f.paths, f.args) == ({0}, {0}, {1})
    assert f.variables == {"CWD", "UID"} and f.needs_cwd and not f.integer_only
    assert f.arg_conditions is None


def test_integer_only_filters_as_argument_tests():
    f = compiled("PARAMS[2] & O_CREAT && !(PARAMS[3] in (0644, 0600)) || 5 < PARAMS[2]")
    assert f.integer_only
    assert f.arg_conditions == (
        (ArgTest(1, "!=", 0, 0o100), ArgTest(2, "!=", 0o600), ArgTest(2, "!=", 0o644)),
        (ArgTest(1, ">", 5),),
    )
    assert compiled("1").always and compiled("1").arg_conditions == ((),)
    assert compiled("0").arg_conditions == ()
    assert compiled("PARAMS[2] + 1 > 5").integer_only
    assert compiled("PARAMS[2] + 1 > 5").arg_conditions is None


def test_no_filter_always_matches():
    f = compile_filter(None, table().lookup("unlink").args)
    assert f.always and f.evaluate(ctx())


def test_evaluation_cost():
    """Printed, not asserted: the article's prevent_delete filter on one call."""
    f = compiled('PARAMS[1] == "/etc/passwd" && UID == 0', "unlink")
    call = ctx(strings={0: b"/etc/passwd"}, uid=0)
    runs = 200_000
    seconds = min(timeit.repeat(lambda: f.evaluate(call), number=runs, repeat=3))
    flags = compiled("PARAMS[2] & O_CREAT == O_CREAT && PARAMS[3] in (0644, 0600)")
    call2 = ctx(0, 0o101, 0o644)
    seconds2 = min(timeit.repeat(lambda: flags.evaluate(call2), number=runs, repeat=3))
    print(f"\nfilter evaluation: {seconds / runs * 1e6:.2f} us (prevent_delete), "
          f"{seconds2 / runs * 1e6:.2f} us (open flags and mode)")
