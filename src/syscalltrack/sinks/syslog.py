"""LOG lines to syslog through /dev/log, as the original did.

Written by hand rather than with logging.handlers.SysLogHandler so that a
missing or restarted syslog daemon is handled the way a tracker needs: warn
once, keep serving the other outputs, reconnect when the socket comes back.
Lines arrive already escaped by the formatter, so no field can forge a record.
"""

from __future__ import annotations

import os
import socket
import sys
import time

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
SEVERITY_NOTICE = 5
DEV_LOG = "/dev/log"
RETRY_INTERVAL = 1.0  # seconds between attempts to reach an absent syslog


class SyslogSink:
    """Sends one datagram per line to a syslog socket (RFC 3164 framing)."""

    def __init__(self, path: str = DEV_LOG, facility: str = "authpriv",
                 ident: str = "syscalltrack", warn=None, retry_interval: float = RETRY_INTERVAL):
        if facility not in FACILITIES:
            raise ValueError(
                f"unknown syslog facility '{facility}'; one of: {', '.join(FACILITIES)}"
            )
        self.path = path
        self._prefix = f"<{FACILITIES[facility] * 8 + SEVERITY_NOTICE}>{ident}[{os.getpid()}]: "
        self._sock: socket.socket | None = None
        self._warned = False
        self._retry_at = 0.0
        self.retry_interval = retry_interval
        self._warn = warn or (lambda msg: print(msg, file=sys.stderr))
        self.sent = 0
        self.failed = 0

    def _connect(self) -> bool:
        """Connect, at most once per RETRY_INTERVAL while syslog is absent (two syscalls
        per line for nothing would slow a busy tracker)."""
        now = time.monotonic()
        if now < self._retry_at:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.path)
        except OSError as err:
            sock.close()
            self._retry_at = now + self.retry_interval
            if not self._warned:
                self._warned = True
                self._warn(
                    f"syscalltrack: no syslog at {self.path} ({err.strerror}); LOG lines go to "
                    "the other outputs only until it appears"
                )
            return False
        self._sock = sock
        self._warned = False
        return True

    def write(self, line: str) -> None:
        """Send one line; after a failure reconnect once (syslogd restarted), else count it."""
        data = (self._prefix + line).encode("utf-8", "backslashreplace")
        for _attempt in range(2):
            if self._sock is None and not self._connect():
                break
            try:
                self._sock.send(data)
            except OSError:
                self._sock.close()
                self._sock = None
                continue
            self.sent += 1
            return
        self.failed += 1

    def write_lines(self, lines: list[str]) -> None:
        """Send a batch; while syslog is absent the whole batch is counted failed at once."""
        if self._sock is None and not self._connect():
            self.failed += len(lines)
            return
        write = self.write
        for line in lines:
            write(line)

    def retry_now(self) -> None:
        """Let the next line try to connect at once (the daemon's SIGHUP)."""
        self._retry_at = 0.0

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
