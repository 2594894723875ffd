"""Events and their rendering: the record both engines produce, log_format and JSON output.

Knows nothing of engines; sinks and tools consume what this package renders.
"""

from .event import ArgValue, Cut, Event, Lost, SockAddr, StreamItem, Undecided, Unreadable
from .format import (
    DEFAULT_FORMAT,
    LOG_MACROS,
    Limits,
    LogFormat,
    escape,
    format_params,
    format_value,
    quote,
    unknown_macros,
)
from .jsonfmt import JSONEventError, from_json, to_json

__all__ = [
    "DEFAULT_FORMAT",
    "LOG_MACROS",
    "ArgValue",
    "Cut",
    "Event",
    "JSONEventError",
    "Limits",
    "LogFormat",
    "Lost",
    "SockAddr",
    "StreamItem",
    "Undecided",
    "Unreadable",
    "escape",
    "format_params",
    "format_value",
    "from_json",
    "quote",
    "to_json",
    "unknown_macros",
]
