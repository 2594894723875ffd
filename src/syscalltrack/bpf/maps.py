"""BPF maps: a plain :class:`MapSpec` and the live :class:`Map` it creates.

Keys and values are raw bytes: callers own their layouts (``struct``), which
keeps this module ignorant of what a rule set stores.
"""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from functools import cache

from .sys import FD, BpfError, Cmd, MapCreateAttr, MapElemAttr, MapInfo, bpf, obj_info, obj_name


class MapType(IntEnum):
    """``enum bpf_map_type`` values used here."""

    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3  # values are program fds, for bpf_tail_call
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    RINGBUF = 27


class UpdateFlag(IntEnum):
    ANY = 0
    NOEXIST = 1
    EXIST = 2


_PERCPU = (MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH)


@cache
def possible_cpus() -> int:
    """Number of possible CPUs: per-CPU values come in this many slots."""
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read().strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


@dataclass(frozen=True)
class MapSpec:
    """What to create; a code generator can build and compare these freely."""

    name: str
    type: MapType
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0

    def create(self) -> Map:
        return Map.create(self)


class Map(FD):
    """A live map, owning its fd."""

    def __init__(self, fd: int, spec: MapSpec):
        super().__init__(fd)
        self.spec = spec

    @classmethod
    def create(cls, spec: MapSpec) -> Map:
        attr = MapCreateAttr(map_type=spec.type, key_size=spec.key_size,
                             value_size=spec.value_size, max_entries=spec.max_entries,
                             map_flags=spec.flags, map_name=obj_name(spec.name))
        try:
            return cls(bpf(Cmd.MAP_CREATE, attr), spec)
        except BpfError as e:
            raise BpfError(e.errno, Cmd.MAP_CREATE, detail=f"{spec}") from None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def id(self) -> int:
        return obj_info(self.fd, MapInfo()).id

    @property
    def value_stride(self) -> int:
        """Bytes per value as the syscall sees it (per-CPU maps: 8-aligned size times CPUs)."""
        if self.spec.type in _PERCPU:
            return (self.spec.value_size + 7) // 8 * 8 * possible_cpus()
        return self.spec.value_size

    def _key(self, key: bytes):
        if len(key) != self.spec.key_size:
            raise ValueError(f"map {self.name}: key is {len(key)} bytes, "
                             f"expected {self.spec.key_size}")
        return ctypes.create_string_buffer(bytes(key), len(key))

    def lookup(self, key: bytes) -> bytes | None:
        """The value for ``key`` (all CPUs' slots concatenated for per-CPU maps)."""
        k = self._key(key)
        v = ctypes.create_string_buffer(self.value_stride)
        try:
            bpf(Cmd.MAP_LOOKUP_ELEM, MapElemAttr(map_fd=self.fd, key=ctypes.addressof(k),
                                                 value=ctypes.addressof(v)))
        except BpfError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        return v.raw

    def lookup_percpu(self, key: bytes) -> list[bytes] | None:
        """Per-CPU maps: one value per possible CPU."""
        raw = self.lookup(key)
        if raw is None:
            return None
        step = len(raw) // possible_cpus()
        return [raw[i:i + self.spec.value_size] for i in range(0, len(raw), step)]

    def update(self, key: bytes, value: bytes, flags: UpdateFlag = UpdateFlag.ANY) -> None:
        """Set ``key``; per-CPU maps take value_stride bytes (every CPU's slot)."""
        k = self._key(key)
        if len(value) != self.value_stride:
            raise ValueError(f"map {self.name}: value is {len(value)} bytes, "
                             f"expected {self.value_stride}")
        v = ctypes.create_string_buffer(bytes(value), len(value))
        bpf(Cmd.MAP_UPDATE_ELEM, MapElemAttr(map_fd=self.fd, key=ctypes.addressof(k),
                                             value=ctypes.addressof(v), flags=flags))

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; False when it was absent."""
        k = self._key(key)
        try:
            bpf(Cmd.MAP_DELETE_ELEM, MapElemAttr(map_fd=self.fd, key=ctypes.addressof(k)))
        except BpfError as e:
            if e.errno == errno.ENOENT:
                return False
            raise
        return True

    def keys(self) -> Iterator[bytes]:
        """Iterate keys with MAP_GET_NEXT_KEY (a hash restarts if the key vanishes)."""
        size = self.spec.key_size
        nxt = ctypes.create_string_buffer(size)
        cur = None
        while True:
            attr = MapElemAttr(map_fd=self.fd, key=0 if cur is None else ctypes.addressof(cur),
                               value=ctypes.addressof(nxt))
            try:
                bpf(Cmd.MAP_GET_NEXT_KEY, attr)
            except BpfError as e:
                if e.errno == errno.ENOENT:
                    return
                raise
            key = nxt.raw
            yield key
            cur = ctypes.create_string_buffer(key, size)

    __iter__ = keys

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self.fd}"
        return f"<Map {self.name} {self.spec.type.name} {state}>"
