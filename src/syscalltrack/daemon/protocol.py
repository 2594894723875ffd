"""Where the daemon lives on disk, and what it says on its control socket.

Paths: the control socket ``control.sock``, the pid file ``syscalltrack.pid``
(held under flock while the daemon runs, so a daemon killed with -9 leaves
nothing that blocks the next one) and the background daemon's own messages
``daemon.log`` are in the run directory, ``/run/syscalltrack`` unless
``SYSCALLTRACK_RUN_DIR`` names another. The last uploaded rule set is saved as
``rules`` in the state directory, ``/var/lib/syscalltrack`` unless
``SYSCALLTRACK_STATE_DIR`` names another (tests use private ones).

Protocol: JSON lines over the Unix stream socket (mode 0600; the daemon also
checks SO_PEERCRED and answers anyone but uid 0 with an error). A client sends
one request per line, at most MAX_REQUEST bytes, and gets one answer line per
request, in order::

    {"op": "ping"}                               -> {"ok": true, "pid": 123}
    {"op": "upload", "text": "...", "filename": "F"} -> {"ok": true, "rules": 2}
    {"op": "download"}                           -> {"ok": true, "rules": "<canonical text>"}
    {"op": "delete"}                             -> {"ok": true, "removed": 2}
    {"op": "status"}                             -> {"ok": true, ...}  (see Daemon.status)
    {"op": "unload", "force": false}             -> {"ok": true, "pid": 123}, then the
                                                    daemon exits and closes every connection
    {"op": "follow", "format": null, "json": false, "last": 0, "end_mark": false}
                                                 -> {"ok": true}, then the stream

Any failure is ``{"ok": false, "error": "message"}``: a request that is not
JSON, not an object, too long, names an unknown op or carries a field of the
wrong type gets one, and the connection stays usable, except after a request
too long: one of more than MAX_REQUEST bytes (not counting its newline) is
refused whole -- nothing of it is done, whether the daemon saw its end or
stopped reading before -- and its connection ends after the error, other
connections unaffected. Clients refuse such a request before sending it
(``client.RequestTooLarge``; ``sct_config upload`` names the file, its size
and the limit). After ``follow`` the connection carries
only log lines: events rendered as the reader asked (``format`` overrides
the rules' log_format; ``json`` gives one object per event, the events
package's format), ``last`` lines of history first, and inline notices of
loss: ``-- N events lost --`` (text) or ``{"notice": "lost", "count": N,
"where": "reader" | "kernel"}`` (JSON). A reader that sets ``end_mark`` gets
one byte, ``sinks.stream.END_OF_STREAM`` (0x04, in no line), after the last
line when the daemon ends the stream in order (unloaded, or stopped by a
signal); a stream that ends without it was cut: the daemon died or the
connection broke. Without ``end_mark`` the stream just ends, as it always did.
"""

from __future__ import annotations

import json
import os

MAX_REQUEST = 4 << 20  # bytes in one request line: room for any sane rule file
MAX_FORMAT = 4096  # characters in a reader's log_format
HISTORY = 1000  # events the daemon keeps for `sctlog -n N` (each holds its arguments)


def run_dir() -> str:
    return os.environ.get("SYSCALLTRACK_RUN_DIR", "/run/syscalltrack")


def state_dir() -> str:
    return os.environ.get("SYSCALLTRACK_STATE_DIR", "/var/lib/syscalltrack")


def control_socket() -> str:
    return os.path.join(run_dir(), "control.sock")


def pid_file() -> str:
    return os.path.join(run_dir(), "syscalltrack.pid")


def daemon_log() -> str:
    return os.path.join(run_dir(), "daemon.log")


def saved_rules() -> str:
    return os.path.join(state_dir(), "rules")


def encode(message: dict) -> bytes:
    """One protocol line."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def error(message: str) -> bytes:
    return encode({"ok": False, "error": message})
