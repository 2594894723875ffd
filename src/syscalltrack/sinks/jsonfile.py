"""JSON lines appended to a file for log shippers (Vector, Fluent Bit, rsyslog's imfile).

``reopen()`` (the daemon calls it on SIGHUP) closes and reopens the path, so
logrotate can rename the file and signal: the next line lands in a new file.
The file is created mode 0600: events name users, commands and paths.
"""

from __future__ import annotations

import os


class JsonFileSink:
    """Appends already rendered JSON lines; counts them and remembers the last error."""

    def __init__(self, path: str):
        self.path = path
        self.written = 0
        self.error: str | None = None
        self._fd = -1
        self.reopen()

    def reopen(self) -> None:
        """(Re)open ``path`` for appending; raise OSError when that is impossible."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self.error = None

    def write(self, data: bytes, lines: int) -> None:
        """Append ``lines`` newline-terminated records in one write where possible."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as err:
            self.error = f"{self.path}: {err.strerror}"
            return
        self.written += lines

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
