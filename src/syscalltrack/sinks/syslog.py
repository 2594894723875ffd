"""LOG lines to syslog through /dev/log, as the original did.

Written by hand rather than with logging.handlers.SysLogHandler so that a
missing or restarted syslog daemon is handled the way a tracker needs: warn
once, keep serving the other outputs, reconnect when the socket comes back.

Sends never block: the daemon sends from its only thread, so a receiver that
stops reading would otherwise stop the tracker (its control socket, its
readers, and the kernel ring, which then overflows). A syslogd's queue holds
few datagrams (net.unix.max_dgram_qlen, often 10), so what it cannot take yet
waits in a bounded queue of ours, sent as the socket becomes writable (the
daemon watches ``socket`` while ``waiting``). A line that finds that queue
full, or no syslog at all, is counted in ``failed`` (the daemon reports the
count), and ``error`` says why until lines go through again.
Lines arrive already escaped by the formatter, so no field can forge a record.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import sys
import time
from collections import deque

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
SEVERITY_NOTICE = 5
DEV_LOG = "/dev/log"
RETRY_INTERVAL = 1.0  # seconds between attempts to reach an absent syslog
QUEUE_LIMIT = 4 << 20  # bytes of lines held while syslog reads slower than events come


class SyslogSink:
    """Sends one datagram per line to a syslog socket (RFC 3164 framing)."""

    def __init__(self, path: str = DEV_LOG, facility: str = "authpriv",
                 ident: str = "syscalltrack", warn=None, retry_interval: float = RETRY_INTERVAL,
                 queue_limit: int = QUEUE_LIMIT):
        if facility not in FACILITIES:
            raise ValueError(
                f"unknown syslog facility '{facility}'; one of: {', '.join(FACILITIES)}"
            )
        self.path = path
        self._prefix = f"<{FACILITIES[facility] * 8 + SEVERITY_NOTICE}>{ident}[{os.getpid()}]: "
        self.socket: socket.socket | None = None
        self._warned = False
        self._retry_at = 0.0
        self.retry_interval = retry_interval
        self._warn = warn or (lambda msg: print(msg, file=sys.stderr))
        self._queue: deque[bytes] = deque()  # datagrams syslog could not take yet
        self._queued = 0  # bytes in _queue
        self.queue_limit = queue_limit
        self.sent = 0
        self.failed = 0  # lines not sent, for whatever reason
        self.error: str | None = None  # why the last line failed; None once lines go again

    @property
    def waiting(self) -> int:
        """How many lines wait for the socket to become writable."""
        return len(self._queue)

    def _connect(self) -> bool:
        """Connect, at most once per RETRY_INTERVAL while syslog is absent (two syscalls
        per line for nothing would slow a busy tracker)."""
        now = time.monotonic()
        if now < self._retry_at:
            return False
        sock = socket.socket(socket.AF_UNIX,
                             socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            sock.connect(self.path)
        except OSError as err:
            sock.close()
            self._retry_at = now + self.retry_interval
            self.error = f"{self.path}: {err.strerror}"
            if not self._warned:
                self._warned = True
                self._warn(
                    f"syscalltrack: no syslog at {self.path} ({err.strerror}); LOG lines go to "
                    "the other outputs only until it appears"
                )
            return False
        self.socket = sock
        self._warned = False
        return True

    def _send(self, data: bytes) -> bool:
        """Send one datagram now: True when it was sent or counted failed, False when
        syslog's queue is full (try again once the socket is writable). A broken
        connection (syslogd restarted) is made again once, at once."""
        for _attempt in range(2):
            if self.socket is None and not self._connect():
                break
            try:
                self.socket.send(data)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as err:
                self.error = f"{self.path}: {err.strerror}"
                if err.errno == errno.ENOBUFS:  # no memory for it now: this line only
                    break
                self._disconnect()
                continue
            self.sent += 1
            self.error = None
            return True
        self.failed += 1
        return True

    def write(self, line: str) -> None:
        """Send one line (see write_lines)."""
        self.write_lines([line])

    def write_lines(self, lines: list[str]) -> None:
        """Send a batch without waiting: what syslog cannot take now joins the queue,
        or is counted failed when the queue is full; while syslog is absent the whole
        batch is counted failed at once."""
        if self.socket is None and not self._connect():
            self.failed += len(lines)
            return
        self.flush()
        prefix = self._prefix
        for line in lines:
            data = (prefix + line).encode("utf-8", "backslashreplace")
            if self._queue or not self._send(data):
                self._hold(data)

    def _hold(self, data: bytes) -> None:
        if self._queued + len(data) > self.queue_limit:
            self.failed += 1
            self.error = (f"{self.path}: not taking lines ({self._queued} bytes wait for it, "
                          "the most we hold)")
            return
        self._queue.append(data)
        self._queued += len(data)

    def flush(self) -> bool:
        """Send what waits while the socket takes it; True once nothing waits."""
        queue = self._queue
        while queue:
            if not self._send(queue[0]):
                return False
            self._queued -= len(queue.popleft())
        return True

    def finish(self, grace: float) -> None:
        """Give what waits ``grace`` seconds in all to go (an orderly stop)."""
        deadline = time.monotonic() + grace
        while not self.flush() and (left := deadline - time.monotonic()) > 0:
            select.select([], [self.socket], [], left)

    def _disconnect(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def retry_now(self) -> None:
        """Connect again at once (the daemon's SIGHUP: syslogd may have moved); what
        waits goes to the new socket."""
        self._disconnect()
        self._retry_at = 0.0
        self.flush()

    def close(self) -> None:
        """Close the socket; lines still waiting are counted failed."""
        self._disconnect()
        if self._queue:
            self.failed += len(self._queue)
            self.error = (f"{self.path}: not taking lines ({len(self._queue)} still waited "
                          "for it at the end)")
        self._queue.clear()
        self._queued = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
