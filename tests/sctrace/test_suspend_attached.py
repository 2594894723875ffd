"""SUSPEND of a process sctrace attached to: the notice says what holds for it.

A process sctrace started carries its seccomp filter, so once resumed untraced the calls
the filter routes to a tracer fail with ENOSYS, and the notice says so; an attached one
carries no filter of ours and runs as before (the notice said ENOSYS there too, review).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from sctrace_support import SCTRACE, rule, wait_until

WAITS_THEN_UNLINKS = """\
import os, sys, time
print(os.getpid(), flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
try:
    os.unlink(sys.argv[1])
    print("unlinked", flush=True)
except OSError as e:
    print(e.strerror, flush=True)
"""


def _status(pid: int) -> str:
    return Path(f"/proc/{pid}/status").read_text()


def test_a_suspended_attached_process_runs_as_before_once_resumed(tmp_path):
    victim, go = tmp_path / "victim", tmp_path / "go"
    victim.touch()
    target = subprocess.Popen([sys.executable, "-c", WAITS_THEN_UNLINKS, str(victim), str(go)],
                              stdout=subprocess.PIPE, text=True)
    pid = int(target.stdout.readline())
    rules = tmp_path / "s.rules"
    rules.write_text(rule("unlink", "type = SUSPEND", filter_=f'PARAMS[1] == "{victim}"'))
    tracer = subprocess.Popen([*SCTRACE, "-c", str(rules), "-p", str(pid)],
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: f"TracerPid:\t{tracer.pid}" in _status(pid), what="the attach")
        go.touch()
        notice = tracer.stderr.readline()
        assert f"suspended pid {pid}" in notice and "ENOSYS" not in notice, notice
        assert "carries no filter of sctrace's and runs as before" in notice, notice
        wait_until(lambda: "State:\tT (stopped)" in _status(pid), what="SIGSTOP")
        os.kill(pid, signal.SIGCONT)
        assert target.stdout.readline() == "unlinked\n"  # no ENOSYS: it ran as before
        assert target.wait(timeout=60) == 0
        assert tracer.wait(timeout=60) == 0
    finally:
        for proc in (target, tracer):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
