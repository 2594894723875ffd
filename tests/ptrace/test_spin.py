"""The tracer's wait for the next stop: it polls while stops come fast, else it sleeps."""

import os
import time

import pytest

from syscalltrack.ptrace import Tracer

STOPPED = (4242, 0x857F)  # a seccomp stop's status, as waitpid gives it
SPIN = 50_000
US = 1_000


class Stops:
    """os.waitpid and time.monotonic_ns for `Tracer._next_stop` on a scripted clock: the
    n-th stop comes `gaps[n]` ns after the tracer starts waiting for it; a poll costs
    1 µs of the clock, a sleep lasts until the stop."""

    def __init__(self, monkeypatch, gaps, yield_ns=0):
        self.now = 0
        self.gaps = list(gaps)
        self.arrival = None
        self.polls = self.vain = self.sleeps = 0
        monkeypatch.setattr(os, "waitpid", self.waitpid)
        monkeypatch.setattr(time, "monotonic_ns", lambda: self.now)
        self.yield_ns = yield_ns  # how long a yield lets others run
        monkeypatch.setattr(os, "sched_yield", self.sched_yield)

    def sched_yield(self):
        self.now += self.yield_ns

    def waitpid(self, pid, options):
        assert pid == -1
        if self.arrival is None:
            self.arrival = self.now + self.gaps.pop(0)
        if options & os.WNOHANG:
            self.polls += 1
            if self.now < self.arrival:
                self.now += US
                self.vain += 1
                return 0, 0
        else:
            self.sleeps += 1
            self.now = max(self.now, self.arrival)
        self.arrival = None
        return STOPPED


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})


def waits(monkeypatch, gaps, spin=SPIN, yield_ns=0):
    stops = Stops(monkeypatch, gaps, yield_ns)
    with Tracer(spin_ns=spin) as tracer:
        next_stop = tracer._next_stop()
        for _ in range(len(stops.gaps)):
            assert next_stop() == STOPPED
    return stops


def test_stops_that_come_fast_are_taken_by_polling(monkeypatch, two_cpus):
    stops = waits(monkeypatch, [5 * US] * 100)
    assert stops.sleeps == 1  # the first: nothing known yet
    assert stops.polls >= 99 and stops.vain <= 5 * 99


def test_stops_that_come_late_are_slept_for(monkeypatch, two_cpus):
    stops = waits(monkeypatch, [2_000 * US] * 100)
    assert (stops.polls, stops.sleeps) == (0, 100)


def test_a_quick_exit_stop_between_late_calls_does_not_keep_polling_on(monkeypatch, two_cpus):
    # Each traced call: its exit stop a few µs after its entry's, the next call 2 ms on.
    stops = waits(monkeypatch, [5 * US, 2_000 * US] * 200)
    assert stops.vain * US <= 2 * SPIN  # a vain poll at most twice, not at every call


def test_polling_comes_back_when_stops_come_fast_again(monkeypatch, two_cpus):
    stops = waits(monkeypatch, [2_000 * US] * 50 + [5 * US] * 200)
    assert stops.sleeps < 50 + 30  # after the slow ones, a few sleeps before polling


def test_never_polls_on_one_cpu(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    stops = waits(monkeypatch, [5 * US] * 100)
    assert stops.polls == 0


def test_never_polls_with_spin_zero(monkeypatch, two_cpus):
    stops = waits(monkeypatch, [5 * US] * 100, spin=0)
    assert (stops.polls, stops.sleeps) == (0, 100)


def test_being_moved_to_one_cpu_turns_polling_off(monkeypatch):
    cpus = {0, 1}
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cpus)
    stops = Stops(monkeypatch, [5 * US] * 200)
    with Tracer(spin_ns=SPIN) as tracer:
        next_stop = tracer._next_stop()
        for _ in range(100):
            next_stop()
        assert stops.polls > 90
        cpus = {0}  # (taskset -p -c 0 on sctrace)
        for _ in range(40):  # a late stop, as the tracee now waits for our CPU
            stops.gaps.insert(0, 2_000 * US)
            next_stop()
        polls = stops.polls
        for _ in range(100):
            next_stop()
        assert stops.polls == polls


def test_a_stop_found_after_a_long_yield_counts_as_late(monkeypatch, two_cpus):
    # Another task on our CPU: each yield gives it a 3 ms time slice. A sleeping tracer
    # would be woken at the stop; polling must turn off rather than wait out the slices.
    stops = waits(monkeypatch, [5 * US] * 20 + [20 * US] * 200, yield_ns=3_000 * US)
    assert stops.vain <= 8  # (back up from a floor twice as deep after each vain poll)


def test_a_stop_polled_in_time_resets_the_back_off(monkeypatch, two_cpus):
    # Busy CPUs (late stops, a long yield), quiet (fast stops), then busy again: the
    # second busy spell starts from the shallow floor, not where the first left it.
    busy, quiet = [20 * US] * 150, [5 * US] * 100
    stops = Stops(monkeypatch, [5 * US] * 20 + busy + quiet + busy, yield_ns=3_000 * US)
    with Tracer(spin_ns=SPIN) as tracer:
        next_stop = tracer._next_stop()
        for _ in range(20 + 150):
            next_stop()
        stops.yield_ns = 0
        for _ in range(100):
            next_stop()
        stops.yield_ns = 3_000 * US
        vain = stops.vain
        for _ in range(150):
            next_stop()
    assert stops.vain - vain >= 3  # polled again after 16, 32, 64 stops: a reset floor
