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


# The JSON names come from jsonfmt on first use: json and base64 cost start-up time that
# text output (sctrace's) does not need.
_JSON_NAMES = ("JSONEventError", "from_json", "to_json")


def __getattr__(name: str):
    if name in _JSON_NAMES:
        from . import jsonfmt

        return getattr(jsonfmt, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
