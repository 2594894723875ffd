"""Rendering straight from records (EventView, Records) prints what rendering Events does."""

from __future__ import annotations

import weakref

from hypothesis import given, settings
from hypothesis import strategies as st
from view_support import record_of, view_of

from syscalltrack.events import Event, LogFormat, Lost, Undecided
from syscalltrack.events.event import NO_PATHS
from syscalltrack.events.format import LOG_MACROS
from syscalltrack.events.jsonfmt import for_view as json_for_view
from syscalltrack.events.jsonfmt import to_json
from syscalltrack.events.render import Renderer
from syscalltrack.events.view import EventView, Memo, Records, Template

KEY_FIELD = 0  # records are view_support's: the key first


literal = st.text(st.characters(codec="utf-8"), max_size=6)
formats = st.lists(st.one_of(literal, st.sampled_from(sorted(LOG_MACROS)).map(lambda m: "%" + m)),
                   max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), fmt=formats)
def test_a_format_for_a_view_prints_what_it_prints_for_the_event(any_event, data, fmt):
    event = data.draw(any_event)._replace(  # records carry no resolved paths
        paths=NO_PATHS, log_format=data.draw(st.one_of(st.none(), literal)))
    view = view_of(event)
    row = record_of(event)
    assert view.make(row) == event
    assert view.build([row, row]) == [event, event] and type(view.build([row])[0]) is Event
    undecided = view_of(event, undecided=3)
    assert undecided.build([row]) == [undecided.item(row)] == [Undecided(event.rule, 3, event)]
    log_format = LogFormat(fmt)
    assert log_format.for_view(view)(row) == log_format(event)
    assert json_for_view(view)(row) == to_json(event)


@settings(max_examples=50, deadline=None)
@given(data=st.data(), pid=st.integers(0, 2**40))
def test_time_and_ids_vary_per_record_while_constants_are_printed_once(any_event, data, pid):
    event = data.draw(any_event)._replace(paths=NO_PATHS)
    view = view_of(event)
    fmt = LogFormat("%time %pid %ruleid %sname %params %retval")
    render = fmt.for_view(view)
    other = event._replace(pid=pid, timestamp_ns=event.timestamp_ns + 1_500_000_000)
    assert render(record_of(other)) == fmt(other)
    assert render is fmt.for_view(view)  # compiled once per view


def test_lines_of_mixed_views_and_notices_keep_their_order(make_event):
    unlink = make_event("unlink", [b"/tmp/a\n"], rule="r1", pid=10)
    kill = make_event("kill", [5, 15], rule="r2", when="after", retval=0, pid=11)
    views = {1: view_of(unlink), 2: view_of(kill), 3: view_of(unlink, undecided=0)}
    rows = [record_of(unlink, 1), record_of(kill, 2), record_of(unlink, 3), record_of(kill, 2)]
    lost = Lost("r1", 0, 7)
    batch = Records(rows, (KEY_FIELD,), views, before=[kill], after=[lost])
    items = batch.stream_items()
    assert items[0] == kill and items[-1] == lost and len(batch) == 6
    assert isinstance(items[3], Undecided) and items[3].event == unlink
    for renderer in (Renderer(), Renderer(override="%pid %sname %params"), Renderer(json=True)):
        assert renderer.lines(batch) == [renderer(x) for x in items]
    assert batch.tail(2) == items[-2:] and batch.tail(6) == items and batch.tail(0) == []


def test_one_view_batches_take_the_fast_path_and_agree(make_event):
    event = make_event("unlink", [b"x"], rule="r", comm=b"evil\x1b[31m")
    view = view_of(event)
    rows = [record_of(event._replace(pid=p), 1) for p in range(50)]
    batch = Records(rows, (KEY_FIELD,), {1: view})
    renderer = Renderer()
    lines = renderer.lines(batch)
    assert lines == [renderer(e) for e in batch.stream_items()]
    assert batch.decoded() == [view.make(r) for r in rows] and len(batch.runs()) == 1
    assert lines[3] == 'syscall: 3[evil\\x1b[31m]: 87_unlink("x") (rule r)'


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.sampled_from([(1, 7), (1, 8), (2, 7)]), max_size=12))
def test_records_decode_in_order_whatever_runs_of_views_they_make(make_event, keys):
    """A batch of one view is built in one go, checked a key field at a time: records whose
    keys differ only in the second field, or only in the middle, must not pass for one."""
    events = {(1, 7): make_event("unlink", [b"/a"], rule="r1"),
              (1, 8): make_event("unlink", [b"/c"], rule="r1", when="after", retval=0),
              (2, 7): make_event("unlink", [b"/b"], rule="r2")}
    views = {key: view_of(event, undecided=0 if key == (2, 7) else None)
             for key, event in events.items()}
    rows = [(*record_of(events[key]._replace(pid=i), key[0]), key[1])
            for i, key in enumerate(keys)]
    second = len(record_of(events[(1, 7)]))  # the key's second field ends each record
    batch = Records(rows, (KEY_FIELD, second), views)
    expected = [views[key].item(row) for key, row in zip(keys, rows, strict=True)]
    assert batch.decoded() == expected and batch.stream_items() == expected
    runs = batch.runs()
    assert [row for _, run in runs for row in run] == rows
    assert all(views[batch.key(row)] is view for view, run in runs for row in run)


def test_memo_computes_each_value_once_and_stays_bounded():
    calls = []
    memo = Memo(lambda v: calls.append(v) or v * 2, size=3)
    assert [memo[1], memo[1], memo[2]] == [2, 2, 4] and calls == [1, 2]
    for v in range(10):
        assert memo[v] == v * 2
    assert len(memo) <= 3


def test_a_view_needs_one_expression_per_argument(make_event):
    event = make_event("kill", [5, 15])
    try:
        EventView(abi="x86_64", nr=62, name="kill", signature=event.signature, when="before",
                  rule="r", action="LOG", log_format=None, args=["r[0]"], values=["r[0]"],
                  fields={}, namespace={})
    except ValueError as e:
        assert "one args and one values expression per argument" in str(e)
    else:
        raise AssertionError("a view with missing argument expressions was accepted")


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text())
def test_template_keeps_any_literal_text_as_it_is(before, after):
    line = Template()
    line.text(before)
    line.expr("r[0]")
    line.text(after)
    namespace: dict = {}
    exec(f"def f(r):\n{line.prelude()}    return {line.body()}\n", namespace)
    assert namespace["f"]((7,)) == f"{before}7{after}"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 4), st.integers(0, 6), st.integers(0, 4), st.integers(-1, 16))
def test_last_keeps_the_end_of_the_batch_in_order(make_event, n_before, n_rows, n_after,
                                                  count):
    event = make_event("kill", [5, 15], rule="r")
    view = view_of(event)
    before = [Lost("r", 0, i + 1) for i in range(n_before)]
    after = [Lost("r", 0, 100 + i) for i in range(n_after)]
    rows = [record_of(event._replace(pid=p), 1) for p in range(n_rows)]
    batch = Records(rows, (KEY_FIELD,), {1: view}, before, after)
    items = batch.stream_items()
    assert batch.tail(count) == (items[-count:] if count > 0 else [])
    assert len(batch.last(max(count, 0))) == min(max(count, 0), len(items))


def test_what_renderers_compile_goes_with_the_view_or_the_renderer(make_event):
    """No cache keeps a renderer or a view alive: a daemon meets many readers and many
    rule sets over its life."""
    event = make_event("unlink", [b"x"], rule="r")
    view = view_of(event)
    undecided = view_of(event, undecided=0)
    batch = Records([record_of(event, 1), record_of(event, 2)], (KEY_FIELD,),
                    {1: view, 2: undecided})
    renderer = Renderer(override="%pid %comm")
    json_renderer = Renderer(json=True)
    assert len(renderer.lines(batch)) == len(json_renderer.lines(batch)) == 2
    gone = [weakref.ref(x) for x in (renderer, json_renderer)]
    del renderer, json_renderer
    assert [ref() for ref in gone] == [None, None]  # by reference counting: no cycle
    views = [weakref.ref(view), weakref.ref(undecided)]
    del batch, view, undecided
    assert [ref() for ref in views] == [None, None]


def test_constants_are_printed_with_the_engines_names_in_scope(make_event):
    event = make_event("kill", [5, 15], rule="r", uid=-1)
    view = EventView(
        abi=event.abi, nr=event.nr, name=event.name, signature=event.signature,
        when="before", rule="r", action="LOG", log_format=None, args=["r[0]", "r[1]"],
        values=["r[0]", "r[1]"], fields={"uid": "_NOT_READ", "comm": "b'x'"},
        namespace={"_NOT_READ": -1})
    assert LogFormat("%uid %comm %params").for_view(view)((5, 15)) == '-1 "x" 5, 15'
    try:
        view.names({"_NOT_READ": 0})
    except ValueError as e:
        assert "_NOT_READ" in str(e)
    else:
        raise AssertionError("a consumer's name shadowed the engine's")
