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
import select
import struct

from .maps import Map, MapType

BUSY = 1 << 31
DISCARD = 1 << 30
HEADER = 8


def record_stride(size: int) -> int:
    """Bytes a record of ``size`` payload bytes occupies in the ring."""
    return (size + HEADER + 7) & ~7


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

    def read_fixed(self, record: struct.Struct, limit: int | None = None) -> list[tuple]:
        """Decode a batch of fixed-size records with one ``iter_unpack``.

        Every record in the ring must be ``record.size`` bytes (the program
        only emits that layout); otherwise ValueError. Reads what is committed
        now, at most ``limit`` records, and publishes the new consumer position once.
        """
        size = record.size
        stride = record_stride(size)
        fmt = record.format
        order, body = (fmt[0], fmt[1:]) if fmt[:1] in "<>!=@" else ("@", fmt)
        layout = struct.Struct(f"{order}{HEADER}x{body}{stride - HEADER - size}x")
        cons = self._cons[0]
        span = self._prod[0] - cons
        if span <= 0:
            return []
        if span % stride:
            raise ValueError(f"ring holds records other than {size}-byte ones")
        if limit is not None:
            span = min(span, limit * stride)
        off = cons & self._mask
        headers = self._hdr[off >> 2:(off + span) >> 2:stride >> 2].tolist()
        count = len(headers)
        if headers.count(size) != count:
            rows = self._irregular(headers, size, off, stride, layout)
            count = len(headers)
        else:
            rows = list(layout.iter_unpack(self._data[off:off + span]))
        self._cons[0] = cons + count * stride
        return rows

    def _irregular(self, headers: list[int], size: int, off: int, stride: int,
                   layout: struct.Struct) -> list[tuple]:
        """Batch containing busy or discarded records: stop at the first busy one.

        Trims ``headers`` in place to the records consumed.
        """
        for i, word in enumerate(headers):
            if word & BUSY:
                del headers[i:]
                break
            if word & ~DISCARD != size:
                raise ValueError(f"ring holds a {word & ~DISCARD}-byte record, "
                                 f"expected {size}")
        rows = layout.iter_unpack(self._data[off:off + len(headers) * stride])
        return [row for row, word in zip(rows, headers, strict=True) if not word & DISCARD]
