"""Helpers shared by the ptrace tests (a uniquely named module, unlike conftest)."""

import errno
import os
import time

from syscalltrack.ptrace.events import Consumer
from syscalltrack.ptrace.tracer import Tracer


class Recorder(Consumer):
    """Keeps every call, exit and event; ``decide`` (if given) answers on_entry."""

    def __init__(self, decide=None, probe=None):
        self.decide = decide
        self.probe = probe
        self.calls = []
        self.exits = []
        self.events = []
        self.probed = []
        self.code = None
        self.out = []

    def on_entry(self, call):
        self.calls.append(call)
        if self.probe is not None:
            self.probed.append(self.probe(call))
        return self.decide(call) if self.decide else None

    def on_exit(self, call, retval):
        self.exits.append((call, retval))

    def on_process_event(self, event):
        self.events.append(event)


def trace(argv, policy=None, decide=None, probe=None, cwd=None) -> Recorder:
    """Run ``argv`` under a tracer; the recorder also gets ``code`` and ``out`` (stdout lines)."""
    rec = Recorder(decide, probe)
    r, w = os.pipe()
    try:
        with Tracer(rec) as tracer:
            tracer.spawn(argv, seccomp_policy=policy, stdout=w, cwd=cwd)
            os.close(w)
            w = -1
            rec.code = tracer.run()
        with os.fdopen(r) as f:
            r = -1
            rec.out = f.read().splitlines()
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
    return rec


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll ``predicate``; the timeout is only a safety net against a hung test."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def status_field(pid: int, name: str) -> str | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH):
            return None
        raise
    return None


def our_open_files(keep) -> list[str]:
    """What this process's descriptors refer to, those whose target ``keep`` accepts."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if keep(target):
            found.append(target)
    return found
