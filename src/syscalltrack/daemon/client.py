"""The tools' side of the daemon's control socket.

Every classic tool that needs the tracker (sct_config upload/download/delete,
sctlog, sct_unload) goes through `connect()`, so "not loaded" is reported the
same way everywhere.
"""

from __future__ import annotations

import json
import os
import socket

RUN_DIR = "/run/syscalltrack"
CONTROL_SOCKET = os.path.join(RUN_DIR, "control.sock")


class NotLoaded(Exception):
    """The tracker daemon is not running (or its socket is not ours to use)."""


def connect(path: str = CONTROL_SOCKET) -> socket.socket:
    """A connected control socket, or NotLoaded saying why and what to do."""
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


class DaemonError(Exception):
    """The daemon answered a request with an error."""


def request(op: str, path: str = CONTROL_SOCKET, **payload) -> dict:
    """Send one JSON request line and return the daemon's JSON answer."""
    with connect(path) as sock:
        sock.sendall(json.dumps({"op": op, **payload}).encode() + b"\n")
        reply = sock.makefile("rb").readline()
    if not reply:
        raise DaemonError(f"the daemon closed the connection without answering '{op}'")
    answer = json.loads(reply)
    if not answer.get("ok"):
        raise DaemonError(answer.get("error", f"'{op}' failed"))
    return answer
