"""The tools' side of the daemon's control socket (protocol: see ``protocol``).

Every classic tool that needs the tracker (sct_config upload/download/delete,
sctlog, sct_unload, sct status) goes through `connect()`, so "not loaded" is
reported the same way everywhere.
"""

from __future__ import annotations

import json
import socket

from . import protocol


class NotLoaded(Exception):
    """The tracker daemon is not running (or its socket is not ours to use)."""


class DaemonError(Exception):
    """The daemon answered a request with an error."""


def connect(path: str | None = None) -> socket.socket:
    """A connected control socket, or NotLoaded saying why and what to do."""
    path = path or protocol.control_socket()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
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
    return sock


def send(sock: socket.socket, op: str, **payload) -> None:
    sock.sendall(protocol.encode({"op": op, **payload}))


def answer(stream, op: str) -> dict:
    """Read one answer line from a binary file over the socket; DaemonError if it failed."""
    reply = stream.readline()
    if not reply:
        raise DaemonError(f"the daemon closed the connection without answering '{op}'")
    result = json.loads(reply)
    if not result.get("ok"):
        raise DaemonError(result.get("error", f"'{op}' failed"))
    return result


def request(op: str, path: str | None = None, **payload) -> dict:
    """Send one JSON request line and return the daemon's JSON answer."""
    with connect(path) as sock:
        send(sock, op, **payload)
        with sock.makefile("rb") as stream:
            return answer(stream, op)
