"""sctrace's text lines come from a format specialised per family of events (one rule on
one call); every line must be the one `Renderer` prints for the event."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from syscalltrack.cli.sctrace import _TextLines
from syscalltrack.events import Cut, Event, SockAddr, Unreadable
from syscalltrack.events.event import NO_PATHS
from syscalltrack.events.format import LOG_MACROS, Limits
from syscalltrack.events.render import Renderer
from syscalltrack.syscalls import ArgKind, table

SYSCALLS = sorted(table(), key=lambda sc: (sc.abi, sc.nr))
raw = st.integers(0, 2**64 - 1)
data = st.binary(max_size=40)
anything = st.one_of(
    st.none(), raw, st.integers(-(2**63), -1), data, data.map(Cut), st.builds(Unreadable, raw),
    st.lists(data, max_size=3).map(tuple),
    st.builds(SockAddr, st.sampled_from([1, 2, 10]), st.one_of(st.none(), st.just("::1")),
              st.one_of(st.none(), st.integers(0, 65535)), data))
TYPICAL = {ArgKind.PATH: st.one_of(data, data.map(Cut)), ArgKind.STRING: data,
           ArgKind.BUFFER: data, ArgKind.STRARRAY: st.lists(data, max_size=3).map(tuple)}
literal = st.text(st.characters(codec="utf-8"), max_size=5)
formats = st.lists(st.one_of(literal, st.sampled_from(sorted(LOG_MACROS)).map(lambda m: "%" + m)),
                   max_size=8).map("".join)
names = st.one_of(st.none(), st.sampled_from(["r", "deny", "log \u00e9", "x\ny"]))


@st.composite
def events(draw, sc=None):
    sc = sc or draw(st.sampled_from(SYSCALLS))
    values = tuple(draw(st.one_of(TYPICAL.get(a.kind, raw), anything)) for a in sc.args)
    args = tuple(draw(raw) for _ in sc.args)
    rule = draw(names)
    return Event(
        sc.abi, sc.nr, sc.name, sc.args, args, values,
        draw(st.integers(1, 2**22)), draw(st.integers(1, 2**22)), draw(st.integers(-1, 2**22)),
        *(draw(st.integers(-1, 2**32 - 1)) for _ in range(6)),
        draw(data), draw(st.integers(0, 2**62)), draw(st.sampled_from(["before", "after"])),
        rule, draw(st.one_of(st.none(), st.sampled_from(["LOG", "FAIL"]))),
        draw(st.one_of(st.none(), formats)), draw(st.one_of(st.none(), data)),
        draw(st.one_of(st.none(), st.integers(-(2**63), 2**64))),
        draw(st.one_of(st.just(NO_PATHS), st.dictionaries(st.integers(0, 5), data, max_size=2))))


@settings(max_examples=400, deadline=None)
@given(first=events(), more=st.data(), override=st.one_of(st.none(), formats),
       limits=st.sampled_from([Limits(), Limits(4, 2, 40), Limits(None, None, None)]))
def test_each_line_is_the_renderers(first, more, override, limits):
    render = Renderer(override=override, limits=limits)
    lines = _TextLines(render)
    assert lines(first) == render(first)
    assert lines(first) == render(first)  # the family compiled once, used again
    # Other events of the same family: the same constants, anything else varies.
    sc = table().by_nr(first.abi, first.nr)
    for _ in range(3):
        other = more.draw(events(sc))._replace(
            name=first.name, signature=first.signature, when=first.when, rule=first.rule,
            action=first.action, log_format=first.log_format)
        assert lines(other) == render(other)


def test_families_differ_by_rule_format_and_when():
    sc = table().by_name("unlink", "x86_64")
    base = Event("x86_64", sc.nr, sc.name, sc.args, (0x1000,), (b"/tmp/x",), 5, 5, -1,
                 -1, -1, -1, -1, -1, -1, b"rm", 1_700_000_000_000_000_000, "before", "r", "LOG")
    render = Renderer()
    lines = _TextLines(render)
    variants = [base, base._replace(log_format="%when %retval"),
                base._replace(when="after", retval=0, log_format="%when %retval"),
                base._replace(rule=None),
                base._replace(log_format="%comm %params %retval %path"),
                base._replace(log_format="%comm %params %retval %path", paths={0: b"/real/x"}),
                base._replace(rule="other", action="FAIL")]
    for _ in range(2):
        for event in variants:
            assert lines(event) == render(event), event
    assert len({lines(e) for e in variants}) == len(variants)
