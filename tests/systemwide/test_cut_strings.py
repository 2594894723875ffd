"""Strings longer than the record: the system-wide engine says they are cut.

A record carries the first ``record_string`` (256) bytes of each string with
its whole length; a longer string arrives as a ``Cut`` of 255 bytes, which
every output marks (``"..."...`` in text, ``"cut": true`` in JSON) -- on the
Events and on the daemon's lines rendered straight from the records.
"""

from __future__ import annotations

import json
import os

import pytest
from systemwide_support import long_path, rule

from syscalltrack.engines.systemwide import SystemwideEngine
from syscalltrack.events import Cut, Event, LogFormat, from_json, to_json
from syscalltrack.events.render import Renderer
from syscalltrack.rules import load_rules

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf() and tracefs")
SAFETY_POLL = 5.0
RECORD = 256  # SystemwideEngine's default record_string


def unlink_and_collect(text: str, paths: list[str]):
    """Unlink each path (they do not exist: ENOENT, after the rules fired); the batch."""
    with SystemwideEngine(load_rules(text)).load() as engine:
        for p in paths:
            with pytest.raises(FileNotFoundError):
                os.unlink(p)
        batch = engine.poll_records(SAFETY_POLL)
        while engine.pending():
            batch.rows.extend(engine.poll_records(0).rows)
    return batch


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("by", ["path", "pid"])  # the filter reads the string, or not
def test_a_path_longer_than_the_record_is_a_cut_in_every_output(work, when, by):
    filt = f'PARAMS[1] startswith "{work}/"' if by == "path" else f"PID == {os.getpid()}"
    long, whole = long_path(work, 4031), long_path(work, RECORD - 1)
    batch = unlink_and_collect(rule("long", "unlink", filt, when=when), [long, whole])
    items = [x for x in batch.stream_items()
             if isinstance(x, Event) and x.values[0].startswith(f"{work}/".encode())]
    assert len(items) == 2
    cut, full = items

    assert cut.values[0].__class__ is Cut
    assert cut.values[0] == long.encode()[:RECORD - 1] and len(cut.values[0]) == RECORD - 1
    assert full.values[0].__class__ is bytes and full.values[0] == whole.encode()

    line = Renderer()(cut)
    assert f'("{long[:RECORD - 1]}"...)' in line
    assert f'("{whole}")' in Renderer()(full)
    args = LogFormat("%args")(cut)
    assert args.startswith(f'"{long[:RECORD - 1]}"...')

    obj = json.loads(to_json(cut))
    assert obj["args"][0]["cut"] is True and obj["args"][0]["value"] == long[:RECORD - 1]
    assert "cut" not in json.loads(to_json(full))["args"][0]
    back = from_json(to_json(cut))
    assert back == cut and back.values[0].__class__ is Cut
    assert from_json(to_json(full)).values[0].__class__ is bytes

    # The daemon's path: lines straight from the records, per view.
    for renderer in (Renderer(), Renderer(override="%sname(%args) = %retval"),
                     Renderer(json=True)):
        lines = renderer.lines(batch)
        assert lines == [renderer(x) for x in batch.stream_items()]
        assert renderer(cut) in lines and renderer(full) in lines


def test_a_string_of_record_size_is_cut_by_one_byte(work):
    """256 bytes and the NUL do not fit 256: the last byte is cut, and said to be."""
    path = long_path(work, RECORD)
    batch = unlink_and_collect(rule("edge", "unlink", f'PARAMS[1] startswith "{work}/"'),
                               [path])
    (event,) = [x for x in batch.stream_items() if isinstance(x, Event)]
    assert event.values[0].__class__ is Cut and event.values[0] == path.encode()[:-1]
    assert Renderer(json=True).lines(batch) == [to_json(event)]
