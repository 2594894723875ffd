"""JSON lines appended to a file for log shippers (Vector, Fluent Bit, rsyslog's imfile).

``reopen()`` (the daemon calls it on SIGHUP) closes and reopens the path, so
logrotate can rename the file and signal: the next line lands in a new file.
The file is created mode 0600: events name users, commands and paths.  An
existing file must be ours already: a regular file (not a symlink: the
daemon runs as root and appends wherever the path leads), owned by the
daemon's user, neither writable by others nor readable by everyone.  A
file another user planted would let that user read every event.

A line is written whole or not at all: when the disk fills mid-batch, the
file is cut back to the end of the last whole line (a shipper would choke on
half a JSON object), and the lines not written are counted in ``failed``
(the daemon reports the count); ``error`` says why until a write works again.
"""

from __future__ import annotations

import errno
import os
import stat


class JsonFileSink:
    """Appends already rendered JSON lines; counts those written and those not, and
    says why while writes fail."""

    def __init__(self, path: str):
        self.path = path
        self.written = 0
        self.failed = 0  # lines not written
        self.error: str | None = None
        self._fd = -1
        self.reopen()

    def reopen(self) -> None:
        """(Re)open ``path`` for appending; raise OSError when that is impossible."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                         | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise OSError(errno.ELOOP, "it is a symbolic link (refused: the events "
                                           "would go wherever it points)") from None
            raise
        try:
            _check_owned(os.fstat(fd))
        except OSError:
            os.close(fd)
            raise
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self.error = None

    def write(self, data: bytes, lines: int) -> None:
        """Append ``lines`` newline-terminated records in one write where possible; on a
        failure keep the whole lines that made it and cut off the rest."""
        view = memoryview(data)
        done = 0
        try:
            start = os.fstat(self._fd).st_size  # where O_APPEND puts our first byte
            while done < len(data):
                done += os.write(self._fd, view[done:])
        except OSError as err:
            self.error = f"{self.path}: {err.strerror}"
            whole = data.rfind(b"\n", 0, done) + 1
            if whole < done:
                try:
                    os.ftruncate(self._fd, start + whole)
                except OSError as cut:
                    self.error += (f"; a part line is left at its end (cannot cut it off: "
                                   f"{cut.strerror})")
            kept = data.count(b"\n", 0, whole)
            self.written += kept
            self.failed += lines - kept
            return
        self.written += lines
        self.error = None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _check_owned(st: os.stat_result) -> None:
    """OSError(EPERM) with the reason unless the file is a private regular file of ours."""
    why = None
    if not stat.S_ISREG(st.st_mode):
        why = "it is not a regular file"
    elif st.st_uid != os.geteuid():
        why = f"it belongs to uid {st.st_uid} (who could read every event)"
    elif st.st_mode & 0o022:
        why = f"it is writable by others (mode {st.st_mode & 0o777:o}: events could be forged)"
    elif st.st_mode & 0o004:
        why = f"everyone may read it (mode {st.st_mode & 0o777:o}); chmod o-r it"
    if why:
        raise OSError(errno.EPERM, f"refused: {why}")
