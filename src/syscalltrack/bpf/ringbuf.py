"""Reading a BPF ring buffer map from user space through mmap.

Layout (kernel-notes.md): page 0 holds the consumer position (we write it);
from one page on, the producer page followed by the data area mapped twice,
so a record that wraps around reads contiguously. Each record starts with a
u32 length (bit 31 busy, bit 30 discarded) and a u32 we ignore, and occupies
``(len + 8 + 7) & ~7`` bytes.

The consumer position is published with one aligned 8-byte store through a
``memoryview.cast("Q")``: ``struct.pack_into`` zero-fills before writing, and
a kernel seeing 0 for an instant takes the ring for full (false drops).
"""

from __future__ import annotations

import mmap
import re
import select
import struct
import sys

from .maps import Map, MapType

BUSY = 1 << 31
DISCARD = 1 << 30
HEADER = 8


def record_stride(size: int) -> int:
    """Bytes a record of ``size`` payload bytes occupies in the ring."""
    return (size + HEADER + 7) & ~7


def in_ring(record: struct.Struct) -> struct.Struct:
    """``record``'s layout as it lies in the ring: after the header, padded to the stride."""
    fmt = record.format
    order, body = (fmt[0], fmt[1:]) if fmt[:1] in "<>!=@" else ("@", fmt)
    tail = record_stride(record.size) - HEADER - record.size
    return struct.Struct(f"{order}{HEADER}x{body}{tail}x")


class RingBuffer:
    """Consumer side of a RINGBUF map; the map itself stays the caller's."""

    def __init__(self, ring: Map):
        if ring.spec.type != MapType.RINGBUF:
            raise ValueError(f"map {ring.name} is {ring.spec.type.name}, not RINGBUF")
        page = mmap.PAGESIZE
        self.size = ring.spec.max_entries
        self._mask = self.size - 1
        self._cons_mm = mmap.mmap(ring.fd, page, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        try:
            self._prod_mm = mmap.mmap(ring.fd, page + 2 * self.size, mmap.MAP_SHARED,
                                      mmap.PROT_READ, offset=page)
        except BaseException:
            self._cons_mm.close()
            raise
        self._cons = memoryview(self._cons_mm)[:8].cast("Q")
        self._prod = memoryview(self._prod_mm)[:8].cast("Q")
        self._data = memoryview(self._prod_mm)[page:]
        self._hdr = self._data.cast("I")
        self._epoll = select.epoll()
        self._epoll.register(ring.fd, select.EPOLLIN)

    def close(self) -> None:
        """Unmap and stop polling; idempotent."""
        if self._epoll.closed:
            return
        self._epoll.close()
        for view in (self._hdr, self._data, self._prod, self._cons):
            view.release()
        self._prod_mm.close()
        self._cons_mm.close()

    def __enter__(self) -> RingBuffer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """Bytes between the consumer and producer positions."""
        return self._prod[0] - self._cons[0]

    def poll(self, timeout: float | None = None) -> bool:
        """Wait until data is available (None: forever); True when it is.

        Call after draining: the kernel wakes a waiter only when a committed
        record sits at the published consumer position.
        """
        if self.pending:
            return True
        self._epoll.poll(-1 if timeout is None else timeout)
        return self.pending > 0

    def read(self, max_records: int | None = None) -> list[bytes]:
        """Copy out committed records (skipping discarded ones), then publish."""
        cons, mask, hdr, data = self._cons[0], self._mask, self._hdr, self._data
        out: list[bytes] = []
        while (max_records is None or len(out) < max_records) and cons < self._prod[0]:
            off = cons & mask
            word = hdr[off >> 2]
            if word & BUSY:
                break
            length = word & ~(BUSY | DISCARD)
            if not word & DISCARD:
                out.append(bytes(data[off + HEADER:off + HEADER + length]))
            cons += record_stride(length)
        self._cons[0] = cons
        return out

    def read_fixed(self, record: struct.Struct, limit: int | None = None) -> RecordBlock:
        """Copy out a batch of fixed-size records in one piece, decoded on demand.

        Every record in the ring must be ``record.size`` bytes (the program
        only emits that layout); otherwise ValueError. Reads what is committed
        now, at most ``limit`` records, and publishes the new consumer position once.
        """
        size = record.size
        stride = record_stride(size)
        layout = in_ring(record)
        cons = self._cons[0]
        span = self._prod[0] - cons
        if span <= 0:
            return RecordBlock(b"", layout)
        if span % stride:
            raise ValueError(f"ring holds records other than {size}-byte ones")
        if limit is not None:
            span = min(span, limit * stride)
        off = cons & self._mask
        headers = self._hdr[off >> 2:(off + span) >> 2:stride >> 2].tolist()
        count = len(headers)
        if headers.count(size) != count:
            raw = self._irregular(headers, size, off, stride)
            count = len(headers)
        else:
            raw = bytes(self._data[off:off + span])
        self._cons[0] = cons + count * stride
        return RecordBlock(raw, layout)

    def _irregular(self, headers: list[int], size: int, off: int, stride: int) -> bytes:
        """Batch containing busy or discarded records: stop at the first busy one, and
        leave the discarded ones out. Trims ``headers`` in place to the records consumed.
        """
        for i, word in enumerate(headers):
            if word & BUSY:
                del headers[i:]
                break
            if word & ~DISCARD != size:
                raise ValueError(f"ring holds a {word & ~DISCARD}-byte record, "
                                 f"expected {size}")
        data = self._data
        return b"".join(data[off + i * stride:off + (i + 1) * stride]
                        for i, word in enumerate(headers) if not word & DISCARD)


class RecordBlock:
    """Fixed-size records copied out of the ring together: as rows (one tuple per record,
    the ``layout``'s fields) or as columns (one field of every record), each decoded
    once, when first asked for.

    A column of integers is a strided cast of the block, with no tuple per record: an
    output that builds objects from a few fields of many records reads only those.
    """

    __slots__ = ("_columns", "_fields", "_layout", "_raw", "_rows", "count")

    def __init__(self, raw: bytes, layout: struct.Struct):
        if len(raw) % layout.size:
            raise ValueError(f"{len(raw)} bytes are no whole number of "
                             f"{layout.size}-byte records")
        self._raw, self._layout = raw, layout
        self.count = len(raw) // layout.size
        self._rows: list[tuple] | None = None
        self._columns: dict[int, list] = {}
        self._fields: list[tuple[int, str, int]] | None = None

    def __len__(self) -> int:
        return self.count

    def rows(self) -> list[tuple]:
        """Every record as a tuple of the layout's fields."""
        if self._rows is None:
            self._rows = list(self._layout.iter_unpack(self._raw))
        return self._rows

    def column(self, index: int) -> list:
        """Field ``index`` of every record, in order (what ``[r[index] for r in rows()]``
        gives)."""
        column = self._columns.get(index)
        if column is None:
            column = self._columns[index] = self._column(index)
        return column

    def _column(self, index: int) -> list:
        if self._rows is not None:
            return [row[index] for row in self._rows]
        if self._fields is None:
            self._fields = field_layout(self._layout)
        offset, code, size = self._fields[index]
        stride = self._layout.size
        if code in _CASTS and offset % size == 0 and stride % size == 0:
            return memoryview(self._raw).cast(code)[offset // size::stride // size].tolist()
        one = struct.Struct(f"<{offset}x{size if code == 's' else ''}{code}"
                            f"{stride - offset - size}x")
        return [value for (value,) in one.iter_unpack(self._raw)]


# Integer codes a memoryview cast reads as the layout does: native order is little-endian
# on every machine this runs on (x86), and with "<" the layout's sizes are the standard ones.
_CASTS = frozenset("bBhHiIqQ") if sys.byteorder == "little" else frozenset()
_TOKEN = re.compile(r"(\d*)([xcbB?hHiIlLqQnNefdsp])")


def field_layout(layout: struct.Struct) -> list[tuple[int, str, int]]:
    """(byte offset, code, size) of each field of a standard-size ("<") layout."""
    fmt = layout.format
    if fmt[:1] != "<":
        raise ValueError(f"layout {fmt!r} is not little-endian standard-size")
    out, offset = [], 0
    for count_text, code in _TOKEN.findall(fmt[1:]):
        count = int(count_text) if count_text else 1
        if code == "x":
            offset += count
        elif code in "sp":
            out.append((offset, code, count))
            offset += count
        else:
            size = struct.calcsize("<" + code)
            out += [(offset + i * size, code, size) for i in range(count)]
            offset += count * size
    return out
