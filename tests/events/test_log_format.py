"""log_format rendering: the article's and the manual's lines, every macro, limits."""

from __future__ import annotations

import functools
import re
import timeit
from datetime import UTC, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syscalltrack.events import (
    DEFAULT_FORMAT,
    LOG_MACROS,
    Limits,
    LogFormat,
    escape,
    unknown_macros,
)
from syscalltrack.syscalls import I386

ARTICLE_UNLINK = "%comm : %params delete by %euid --> %suid"
ARTICLE_PTRACE = "%comm : %params issued ptrace by %euid --> %suid"


def test_article_unlink_line(make_event):
    event = make_event("unlink", [b"./dummy"], comm=b"rm", rule="unlink_rule1", action="LOG")
    assert LogFormat(ARTICLE_UNLINK)(event) == '"rm" : "./dummy" delete by 0 --> 0'


def test_manual_default_format_line(make_event):
    event = make_event("mkdir", [b"foo", 0o775], abi=I386, pid=876, comm=b"mkdir", rule="1")
    assert LogFormat()(event) == 'syscall: 876[mkdir]: 39_mkdir("foo", 509) (rule 1)'
    assert LogFormat(DEFAULT_FORMAT)(event) == LogFormat()(event)


# strace's PTRACE_PEEKUSER with `data` a stack address of a 2002 i386 process.
@pytest.mark.parametrize(
    ("abi", "raw_data"),
    [(I386, 0xBFFFE718), ("x86_64", 0xFFFFFFFFBFFFE718)],
    ids=["i386-32bit-register", "x86_64-sign-extended"],
)
def test_article_ptrace_line_from_raw_registers(make_event, abi, raw_data):
    event = make_event("ptrace", [3, 2019, 24, raw_data], abi=abi, comm=b"strace")
    line = LogFormat(ARTICLE_PTRACE)(event)
    assert line == '"strace" : 3, 2019, 24, -1073748200 issued ptrace by 0 --> 0'


@pytest.fixture
def full_event(make_event):
    return make_event(
        "openat", [-100, b"etc/passwd", 0o2000000 | 0o100 | 1, 0o640],
        pid=4242, tid=4243, ppid=1000, uid=1, euid=2, suid=3, gid=4, egid=5, sgid=6,
        comm=b"cat", cwd=b"/", retval=3, when="after", rule="watch_passwd", action="LOG",
        paths={1: b"/etc/passwd"}, timestamp_ns=1_700_000_000_123_456_789,
    )


MACRO_EXPECTED = {
    "ruleid": "watch_passwd", "sid": "257", "sname": "openat",
    "params": 'AT_FDCWD, "etc/passwd", 524353, 416',
    "args": 'AT_FDCWD, "etc/passwd", O_WRONLY|O_CREAT|O_CLOEXEC, 0640',
    "pid": "4242", "tid": "4243", "ppid": "1000",
    "uid": "1", "euid": "2", "suid": "3", "gid": "4", "egid": "5", "sgid": "6",
    "comm": '"cat"', "barecomm": "cat", "retval": "3", "cwd": '"/"',
    "path": '"/etc/passwd"', "time": "2023-11-14T22:13:20.123456+00:00",
    "abi": "x86_64", "when": "after", "action": "LOG",
}


def test_every_macro_is_tested():
    assert set(MACRO_EXPECTED) == LOG_MACROS


@pytest.mark.parametrize("macro", sorted(MACRO_EXPECTED))
def test_macro(full_event, macro):
    assert LogFormat(f"<%{macro}>", tz=UTC)(full_event) == f"<{MACRO_EXPECTED[macro]}>"


def test_unknown_values_print_as_question_mark(make_event):
    event = make_event("unlink", [b"x"])  # before, no rule, no cwd, no resolved path
    assert LogFormat("%retval %cwd %path %ruleid %action")(event) == "? ? ? ? ?"


def test_time_in_a_fixed_zone_and_local(make_event):
    event = make_event("getpid", timestamp_ns=1_700_000_000_000_001_000)
    assert LogFormat("%time", tz=UTC)(event) == "2023-11-14T22:13:20.000001+00:00"
    plus_one = timezone(timedelta(hours=1))
    assert LogFormat("%time", tz=plus_one)(event) == "2023-11-14T23:13:20.000001+01:00"
    local = LogFormat("%time")(event)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000001[+-]\d\d:\d\d", local)


def test_time_follows_the_second(make_event):
    fmt = LogFormat("%time", tz=UTC)
    first = make_event("getpid", timestamp_ns=1_700_000_000_999_999_000)
    second = make_event("getpid", timestamp_ns=1_700_000_001_000_000_000)
    assert fmt(first) == "2023-11-14T22:13:20.999999+00:00"
    assert fmt(second) == "2023-11-14T22:13:21.000000+00:00"


def test_a_macro_is_the_whole_run_of_letters(make_event):
    event = make_event("mkdir", [b"d", 0o755], comm=b"mk")
    fmt = "%sid_%sname|%params|%barecomm|%comm|%pid1|%pidx|%param"
    assert LogFormat(fmt)(event) == '83_mkdir|"d", 493|mk|"mk"|8761|%pidx|%param'


def test_percent_and_unknown_words(make_event):
    event = make_event("getpid")
    fmt = "100%% %foo %%pid %% % trailing %_x %1 %"
    assert LogFormat(fmt)(event) == "100% %foo %pid % % trailing %_x %1 %"
    assert unknown_macros(fmt) == [(6, "%foo")]
    assert unknown_macros("%pid %bogus%sname %x") == [(5, "%bogus"), (18, "%x")]


def test_literal_text_keeps_quotes_but_not_control_characters(make_event):
    event = make_event("getpid")
    assert LogFormat('say "hi" \\ \n\t\x1b é')(event) == 'say "hi" \\ \\n\\t\\x1b \\xc3\\xa9'


def test_empty_format(make_event):
    assert LogFormat("")(make_event("getpid")) == ""


def test_record_cut_at_max_line(make_event):
    event = make_event("unlink", [b"a" * 100], comm=b"rm")
    fmt = LogFormat("%comm %params", Limits(max_line=20))
    line = fmt(event)
    assert line == '"rm" "aaaaaaaaaaa...'
    assert len(line) == 20
    assert LogFormat("%comm", Limits(max_line=4))(event) == '"rm"'  # fits exactly: not cut


def test_no_line_limit(make_event):
    event = make_event("unlink", [b"a" * 5000])
    line = LogFormat("%params", Limits(max_line=None))(event)
    assert line == '"' + "a" * 5000 + '"'


def test_limits_are_checked():
    with pytest.raises(ValueError):
        Limits(max_line=2)
    with pytest.raises(ValueError):
        Limits(max_string=-1)


def test_generated_source_is_readable():
    assert "str(e.pid)" in LogFormat("%pid").source


def test_render_cost(make_event, capsys):
    """Prints µs/line for the daemon's budget (~3 µs at 300k lines/s); asserts nothing on time."""
    events = {
        "unlink": make_event("unlink", [b"./dummy"], comm=b"rm", rule="unlink_rule1"),
        "openat": make_event("openat", [-100, b"/etc/passwd", 0o2000000, 0], comm=b"cat"),
    }
    with capsys.disabled():
        for fmt in (ARTICLE_UNLINK, DEFAULT_FORMAT, "%time %sname(%args) = %retval"):
            render = LogFormat(fmt)
            for name, event in events.items():
                n = 20_000
                cost = min(timeit.repeat(functools.partial(render, event), number=n, repeat=3)) / n
                print(f"\n  {cost * 1e6:6.2f} us/line  {name:7} {fmt}", end="")
        print()


WHOLE_ESCAPES = re.compile(r'(?:[^\\]|\\[nrt"\\]|\\x[0-9a-f]{2})*')


@settings(max_examples=300, deadline=None)
@given(comm=st.binary(max_size=40), max_line=st.integers(3, 60))
def test_record_cut_never_splits_an_escape(make_event, comm, max_line):
    line = LogFormat("%barecomm", Limits(max_line=max_line))(make_event("getpid", comm=comm))
    assert len(line) <= max_line
    kept = line[:-3] if line != escape(comm) else line
    assert WHOLE_ESCAPES.fullmatch(kept), line


def test_record_cut_backs_off_to_the_escape_start(make_event):
    def cut(comm, max_line):
        return LogFormat("%barecomm", Limits(max_line=max_line))(make_event("getpid", comm=comm))

    assert cut(b"ab\x1bcdef", 9) == "ab\\x1b..."
    assert cut(b"ab\x1bcdef", 7) == "ab..."
    four_backslashes = b"a" + b"\\" * 4  # printed as a and 8 backslashes
    assert cut(four_backslashes, 8) == "a" + "\\" * 4 + "..."
    assert cut(four_backslashes, 7) == "a" + "\\" * 2 + "..."
