"""The tools' side of the daemon's control socket (protocol: see ``protocol``).

Every classic tool that needs the tracker (sct_config upload/download/delete,
sctlog, sct_unload, sct status) goes through `connect()`, so "not loaded" is
reported the same way everywhere.

A daemon that is stopped (SIGSTOP, a debugger) or wedged still accepts
connections, so every request is bounded in time: TIMEOUT seconds, or
``SYSCALLTRACK_TIMEOUT`` from the environment, for each step (connect, send,
the answer). A stream (``follow``) then waits for events without limit: quiet
is not a hang.

A request longer than the daemon takes (``protocol.MAX_REQUEST``) is refused
here, before anything is sent (`RequestTooLarge`); a daemon that closes the
connection while a request is still being sent is reported with what it said.
"""

from __future__ import annotations

import json
import os
import socket

from . import protocol

TIMEOUT = 10.0  # seconds a control request may wait for the daemon
STREAMS = {"follow"}  # requests whose answer is followed by a stream


class NotLoaded(Exception):
    """The tracker daemon is not running (or its socket is not ours to use)."""


class DaemonError(Exception):
    """The daemon answered a request with an error, or did not answer in time."""


class RequestTooLarge(DaemonError):
    """A request longer than the daemon takes in one line: never sent."""

    def __init__(self, op: str, size: int):
        self.op, self.size, self.limit = op, size, protocol.MAX_REQUEST
        super().__init__(f"the '{op}' request is {size} bytes, more than the "
                         f"{limit_text()} the daemon takes in one request; nothing was sent")


def limit_text() -> str:
    """The request limit in words, as the tools tell it: `4194304 bytes (4 MiB)`."""
    return f"{protocol.MAX_REQUEST} bytes ({protocol.MAX_REQUEST / (1 << 20):g} MiB)"


def encode(op: str, **payload) -> bytes:
    """The request line; RequestTooLarge if the daemon would refuse it for its length
    (the limit counts the line without its newline)."""
    line = protocol.encode({"op": op, **payload})
    if len(line) - 1 > protocol.MAX_REQUEST:
        raise RequestTooLarge(op, len(line) - 1)
    return line


class _Connection(socket.socket):
    """A control connection whose files know it: once a request's answer starts a
    stream, `answer()` lifts the time limit through the file it reads."""

    def makefile(self, *args, **kwargs):
        stream = super().makefile(*args, **kwargs)
        stream.connection = self
        return stream


def timeout() -> float:
    """TIMEOUT, or SYSCALLTRACK_TIMEOUT seconds when that is a positive number."""
    try:
        value = float(os.environ.get("SYSCALLTRACK_TIMEOUT", TIMEOUT))
    except ValueError:
        return TIMEOUT
    return value if value > 0 else TIMEOUT


def connect(path: str | None = None) -> socket.socket:
    """A connected control socket, or NotLoaded saying why and what to do."""
    path = path or protocol.control_socket()
    sock = _Connection(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout())
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise NotLoaded(
            f"syscalltrack is not loaded (no tracker listening on {path}); "
            "load it with 'sct_load' (as root)"
        ) from None
    except PermissionError:
        sock.close()
        raise NotLoaded(
            f"permission denied on {path}: only root may control syscalltrack"
        ) from None
    except (TimeoutError, BlockingIOError):  # its queue of connections to accept is full
        sock.close()
        raise _silent("accept the connection", "") from None
    return sock


def _silent(what: str, op: str) -> DaemonError:
    """The error for a daemon that did not answer in time (its pid when we can tell)."""
    try:
        with open(protocol.pid_file()) as f:
            pid = f" (pid {int(f.read())})"
    except (OSError, ValueError):
        pid = ""
    request = f"; the '{op}' request may still run if it resumes" if op else ""
    return DaemonError(f"the syscalltrack daemon{pid} did not {what} within {timeout():g} s: "
                       f"it is stopped or stuck{request} (SYSCALLTRACK_TIMEOUT sets the "
                       "limit in seconds)")


def send(sock: socket.socket, op: str, **payload) -> None:
    _send_line(sock, op, encode(op, **payload))


def _send_line(sock: socket.socket, op: str, line: bytes) -> None:
    try:
        sock.sendall(line)
    except TimeoutError:
        raise _silent("take the request", op) from None
    except (BrokenPipeError, ConnectionResetError):
        raise _cut_off(sock, op) from None


def _cut_off(sock: socket.socket, op: str) -> DaemonError:
    """The daemon closed the connection before it had the whole request: say so, with the
    error it answered first (a request it refused) when it sent one."""
    said = ""
    try:
        sock.settimeout(timeout())
        with sock.makefile("rb") as stream:
            said = json.loads(stream.readline(protocol.MAX_REQUEST)).get("error") or ""
    except (OSError, ValueError, AttributeError):
        pass
    return DaemonError(f"the daemon closed the connection before it had the whole '{op}' "
                       "request" + (f": {said}" if said else ""))


def answer(stream, op: str) -> dict:
    """Read one answer line from a binary file over the socket; DaemonError if it failed."""
    try:
        reply = stream.readline()
    except TimeoutError:
        raise _silent(f"answer '{op}'", op) from None
    if not reply:
        raise DaemonError(f"the daemon closed the connection without answering '{op}'")
    result = json.loads(reply)
    if not result.get("ok"):
        raise DaemonError(result.get("error", f"'{op}' failed"))
    if op in STREAMS:
        stream.connection.settimeout(None)
    return result


def request(op: str, path: str | None = None, **payload) -> dict:
    """Send one JSON request line and return the daemon's JSON answer (RequestTooLarge,
    before connecting, for one the daemon would refuse)."""
    line = encode(op, **payload)
    with connect(path) as sock:
        _send_line(sock, op, line)
        with sock.makefile("rb") as stream:
            return answer(stream, op)
