"""No attacker-chosen byte can forge a log line or reach a terminal unescaped."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syscalltrack.events import LOG_MACROS, Event, LogFormat, Lost, Undecided, escape, quote
from syscalltrack.events.render import Renderer
from syscalltrack.syscalls import table

ARTICLE_UNLINK = "%comm : %params delete by %euid --> %suid"


@pytest.mark.parametrize(
    ("raw", "printed"),
    [
        (b"plain", "plain"),
        (b"a\nb", "a\\nb"),
        (b"\t\r", "\\t\\r"),
        (b'say "hi"', 'say \\"hi\\"'),
        (b"back\\slash", "back\\\\slash"),
        (b"\x00", "\\x00"),
        (b"\x1b[2J", "\\x1b[2J"),
        (b"\x7f", "\\x7f"),
        (b"\xff\x80", "\\xff\\x80"),
        ("é".encode(), "\\xc3\\xa9"),  # UTF-8 is escaped byte by byte
        (b"\xe2\x80\xae", "\\xe2\\x80\\xae"),  # RIGHT-TO-LEFT OVERRIDE
        (b" ~", " ~"),
    ],
)
def test_escape(raw, printed):
    assert escape(raw) == printed
    assert quote(raw) == f'"{printed}"'


def test_forged_syslog_line_stays_one_line(make_event):
    event = make_event("unlink", [b"a\n<13>syscalltrack: fake"], comm=b"rm")
    line = LogFormat(ARTICLE_UNLINK)(event)
    assert line == '"rm" : "a\\n<13>syscalltrack: fake" delete by 0 --> 0'


def test_terminal_escape_in_every_string_field(make_event):
    evil = b"\x1b[2J\x07"
    event = make_event("unlink", [evil], comm=evil, cwd=evil, paths={0: evil}, rule="r\x1b")
    line = LogFormat("%comm %barecomm %cwd %path %params %args %ruleid")(event)
    assert "\x1b" not in line and "\x07" not in line
    assert line.count("\\x1b[2J\\x07") == 6


def test_quotes_inside_values_cannot_close_the_string(make_event):
    event = make_event("unlink", [b'x" delete by 0 --> 0 "'], comm=b"rm")
    assert LogFormat(ARTICLE_UNLINK)(event) == \
        '"rm" : "x\\" delete by 0 --> 0 \\"" delete by 0 --> 0'


def test_cut_string_keeps_escapes_whole(make_event):
    assert quote(b"\n\n\n\n", limit=2) == '"\\n\\n"...'


# ---------------------------------------------------------------- property

SAFE_LINE = re.compile(r"[\x20-\x7e]*")
FORMAT_PIECES = st.lists(
    st.one_of(st.sampled_from(sorted(f"%{m}" for m in LOG_MACROS)),
              st.text(max_size=6)),
    max_size=8,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), fmt=FORMAT_PIECES)
def test_any_event_any_format_renders_one_printable_ascii_line(any_event, data, fmt):
    event = data.draw(any_event)
    line = LogFormat(fmt)(event)
    assert SAFE_LINE.fullmatch(line), line
    assert len(line) <= 1024


@given(st.binary())
def test_escape_is_printable_and_reversible(raw):
    printed = escape(raw)
    assert SAFE_LINE.fullmatch(printed)
    assert printed.encode("ascii").decode("unicode_escape").encode("latin-1") == raw



def test_notices_escape_what_a_process_controls():
    sig = table().lookup("unlink").args
    forged = Event("x86_64", 87, "unlink", sig, (1,), (b"x",), 1, 1, 0, 0, 0, 0, 0, 0, 0,
                   b"a\n<13>fake\x1b[2J", 0)
    text = Renderer()(Undecided("r", 0, forged))
    assert "\n" not in text and "\x1b" not in text
    assert text == "-- rule r undecided in the kernel for 1[a\\n<13>fake\\x1b[2J] " \
                   'unlink("x"): no action taken --'
    # the arguments, which say what the undecided call acted on, escaped as in log lines
    named = forged._replace(values=(b"/etc/\n<13>passwd\x1b[2J",))
    text = Renderer()(Undecided("r", 0, named))
    assert "\n" not in text and "\x1b" not in text
    assert 'unlink("/etc/\\n<13>passwd\\x1b[2J")' in text, text
    assert Renderer()(Lost("r", 0, 7)) == \
        "-- 7 events lost in the kernel (rule r: ring buffer full) --"
    assert json.loads(Renderer(json=True)(Lost("r", 0, 7)))["count"] == 7
