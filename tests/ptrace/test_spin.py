"""The tracer's wait for the next stop: it polls while stops come fast, else it sleeps."""

import os
import time

from syscalltrack.ptrace import Tracer

STOPPED = (4242, 0x857F)  # a seccomp stop's status, as waitpid gives it


class FakeWaits:
    """os.waitpid and time.monotonic_ns for `Tracer._next_stop`: a scripted clock and
    children that stop after `poll_misses` empty polls; a blocking wait takes `sleep_ns`."""

    def __init__(self, monkeypatch, poll_misses: int, sleep_ns: int):
        self.now = 0
        self.poll_misses = poll_misses
        self.sleep_ns = sleep_ns
        self.polls = 0
        self.blocking = 0
        monkeypatch.setattr(os, "waitpid", self.waitpid)
        monkeypatch.setattr(time, "monotonic_ns", lambda: self.now)

    def waitpid(self, pid, options):
        assert pid == -1
        if options & os.WNOHANG:
            self.polls += 1
            self.now += 1_000  # each poll costs a microsecond of the scripted clock
            if self.poll_misses:
                self.poll_misses -= 1
                return 0, 0
            return STOPPED
        self.blocking += 1
        self.now += self.sleep_ns
        return STOPPED


def test_a_stop_that_comes_while_polling_is_taken_without_sleeping(monkeypatch):
    waits = FakeWaits(monkeypatch, poll_misses=5, sleep_ns=0)
    with Tracer(spin_ns=50_000) as tracer:
        tracer.spin_ns = 50_000  # (whatever this machine's CPU count made of it)
        next_stop = tracer._next_stop()
        assert next_stop() == STOPPED
    assert (waits.polls, waits.blocking) == (6, 0)


def test_polling_gives_up_after_spin_ns_and_then_sleeps(monkeypatch):
    waits = FakeWaits(monkeypatch, poll_misses=1_000, sleep_ns=0)
    with Tracer() as tracer:
        tracer.spin_ns = 50_000
        assert tracer._next_stop()() == STOPPED
    # the first poll, then polls of 1 µs each until 50 µs have passed, then one sleep
    assert waits.blocking == 1
    assert 50 <= waits.polls <= 52


def test_a_slow_stop_turns_polling_off_and_a_quick_one_back_on(monkeypatch):
    waits = FakeWaits(monkeypatch, poll_misses=1_000, sleep_ns=10_000_000)
    with Tracer() as tracer:
        tracer.spin_ns = 50_000
        next_stop = tracer._next_stop()
        next_stop()  # polled in vain, then slept 10 ms: the stops are slow
        polls = waits.polls
        next_stop()
        assert waits.polls == polls, "polled although the last stop was slow"
        assert waits.blocking == 2
        waits.sleep_ns = 5_000  # this sleep ends within spin_ns: stops are fast again
        next_stop()
        waits.poll_misses = 0
        next_stop()
        assert waits.polls == polls + 1 and waits.blocking == 3


def test_never_polls_with_one_cpu_or_spin_zero(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    with Tracer(spin_ns=50_000) as tracer:
        assert tracer.spin_ns == 0  # polling would keep the command off the only CPU
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    with Tracer(spin_ns=50_000) as tracer:
        assert tracer.spin_ns == 50_000
    waits = FakeWaits(monkeypatch, poll_misses=0, sleep_ns=0)
    with Tracer(spin_ns=0) as tracer:
        assert tracer._next_stop()() == STOPPED
    assert (waits.polls, waits.blocking) == (0, 1)
