"""SIGINT/SIGTERM/SIGHUP to the tracer, and the wait for suspended processes.

The tracer here is the test process itself: its signals are raised from a callback (as
the stop goes on) or sent to its main thread by a watcher thread.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading

from ptrace_support import status_field, trace, wait_until

from syscalltrack.ptrace.events import Consumer, Decision
from syscalltrack.ptrace.seccomp import Policy
from syscalltrack.ptrace.tracer import Tracer

NR_UNLINK, NR_UNLINKAT, NR_OPENAT = 87, 263, 257
UNLINKS = Policy(trace={"x86_64": {NR_UNLINK, NR_UNLINKAT}})

# Counts the SIGTERMs it gets.  A signal the tracer sends on at the first unlink is sent
# before the second unlink's stop is dealt with, so it has arrived when that call returns.
COUNTS_SIGTERMS = """\
import os, signal, sys
got = []
signal.signal(signal.SIGTERM, lambda sig, frame: got.append(sig))
os.unlink(sys.argv[1])
os.unlink(sys.argv[2])
def received():  # a Python call: the handlers of signals just delivered run first
    return len(got)
print(received(), flush=True)
"""


def unlinks(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.touch()
    second.touch()
    return [sys.executable, "-c", COUNTS_SIGTERMS, str(first), str(second)], str(first)


def at_unlink_of(path, act):
    """A decide callback that calls ``act(call)`` at the unlink of ``path``."""
    def decide(call):
        if call.read_string(0 if call.nr == NR_UNLINK else 1) == path.encode():
            act(call)
    return decide


def test_a_signal_only_the_tracer_got_is_sent_on_to_the_command(tmp_path):
    def tracer_only(call):
        signal.raise_signal(signal.SIGTERM)

    argv, first = unlinks(tmp_path)
    r = trace(argv, UNLINKS, decide=at_unlink_of(first, tracer_only))
    assert r.out == ["1"]  # it handled the signal, once, and went on
    assert r.code == 0


def test_a_signal_the_command_got_too_is_not_sent_twice(tmp_path):
    """The command's copy is pending or taken when the tracer decides.  (Sent again while
    still pending, it would merge with it: the sctrace tests cover more timings.)"""
    def like_a_group_kill(call):  # the kernel signals the group's newest members first
        os.kill(call.pid, signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)

    argv, first = unlinks(tmp_path)
    r = trace(argv, UNLINKS, decide=at_unlink_of(first, like_a_group_kill))
    assert r.out == ["1"]
    assert r.code == 0


def test_a_second_signal_kills_the_spawned_command(tmp_path):
    """Once the first was sent on (at the first unlink's stop), the next one ends it all."""
    pids = []

    def insist(call):
        pids.append(call.pid)
        signal.raise_signal(signal.SIGTERM)

    argv, _ = unlinks(tmp_path)
    r = trace(argv, UNLINKS, decide=insist)  # at both unlinks
    assert r.code == 128 + signal.SIGTERM
    assert r.out == []
    assert status_field(pids[0], "State") is None  # killed and reaped


def test_the_same_signal_twice_at_once_is_one(tmp_path):
    """timeout(1) signals the tracer, then at once its whole group: one signal, sent on."""
    def twice(call):
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)

    argv, first = unlinks(tmp_path)
    r = trace(argv, UNLINKS, decide=at_unlink_of(first, twice))
    assert r.out == ["1"]  # it handled the signal, once, and went on
    assert r.code == 0


class Suspender(Consumer):
    """Suspends the process at its first traced call; notes what run() waits for."""

    def __init__(self):
        self.waited_for = []

    def on_entry(self, call):
        return Decision.suspend()

    def on_suspended_wait(self, pids):
        self.waited_for.append(pids)


@contextlib.contextmanager
def sigterm_once_stopped(pid: int):
    """Send SIGTERM to our main thread (the tracer's) from a thread, once ``pid`` is stopped.

    Should run() return early (the test failing), the signal finds a handler that drops it
    rather than the default one, which would end the whole test session.
    """
    def watch():
        try:
            wait_until(lambda: (status_field(pid, "State") or "T")[0] == "T",
                       what="the suspended process to stop")
        finally:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)

    old = signal.signal(signal.SIGTERM, lambda sig, frame: None)
    thread = threading.Thread(target=watch)
    thread.start()
    try:
        yield
    finally:
        thread.join()
        signal.signal(signal.SIGTERM, old)


def test_a_signal_ends_the_wait_and_kills_a_suspended_process_we_spawned(helper, tmp_path):
    victim = tmp_path / "victim"
    victim.touch()
    consumer = Suspender()
    with Tracer(consumer) as tracer:
        pid = tracer.spawn([helper, "unlink", str(victim)],
                           seccomp_policy=Policy(trace={"x86_64": {NR_UNLINK}}))
        with sigterm_once_stopped(pid):
            code = tracer.run()
    assert consumer.waited_for == [[pid]]
    assert code == 128 + signal.SIGTERM
    assert status_field(pid, "State") is None  # killed and reaped
    assert victim.exists()


def test_a_signal_ends_the_wait_and_leaves_an_attached_process_stopped(helper, tmp_path):
    target = subprocess.Popen([helper, "loop", str(tmp_path / "count")])
    try:
        consumer = Suspender()
        with Tracer(consumer) as tracer:
            tracer.attach(target.pid, policy=Policy(trace={"x86_64": {NR_OPENAT}}))
            with sigterm_once_stopped(target.pid):
                code = tracer.run()
        assert consumer.waited_for == [[target.pid]]
        assert code == 128 + signal.SIGTERM
        assert status_field(target.pid, "State").startswith("T (stopped)")
        assert status_field(target.pid, "TracerPid") == "0"
    finally:
        target.kill()
        target.wait()
