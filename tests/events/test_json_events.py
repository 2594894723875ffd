"""JSON lines: stable field names, one line per event, every byte restored."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syscalltrack.events import JSONEventError, SockAddr, Unreadable, from_json, to_json

FIELDS = ["time", "time_ns", "rule", "when", "action", "abi", "sid", "sname", "pid", "tid",
          "ppid", "uid", "euid", "suid", "gid", "egid", "sgid", "comm", "cwd", "retval", "args",
          "log_format"]


def test_article_event_as_json(make_event):
    event = make_event("unlink", [b"./dummy"], comm=b"rm", cwd=b"/tmp", rule="unlink_rule1",
                       action="LOG", paths={0: b"/tmp/dummy"},
                       log_format="%comm : %params delete by %euid --> %suid")
    obj = json.loads(to_json(event))
    assert list(obj) == FIELDS
    assert obj["time"] == "2023-11-14T22:13:20.123456Z"
    assert obj["time_ns"] == 1_700_000_000_123_456_789
    assert (obj["rule"], obj["when"], obj["action"]) == ("unlink_rule1", "before", "LOG")
    assert (obj["abi"], obj["sid"], obj["sname"]) == ("x86_64", 87, "unlink")
    assert (obj["comm"], obj["cwd"], obj["retval"]) == ("rm", "/tmp", None)
    assert obj["args"] == [{"name": "pathname", "type": "const char *", "kind": "path",
                            "raw": event.args[0], "value": "./dummy", "path": "/tmp/dummy"}]
    assert from_json(to_json(event)) == event


def test_invalid_utf8_is_base64_and_restored(make_event):
    event = make_event("unlink", [b"caf\xe9"], comm=b"\xff\xfe")
    obj = json.loads(to_json(event))
    assert obj["comm"] == {"base64": "//4="}
    assert obj["args"][0]["value"] == {"base64": "Y2Fm6Q=="}
    assert from_json(to_json(event)) == event


def test_every_value_type_round_trips(make_event):
    events = [
        make_event("execve", [b"/bin/ls", (b"ls", b"\xff"), None]),
        make_event("connect", [3, SockAddr(1, b"/run/\xff".decode("utf-8", "surrogateescape"),
                                           None, b"\x01\x00/run/\xff"), 110]),
        make_event("connect", [3, SockAddr(2, "10.0.0.1", 443, b"\x02\x00"), 16]),
        make_event("write", [1, Unreadable(0x1000), 5]),
        make_event("write", [1, b"abc", 3], abi="i386", retval=3, when="after"),
    ]
    for event in events:
        assert from_json(to_json(event)) == event


def test_one_ascii_line_even_with_control_characters(make_event):
    line = to_json(make_event("unlink", [b"a\nb\x1b[2J\xe2\x80\xae"], comm=b"\r"))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line.isascii()


@pytest.mark.parametrize("line", ["", "[]", "{}", '{"args": 3}', "not json"])
def test_garbage_is_rejected_with_one_error_type(line):
    with pytest.raises(JSONEventError):
        from_json(line)


def test_bad_base64_is_rejected(make_event):
    obj = json.loads(to_json(make_event("unlink", [b"x"])))
    obj["comm"] = {"base64": "!!"}
    with pytest.raises(JSONEventError):
        from_json(json.dumps(obj))


@settings(max_examples=200, deadline=None)
@given(comm=st.binary(max_size=16), cwd=st.one_of(st.none(), st.binary()), path=st.binary(),
       argv=st.lists(st.binary(), max_size=4), resolved=st.binary(), rule=st.text())
def test_arbitrary_bytes_round_trip(make_event, comm, cwd, path, argv, resolved, rule):
    event = make_event("execve", [path, tuple(argv), None], comm=comm, cwd=cwd,
                       paths={0: resolved}, rule=rule)
    line = to_json(event)
    assert "\n" not in line
    assert from_json(line) == event


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_event_round_trips(any_event, data):
    event = data.draw(any_event)
    assert from_json(to_json(event)) == event


def test_socket_addresses_decode_from_the_bytes_the_caller_passed():
    inet = bytes([2, 0, 0x1F, 0x90, 127, 0, 0, 1]) + bytes(8)
    assert SockAddr.decode(inet) == SockAddr(2, "127.0.0.1", 8080, inet)
    inet6 = bytes([10, 0, 0, 22]) + bytes(4) + bytes(15) + b"\x01" + bytes(4)
    assert SockAddr.decode(inet6) == SockAddr(10, "::1", 22, inet6)
    path = b"\x01\x00/run/x.sock\x00junk"
    assert SockAddr.decode(path) == SockAddr(1, "/run/x.sock", None, path)
    abstract = b"\x01\x00\x00name\x00with nul"
    assert SockAddr.decode(abstract).address == "@name\x00with nul"
    assert SockAddr.decode(b"\x02\x00\x00") == SockAddr(2, None, None, b"\x02\x00\x00")
    assert SockAddr.decode(b"\x11\x00abc") == SockAddr(17, None, None, b"\x11\x00abc")
    assert SockAddr.decode(b"") == SockAddr(0, None, None, b"")
