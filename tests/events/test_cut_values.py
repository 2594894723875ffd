"""A `Cut` value -- the start of a string an engine could not carry whole -- is marked in
every output: `"..."...` in text, `"cut": true` in JSON, on Events and on views alike."""

from __future__ import annotations

import json

import pytest
from view_support import record_of, view_of

from syscalltrack.events import (
    Cut,
    JSONEventError,
    Limits,
    LogFormat,
    format_params,
    format_value,
    from_json,
    to_json,
)
from syscalltrack.events.event import NO_PATHS
from syscalltrack.events.jsonfmt import for_view as json_for_view
from syscalltrack.events.jsonfmt import to_dict

START = b"/tmp/" + b"a" * 250  # what a 256-byte record keeps of a longer path


def test_a_cut_is_bytes_and_says_so():
    cut = Cut(START)
    assert isinstance(cut, bytes) and cut == START and cut.__class__ is Cut
    assert cut.startswith(b"/tmp/") and cut[:5] == b"/tmp/"
    with pytest.raises(AttributeError):
        cut.extra = 1  # no __dict__: as small as bytes


def test_a_cut_path_prints_dots_after_its_quotes_and_a_whole_one_does_not(make_event):
    cut = make_event("unlink", [Cut(START)], rule="r")
    whole = make_event("unlink", [START], rule="r")
    assert format_params(cut) == f'"{START.decode()}"...'
    assert format_params(whole) == f'"{START.decode()}"'
    assert format_params(cut, symbolic=True) == f'"{START.decode()}"...'
    assert LogFormat()(cut) == f'syscall: 876[mkdir]: 87_unlink("{START.decode()}"...) (rule r)'
    assert LogFormat()(whole).endswith(f'"{START.decode()}") (rule r)')


def test_a_cut_string_prints_dots_once_also_when_max_string_cuts_it(make_event):
    event = make_event("symlink", [Cut(b"h" * 255), b"/tmp/l"])  # oldname: a string
    assert format_value(event, 0, Limits(max_string=None)) == f'"{"h" * 255}"...'
    assert format_value(event, 0, Limits(max_string=8)) == '"hhhhhhhh"...'
    assert format_value(event, 0, symbolic=True) == f'"{"h" * 32}"...'
    assert format_value(make_event("symlink", [b"h" * 5, b"/tmp/l"]), 0) == '"hhhhh"'
    buffer = make_event("sethostname", [Cut(b"h" * 5), 5])
    assert format_value(buffer, 0) == '"hhhhh"...'


def test_a_cut_where_a_kind_expects_no_bytes_still_prints_dots(make_event):
    event = make_event("kill", [Cut(b"odd"), 9])  # _other's bytes branch
    assert format_params(event) == '"odd"..., 9'
    argv = make_event("execve", [b"/bin/sh", (b"sh", Cut(b"-c" + b"x" * 10))])
    assert format_value(argv, 1, Limits(max_string=None)) == f'["sh", "-c{"x" * 10}"...]'


def test_json_flags_a_cut_value_and_gives_it_back(make_event):
    event = make_event("unlink", [Cut(START)], paths={0: START})
    item = to_dict(event)["args"][0]
    assert list(item)[-3:] == ["value", "cut", "path"] and item["cut"] is True
    line = to_json(event)
    assert '"value":"' + START.decode() + '","cut":true' in line
    back = from_json(line)
    assert back == event and back.values[0].__class__ is Cut
    whole = make_event("unlink", [START])
    assert "cut" not in to_dict(whole)["args"][0]
    assert from_json(to_json(whole)).values[0].__class__ is bytes


def test_json_cut_on_what_is_no_byte_string_is_refused(make_event):
    obj = json.loads(to_json(make_event("kill", [12, 9])))
    obj["args"][0]["cut"] = True
    with pytest.raises(JSONEventError):
        from_json(json.dumps(obj))


@pytest.mark.parametrize("fmt", [None, "%time %comm %args %retval", "%sname(%params)"])
def test_a_view_renders_a_cut_as_its_event_does(make_event, fmt):
    event = make_event("unlink", [Cut(START)], rule="r", action="LOG", paths=NO_PATHS)
    view, row = view_of(event), record_of(event)
    log_format = LogFormat() if fmt is None else LogFormat(fmt)
    assert log_format.for_view(view)(row) == log_format(event)
    assert '"...' in log_format(event)
    assert json_for_view(view)(row) == to_json(event)
    assert '"cut":true' in json_for_view(view)(row)
    plain = event._replace(values=(START,))
    assert json_for_view(view)(record_of(plain)) == to_json(plain)
    assert '"cut"' not in to_json(plain)
