"""The sctlog stream: one rendered batch fanned out to many readers, none able to stall it.

Each reader has a bounded backlog of bytes the daemon holds for it. Writes
are non-blocking; when a batch does not fit in a reader's backlog it is
dropped for that reader only and counted, and as soon as there is room again
the reader is told, in its own stream and at the place of the gap, how many
events it missed (``-- 1234 events lost --``, or a JSON object for JSON
readers). The daemon, syslog and the other readers never wait for it.

When the stream ends in order (the daemon unloaded or stopped), readers get a
short grace to take what they are still owed, and one that asked for it then
gets ``END_OF_STREAM``: it can tell that end from a daemon that died or a
connection that broke.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections import deque

READER_BACKLOG = 4 << 20  # bytes held per reader beyond its socket buffer
# The orderly end's mark: ASCII EOT, a byte no line carries (text lines are printable
# ASCII, JSON lines escape control characters), so no event can forge it.
END_OF_STREAM = b"\x04"


def lost_notice(count: int, json_: bool, where: str = "reader") -> bytes:
    """The inline line telling a reader it missed ``count`` events."""
    if json_:
        return json.dumps({"notice": "lost", "count": count, "where": where}).encode() + b"\n"
    return f"-- {count} events lost --\n".encode()


class Reader:
    """One sctlog connection: its rendering choice, its backlog, its losses."""

    def __init__(self, sock: socket.socket, key: tuple[bool, str | None],
                 limit: int = READER_BACKLOG, end_mark: bool = False):
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.key = key  # (json, format override): readers with equal keys share renders
        self.limit = limit
        self.end_mark = end_mark  # asked for END_OF_STREAM at an orderly end
        self._chunks: deque[memoryview] = deque()
        self.backlog = 0
        self.lost = 0  # events dropped and not yet reported to the reader
        self.lost_total = 0
        self.sent_events = 0
        self.closed = False

    @property
    def json(self) -> bool:
        return self.key[0]

    def _put(self, data: bytes) -> None:
        self._chunks.append(memoryview(data))
        self.backlog += len(data)

    def preface(self, data: bytes) -> None:
        """Queue what must come first whatever the limit: the answer to the request that
        made this connection a reader (it counts against the backlog like the rest)."""
        self._put(data)

    def offer(self, data: bytes, events: int, weight: int | None = None) -> None:
        """Queue a batch of ``events`` rendered as ``data``, or count it lost if it won't
        fit: as ``weight`` events when given (the batch's own notices of events the
        kernel lost go with it, so the reader is told of those too)."""
        if self.closed:
            return
        notice = lost_notice(self.lost, self.json) if self.lost else b""
        if self.backlog + len(notice) + len(data) > self.limit:
            missed = events if weight is None else weight
            self.lost += missed
            self.lost_total += missed
            return
        if notice:
            self._put(notice)
            self.lost = 0
        self._put(data)
        self.sent_events += events

    def notice(self, line: bytes) -> None:
        """Queue a line that is not an event (a kernel loss report); dropped when full."""
        if not self.closed and self.backlog + len(line) <= self.limit:
            self._put(line)

    def end(self) -> None:
        """The orderly end: what the reader missed, then END_OF_STREAM if it asked for
        it (both past the backlog limit: nothing comes after them)."""
        if self.closed:
            return
        if self.lost:
            self._put(lost_notice(self.lost, self.json))
            self.lost = 0
        if self.end_mark:
            self._put(END_OF_STREAM)

    def flush(self) -> bool:
        """Send what the socket takes now; True when the backlog is empty.

        A reader that lost events and then drained everything is told at once,
        rather than at the next event, which may never come.
        """
        while not self.closed:
            if not self._chunks:
                if not self.lost:
                    return True
                self._put(lost_notice(self.lost, self.json))
                self.lost = 0
            head = self._chunks[0]
            try:
                sent = self.sock.send(head)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self.close()
                break
            self.backlog -= sent
            if sent == len(head):
                self._chunks.popleft()
            else:
                self._chunks[0] = head[sent:]
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._chunks.clear()
            self.backlog = 0
            self.sock.close()


class Stream:
    """The set of readers, grouped by how they want events rendered."""

    def __init__(self, limit: int = READER_BACKLOG):
        self.limit = limit
        self.readers: dict[int, Reader] = {}  # by socket fd

    def add(self, sock: socket.socket, key: tuple[bool, str | None],
            end_mark: bool = False) -> Reader:
        reader = Reader(sock, key, self.limit, end_mark)
        self.readers[reader.fd] = reader
        return reader

    def remove(self, reader: Reader) -> None:
        self.readers.pop(reader.fd, None)
        reader.close()

    def renderings(self) -> set[tuple[bool, str | None]]:
        """The renderings some reader needs now."""
        return {r.key for r in self.readers.values()}

    def publish(self, batches: dict[tuple[bool, str | None], tuple[bytes, int]],
                weight: int | None = None) -> None:
        """Give each reader the batch rendered its way: (data, number of events); see
        Reader.offer for ``weight``."""
        for reader in self.readers.values():
            data, events = batches[reader.key]
            reader.offer(data, events, weight)

    def notice(self, text: bytes, json_line: bytes) -> None:
        """A line for every reader (text or JSON form), subject to backlog room."""
        for reader in self.readers.values():
            reader.notice(json_line if reader.json else text)

    def end(self, grace: float) -> None:
        """End every stream in order: each reader gets what it is still owed and its
        end mark, and `grace` seconds in all to take them; then all are closed."""
        deadline = time.monotonic() + grace
        with selectors.DefaultSelector() as waiting:
            for reader in self.readers.values():
                reader.end()
                if not reader.flush():
                    waiting.register(reader.fd, selectors.EVENT_WRITE, reader)
            while waiting.get_map() and (left := deadline - time.monotonic()) > 0:
                for key, _ in waiting.select(left):
                    if key.data.flush():
                        waiting.unregister(key.fd)
        self.close()

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        self.readers.clear()
