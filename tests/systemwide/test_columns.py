"""Events built from a batch's columns equal the Events built from its rows.

`Records.decoded` turns a batch of one view into Events from the block's columns
(`EventView.columns`: each field vectorised over the records), and any other batch
row by row (`EventView.build`). For the system-wide engine's real views (every kind
of argument, both ABIs, before and after, undecided kinds) and arbitrary records,
both give the same items, value for value and type for type.
"""

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syscalltrack.bpf.ringbuf import RecordBlock, field_layout, in_ring
from syscalltrack.engines.systemwide import codegen
from syscalltrack.engines.systemwide.engine import NR_FIELD, RULE_KIND_FIELD, _Decoder
from syscalltrack.engines.systemwide.layout import KIND_EVENT, KIND_UNDECIDED, KIND_UNREADABLE
from syscalltrack.events.view import Records
from syscalltrack.rules import load_rules


def _rule(call: str, when: str = "before", filter_: str = "") -> str:
    filt = f"filter_expression {{{filter_}}}\n" if filter_ else ""
    return (f"rule\n{{\nsyscall_name = {call}\nrule_name = {call}_{when}\n{filt}"
            f"action\n{{\ntype = LOG\n}}\nwhen = {when}\n}}\n")


RULES = "".join([
    _rule("getppid"),
    _rule("unlink", filter_='PARAMS[1] != "/etc/passwd"'), _rule("unlink", "after"),
    _rule("open"), _rule("openat2", "after"), _rule("ftruncate"), _rule("connect"),
    _rule("accept", "after"), _rule("read", "after"), _rule("lseek"), _rule("execve"),
])


@pytest.fixture(scope="module")
def decoder():
    try:
        plan = codegen.generate(load_rules(RULES), window=4096, record_string=64, compat=True)
        return _Decoder(plan)
    except OSError as exc:  # (the credentials' offsets come from the kernel's BTF)
        pytest.skip(f"no BTF to lay out records with: {exc}")


def _views(decoder) -> list[tuple[int, int]]:
    """Every view's key: each (rule, call) as an event and as each undecided kind."""
    return sorted((rule | kind << 32, nr_word) for rule, nr_word in decoder.views.calls
                  for kind in (KIND_EVENT, KIND_UNDECIDED, KIND_UNREADABLE + 1))


def _value(code: str, size: int) -> st.SearchStrategy:
    if code == "s":  # a comm or a string slot: few distinct ones, NULs, any bytes
        return st.sampled_from([b"rm", b"getppid_loop\0\0\0", b"\0" * size, b"x" * size]).map(
            lambda b: b[:size].ljust(size, b"\0")) | st.binary(min_size=size, max_size=size)
    bits = 8 * size
    edges = [0, 1, 2, (1 << (bits - 1)) - 1, 1 << (bits - 1), (1 << bits) - 1, 255, 256]
    if code.islower():  # signed
        edges = [e - (1 << bits) if e >> (bits - 1) else e for e in edges] + [-1, -100]
        return st.sampled_from(edges) | st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return st.sampled_from(edges) | st.integers(0, (1 << bits) - 1)


@st.composite
def batches(draw, decoder):
    key = draw(st.sampled_from(_views(decoder)))
    fields = field_layout(decoder.struct)
    row = st.tuples(*(_value(code, size) for _, code, size in fields))
    rows = draw(st.lists(row, min_size=1, max_size=24))
    fixed = [list(r) for r in rows]
    for r in fixed:
        r[RULE_KIND_FIELD], r[NR_FIELD] = key
    return [tuple(r) for r in fixed]


def _shape(value):
    """A value with the type of everything in it, so Cut(b"a") differs from b"a"."""
    if isinstance(value, tuple):
        return type(value), tuple(map(_shape, value))
    return type(value), value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_events_from_columns_equal_events_from_rows(decoder, data):
    rows = data.draw(batches(decoder))
    layout = in_ring(decoder.struct)
    block = RecordBlock(b"".join(layout.pack(*r) for r in rows), layout)
    by_columns = Records(block, decoder.key_fields, decoder.views).decoded()
    by_rows = Records(list(rows), decoder.key_fields, decoder.views).decoded()
    assert list(map(_shape, by_columns)) == list(map(_shape, by_rows))


def test_a_batch_of_several_views_is_decoded_row_by_row(decoder):
    """(and equal to decoding each view's records alone)"""
    first, second = _views(decoder)[:2]
    fields = field_layout(decoder.struct)
    blank = [b"\0" * size if code == "s" else 0 for _, code, size in fields]
    rows = []
    for key in (first, second, first):
        row = list(blank)
        row[RULE_KIND_FIELD], row[NR_FIELD] = key
        rows.append(tuple(row))
    layout = in_ring(decoder.struct)
    block = RecordBlock(b"".join(layout.pack(*r) for r in rows), layout)
    items = Records(block, decoder.key_fields, decoder.views).decoded()
    one_by_one = [Records([r], decoder.key_fields, decoder.views).decoded()[0] for r in rows]
    assert items == one_by_one and len(items) == 3


def test_a_column_reads_what_the_rows_hold():
    layout = in_ring(struct.Struct("<QqIi4x6sH"))
    rows = [(2**64 - 1, -5, 7, -7, b"abc\0\0\0", 65535), (0, 2**63 - 1, 0, 2**31 - 1, b"z" * 6, 1)]
    block = RecordBlock(b"".join(layout.pack(*r) for r in rows), layout)
    assert [block.column(i) for i in range(6)] == [list(c) for c in zip(*rows, strict=True)]
    with pytest.raises(ValueError, match="whole number"):
        RecordBlock(b"\0" * (layout.size + 1), layout)
