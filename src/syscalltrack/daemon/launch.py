"""Starting the daemon: in the foreground (`sct daemon`, service managers) or in the
background (`sct_load`), reporting readiness or the exact reason it could not start.

Background start: a new session (no terminal, no signals from the caller's
shell) with stdout/stderr appended to ``daemon.log`` in the run directory;
the daemon reports on an inherited pipe one JSON line, ``{"ok": true, "pid":
N}`` once it is serving or ``{"ok": false, "error": "..."}``, so sct_load
returns exactly when the tracker can be used. Under systemd (Type=notify)
readiness goes to $NOTIFY_SOCKET instead.
"""

from __future__ import annotations

import gc
import json
import os
import select
import socket
import subprocess
import sys

from . import client, protocol
from .server import Daemon, Options, StartupError

READY_TIMEOUT = 120.0  # seconds: a safety net only; start normally takes well under one


# A ring batch allocates a tracked tuple or two per record, all freed with the batch; the
# default first threshold (700) answered that with a collection every few hundred
# records: 44% of a consumer's time at full rate (measured, bench/systemwide.py).
# Cycles are rare here, so young objects are collected every 100,000 allocations.
GC_THRESHOLDS = (100_000, 10, 10)


def run(options: Options, ready_fd: int | None = None) -> int:
    """Run the daemon here until it is unloaded or signalled; 0 on a clean stop."""
    daemon = Daemon(options)
    try:
        daemon.start()
    except (StartupError, OSError) as err:
        message = str(err) if isinstance(err, StartupError) else f"cannot start: {err}"
        _report(ready_fd, {"ok": False, "error": message})
        print(f"syscalltrack: {message}", file=sys.stderr, flush=True)
        return 1
    _report(ready_fd, {"ok": True, "pid": os.getpid(), "restored": daemon.restored})
    _sd_notify(b"READY=1")
    # What start-up built (modules, the syscall table, the grammar) lives as long as we do:
    # keep it out of the collector's full passes, which each batch of events would
    # otherwise trigger over and over; and collect young objects far less often (see
    # GC_THRESHOLDS).
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        daemon.serve()
    finally:
        daemon.close()
    return 0


def _report(fd: int | None, message: dict) -> None:
    if fd is None:
        return
    try:
        os.write(fd, protocol.encode(message))
    finally:
        os.close(fd)


def _sd_notify(state: bytes) -> None:
    """Tell systemd we are ready (Type=notify); nothing when not run by it."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(state, path)


def running_pid() -> int | None:
    """The pid of a daemon answering on the control socket, or None."""
    try:
        return client.request("ping")["pid"]
    except (client.NotLoaded, client.DaemonError, OSError, ValueError):
        return None


def start_background(argv: list[str]) -> dict:
    """Start ``sct daemon ARGV`` detached; its readiness message (see module doc).

    Raises StartupError with the reason when it cannot start.
    """
    if os.geteuid() != 0:
        raise StartupError("syscalltrack must be loaded by root (it attaches eBPF programs "
                           f"to every process); you are uid {os.geteuid()}")
    pid = running_pid()
    if pid is not None:
        raise StartupError(f"syscalltrack is already loaded (pid {pid})")
    os.makedirs(protocol.run_dir(), mode=0o755, exist_ok=True)
    log_path = protocol.daemon_log()
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    start_of_log = os.lseek(log, 0, os.SEEK_END)
    r, w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syscalltrack.cli.sct", "daemon", "--ready-fd", str(w),
             *argv],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(w,),
            start_new_session=True, cwd="/")
    finally:
        os.close(w)
        os.close(log)
    try:
        data = _read_all(r)
    finally:
        os.close(r)
    if data:
        message = json.loads(data)
        if not message["ok"]:
            raise StartupError(message["error"])
        return message
    try:
        code = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        code = None
    with open(log_path, "rb") as f:
        f.seek(start_of_log)
        tail = f.read().decode(errors="replace").strip()[-2000:]
    how = "did not report readiness" if code is None else f"exited with status {code}"
    raise StartupError(f"the tracker daemon {how} before it was ready"
                       + (f":\n{tail}" if tail else f" (see {log_path})"))


def _read_all(fd: int) -> bytes:
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], READY_TIMEOUT)
        if not ready:
            return out
        chunk = os.read(fd, 65536)
        if not chunk:
            return out
        out += chunk
