"""Events and their rendering: the record both engines produce, log_format and JSON output.

Knows nothing of engines; sinks and tools consume what this package renders.
"""

from .event import ArgValue, Event, SockAddr, Unreadable

__all__ = ["ArgValue", "Event", "SockAddr", "Unreadable"]
