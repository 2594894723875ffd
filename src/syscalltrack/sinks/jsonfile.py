"""JSON lines appended to a file for log shippers (Vector, Fluent Bit, rsyslog's imfile).

``reopen()`` (the daemon calls it on SIGHUP) closes and reopens the path, so
logrotate can rename the file and signal: the next line lands in a new file.
The file is created mode 0600: events name users, commands and paths.  An
existing file must be ours already: a regular file (not a symlink: the
daemon runs as root and appends wherever the path leads), owned by the
daemon's user, neither writable by others nor readable by everyone.  A
file another user planted would let that user read every event.
"""

from __future__ import annotations

import errno
import os
import stat


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
