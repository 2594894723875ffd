"""Attaching, detaching, stopping and dying: no tracee is ever left stopped or traced."""

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ptrace_support import status_field, wait_until

from syscalltrack.ptrace.events import Consumer
from syscalltrack.ptrace.seccomp import ErrnoRule, Policy
from syscalltrack.ptrace.tracer import Tracer

NR_OPENAT, NR_CLOCK_NANOSLEEP = 257, 230
SRC = str(Path(__file__).resolve().parents[2] / "src")


def counter(path: Path) -> int:
    try:
        return int(path.read_text() or -1)
    except (OSError, ValueError):
        return -1


def keeps_counting(path: Path) -> None:
    start = counter(path)
    wait_until(lambda: counter(path) > start + 2, what=f"{path} to keep counting")


def untraced_and_running(pid: int) -> None:
    assert status_field(pid, "TracerPid") == "0"
    # running or sleeping: R, S, or D while the loop's write is at the disk (not T/t, Z)
    assert status_field(pid, "State")[0] in "RSD"


@pytest.fixture
def looper(helper, tmp_path):
    """An untraced helper rewriting a counter file every 10 ms; killed afterwards."""
    path = tmp_path / "count"
    p = subprocess.Popen([helper, "loop", str(path)])
    wait_until(lambda: counter(path) >= 0, what="the looper to start")
    yield p, path
    p.kill()
    p.wait()


class StopAfter(Consumer):
    """Counts calls of one number and stops the tracer after ``n`` of them."""

    def __init__(self, nr: int, n: int):
        self.nr, self.n = nr, n
        self.seen = []
        self.tracer = None

    def on_entry(self, call):
        if call.nr == self.nr:
            self.seen.append(call.read_string(1) if self.nr == NR_OPENAT else call.args[0])
            if len(self.seen) >= self.n:
                self.tracer.stop()


def test_attach_sees_calls_and_detach_leaves_it_running(looper):
    proc, path = looper
    consumer = StopAfter(NR_OPENAT, 3)
    with Tracer(consumer) as tracer:
        consumer.tracer = tracer
        tids = tracer.attach(proc.pid)
        assert tids == [proc.pid]
        assert status_field(proc.pid, "TracerPid") == str(os.getpid())
        tracer.run()
    assert consumer.seen[:3] == [str(path).encode()] * 3
    untraced_and_running(proc.pid)
    keeps_counting(path)


def test_attached_process_follows_the_policy_in_python(looper):
    proc, path = looper

    class Snapshots(StopAfter):
        """Notes the counter file at each traced sleep."""

        values = []

        def on_entry(self, call):
            self.values.append(counter(path))
            return super().on_entry(call)

    consumer = Snapshots(NR_CLOCK_NANOSLEEP, 6)
    policy = Policy(trace={"x86_64": {NR_CLOCK_NANOSLEEP}},
                    errno_rules=[ErrnoRule("x86_64", NR_OPENAT, (), errno.EACCES)])
    with Tracer(consumer) as tracer:
        consumer.tracer = tracer
        tracer.attach(proc.pid, policy=policy)
        tracer.run()
    # Once attached, every open fails: the file keeps one value (the first read may race).
    assert len(consumer.seen) == 6
    assert len(set(consumer.values[1:])) == 1
    untraced_and_running(proc.pid)
    keeps_counting(path)


def _tracer_script(body: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.Popen([sys.executable, "-c", body], stdout=subprocess.PIPE, env=env,
                            text=True)


def test_tracer_killed_with_sigkill_takes_spawned_commands_along(helper, tmp_path):
    path = tmp_path / "count"
    tracer = _tracer_script(
        "from syscalltrack.ptrace.tracer import Tracer\n"
        "from syscalltrack.ptrace.seccomp import Policy\n"
        "t = Tracer()\n"
        f"pid = t.spawn([{helper!r}, 'loop', {str(path)!r}],\n"
        "              seccomp_policy=Policy(trace={'x86_64': {257}}))\n"
        "print(pid, flush=True)\n"
        "t.run()\n")
    pid = int(tracer.stdout.readline())
    keeps_counting(path)
    tracer.kill()
    tracer.wait()
    tracer.stdout.close()
    wait_until(lambda: status_field(pid, "State") in (None, "Z (zombie)"),
               what="the spawned command to die with its tracer")


def test_sigterm_detaches_attached_processes_and_they_keep_running(looper):
    proc, path = looper
    tracer = _tracer_script(
        "import sys\n"
        "from syscalltrack.ptrace.tracer import Tracer\n"
        "t = Tracer()\n"
        f"t.attach({proc.pid})\n"
        "print('attached', flush=True)\n"
        "sys.exit(t.run())\n")
    assert tracer.stdout.readline().strip() == "attached"
    keeps_counting(path)  # traced, and running
    tracer.send_signal(signal.SIGTERM)
    assert tracer.wait() == 128 + signal.SIGTERM
    tracer.stdout.close()
    untraced_and_running(proc.pid)
    keeps_counting(path)


def test_sigint_kills_spawned_commands_and_reports_128_plus_signal(helper, tmp_path):
    path = tmp_path / "count"
    tracer = _tracer_script(
        "import sys\n"
        "from syscalltrack.ptrace.tracer import Tracer\n"
        "t = Tracer()\n"
        f"pid = t.spawn([{helper!r}, 'loop', {str(path)!r}])\n"
        "print(pid, flush=True)\n"
        "sys.exit(t.run())\n")
    pid = int(tracer.stdout.readline())
    keeps_counting(path)
    tracer.send_signal(signal.SIGINT)
    assert tracer.wait() == 128 + signal.SIGINT
    tracer.stdout.close()
    assert status_field(pid, "State") in (None, "Z (zombie)")


def test_group_stop_keeps_the_tracee_stopped_until_sigcont(helper, tmp_path):
    path = tmp_path / "count"
    box = []

    def run():
        with Tracer() as tracer:
            box.append(tracer.spawn([helper, "loop", str(path)],
                                    seccomp_policy=Policy(trace={"x86_64": {NR_OPENAT}})))
            box.append(tracer.run(handle_signals=False))

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_until(lambda: box, what="the spawn")
        pid = box[0]
        keeps_counting(path)
        os.kill(pid, signal.SIGSTOP)
        # Stopped, and the SIGSTOP taken: a stop at a traced openat (O_TRUNC) also shows
        # as 't', and the call would then still empty the file after `frozen` was read.
        stop_bit = 1 << (signal.SIGSTOP - 1)
        wait_until(lambda: status_field(pid, "State")[0] in "Tt"
                   and not int(status_field(pid, "ShdPnd"), 16) & stop_bit
                   and not int(status_field(pid, "SigPnd"), 16) & stop_bit,
                   what="the group-stop")
        frozen = counter(path)
        time.sleep(0.2)
        assert counter(path) == frozen
        os.kill(pid, signal.SIGCONT)
        keeps_counting(path)
    finally:
        if box:
            os.kill(box[0], signal.SIGKILL)
        thread.join()
    assert box[1] == 128 + signal.SIGKILL
