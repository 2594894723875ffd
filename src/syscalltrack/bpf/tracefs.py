"""tracefs: event ids and ``format`` files (field offsets of a tracepoint's context)."""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass
from functools import cache

TRACEFS = "/sys/kernel/tracing"
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8


def root() -> str:
    """The tracefs mount point, mounting it when absent (root only)."""
    if not os.path.exists(os.path.join(TRACEFS, "events")):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mount(b"tracefs", TRACEFS.encode(), b"tracefs",
                      _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"cannot mount tracefs at {TRACEFS}: {os.strerror(err)}")
    return TRACEFS


def _event_dir(category: str, name: str) -> str:
    if "/" in category or "/" in name or category.startswith(".") or name.startswith("."):
        raise ValueError(f"bad tracepoint name {category}:{name}")
    return os.path.join(root(), "events", category, name)


def event_id(category: str, name: str) -> int:
    """The id that ``perf_event_open(PERF_TYPE_TRACEPOINT)`` takes as config."""
    path = os.path.join(_event_dir(category, name), "id")
    try:
        with open(path) as f:
            return int(f.read())
    except FileNotFoundError:
        raise FileNotFoundError(f"no tracepoint {category}:{name} ({path})") from None


@dataclass(frozen=True)
class Field:
    """One member of a tracepoint's context record."""

    name: str
    decl: str
    offset: int
    size: int
    signed: bool


@dataclass(frozen=True)
class EventFormat:
    name: str
    id: int
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}; fields: "
                       f"{[f.name for f in self.fields]}")

    @property
    def args(self) -> tuple[Field, ...]:
        """Fields after the common header and ``__syscall_nr`` (syscall arguments)."""
        return tuple(f for f in self.fields
                     if not f.name.startswith("common_") and f.name != "__syscall_nr")


_FIELD = re.compile(r"field:(?P<decl>[^;]*);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);"
                    r"\s*signed:(?P<signed>\d+);")
_NAME = re.compile(r"([A-Za-z_]\w*)\s*(\[[^\]]*\])?\s*$")


def parse_format(text: str) -> EventFormat:
    """Parse a tracefs ``format`` file."""
    name = re.search(r"^name: (\S+)", text, re.M)
    ident = re.search(r"^ID: (\d+)", text, re.M)
    if name is None or ident is None:
        raise ValueError("not a tracefs format file")
    fields = []
    for m in _FIELD.finditer(text):
        decl = m["decl"].strip()
        field_name = _NAME.search(decl)
        if field_name is None:
            raise ValueError(f"cannot find the field name in {decl!r}")
        fields.append(Field(field_name[1], decl, int(m["offset"]), int(m["size"]),
                            m["signed"] == "1"))
    return EventFormat(name[1], int(ident[1]), tuple(fields))


@cache
def event_format(category: str, name: str) -> EventFormat:
    """The parsed ``format`` of ``category:name`` (cached: it never changes while booted)."""
    with open(os.path.join(_event_dir(category, name), "format")) as f:
        return parse_format(f.read())
