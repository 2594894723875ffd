"""A view over simple records, for tests that render the same event from an Event and from
a record: a record is the key, the event's variable fields, its args, then its values."""

from __future__ import annotations

from syscalltrack.events import Event
from syscalltrack.events.view import VARIABLE_FIELDS, EventView


def view_of(event: Event, undecided: int | None = None) -> EventView:
    n = len(event.signature)
    base = 1 + len(VARIABLE_FIELDS)
    return EventView(
        abi=event.abi, nr=event.nr, name=event.name, signature=event.signature,
        when=event.when, rule=event.rule, action=event.action, log_format=event.log_format,
        args=[f"r[{base + i}]" for i in range(n)],
        values=[f"r[{base + n + i}]" for i in range(n)],
        fields={f: f"r[{1 + i}]" for i, f in enumerate(VARIABLE_FIELDS)},
        namespace={}, undecided_index=undecided)


def record_of(event: Event, key=0) -> tuple:
    return (key, *(getattr(event, f) for f in VARIABLE_FIELDS), *event.args, *event.values)
