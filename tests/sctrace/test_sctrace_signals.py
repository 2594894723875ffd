"""sctrace and signals: SUSPEND in an orphanable process group, Ctrl-C, SIGTERM and SIGHUP.

sctrace runs in a process group of its own, as a job-control shell starts it: its parent
(this test) is outside the group, so the group is orphaned when sctrace exits, and
signals for "the whole job" go to the group.
"""

import contextlib
import errno
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from sctrace_support import SCTRACE, rule, wait_until

PYTHON = sys.executable

# Logs the SIGHUP an orphaned process group gets; the SUSPEND rule stops it at the unlink.
SUSPENDED = """\
import os, signal, sys
def note(sig, frame):
    with open(sys.argv[1], "a") as f:
        f.write(f"pid {os.getpid()} got signal {sig}\\n")
signal.signal(signal.SIGHUP, note)
try:
    os.unlink("suspendme")
except OSError as err:
    print(err.errno, flush=True)
sys.exit(7)
"""
SUSPEND_RULE = rule("unlink", "type = SUSPEND", "stop_here", 'PARAMS[1] == "suspendme"')


def start(tmp_path, rules, *command, options=()):
    """sctrace in a new process group of its own, with pipes for its output."""
    args = list(SCTRACE)
    if rules is not None:
        (tmp_path / "test.rules").write_text(rules)
        args += ["-c", str(tmp_path / "test.rules")]
    args += ["-o", str(tmp_path / "sctrace.log"), *options, "--", *command]
    return subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, process_group=0)


@contextlib.contextmanager
def group_of(proc):
    """Kill whatever is left of sctrace's process group, and reap sctrace."""
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def notices_until(proc, text: str) -> list[str]:
    """sctrace's stderr lines up to the one holding ``text``; fails if sctrace ends first."""
    lines = []
    while True:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"sctrace closed stderr before {text!r}: {lines}")
        lines.append(line)
        if text in line:
            return lines


def suspended_pid(notices: list[str]) -> int:
    return int(next(m[1] for n in notices if (m := re.search(r"suspended pid (\d+) before", n))))


def state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":\t", 1) for line in f if ":\t" in line)
    except FileNotFoundError:
        return "gone"
    return fields["State"].strip() + " tracer " + fields["TracerPid"].strip()


def test_a_suspended_command_stays_stopped_until_resumed(tmp_path):
    (tmp_path / "suspendme").touch()
    hup = tmp_path / "hup.log"
    with group_of(start(tmp_path, SUSPEND_RULE, PYTHON, "-c", SUSPENDED, str(hup))) as proc:
        notices = notices_until(proc, "waiting for suspended pid")
        pid = suspended_pid(notices)
        assert "sctrace keeps running until it has exited" in notices[0]
        wait_until(lambda: state(pid).startswith("T"), what="the suspended command to stop")
        assert state(pid) == "T (stopped) tracer 0"
        os.kill(pid, signal.SIGCONT)
        assert proc.wait() == 7  # the command's status, once it has run on and exited
        assert proc.stdout.read() == f"{errno.ENOSYS}\n"  # resumed untraced: ENOSYS
    assert not hup.exists()  # no orphaned-group SIGHUP (sctrace outlived it)
    assert (tmp_path / "suspendme").exists()


def test_sctrace_waits_for_a_suspended_grandchild_after_the_command_exits(tmp_path):
    (tmp_path / "suspendme").touch()
    hup = tmp_path / "hup.log"
    parent = (f"import subprocess, sys\n"
              f"subprocess.Popen([sys.executable, '-c', {SUSPENDED!r}, {str(hup)!r}])\n"
              f"sys.exit(5)\n")
    with group_of(start(tmp_path, SUSPEND_RULE, PYTHON, "-c", parent)) as proc:
        notices = notices_until(proc, "waiting for suspended pid")
        pid = suspended_pid(notices)
        wait_until(lambda: state(pid).startswith("T"), what="the grandchild to stop")
        assert proc.poll() is None
        os.kill(pid, signal.SIGCONT)
        assert proc.wait() == 5  # the command's own status
    assert not hup.exists()


def test_ctrl_c_ends_the_wait_and_kills_the_suspended_command(tmp_path):
    (tmp_path / "suspendme").touch()
    hup = tmp_path / "hup.log"
    with group_of(start(tmp_path, SUSPEND_RULE, PYTHON, "-c", SUSPENDED, str(hup))) as proc:
        pid = suspended_pid(notices_until(proc, "waiting for suspended pid"))
        wait_until(lambda: state(pid).startswith("T"), what="the suspended command to stop")
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait() == 128 + signal.SIGINT
        assert state(pid) == "gone"  # killed, and reaped by sctrace
    assert not hup.exists()


# Cleans up on the signal (as on Ctrl-C), with a call a rule fails, and counts any
# further signal; with "stubborn", it then ignores the signal and never exits.
CLEANS_UP = """\
import os, signal, sys
signum, protected, report = int(sys.argv[1]), sys.argv[2], sys.argv[3]
signal.signal(signum, signal.default_int_handler)
try:
    print(os.getpid(), flush=True)
    while True:
        signal.pause()
except KeyboardInterrupt:
    more = []
    signal.signal(signum, lambda sig, frame: more.append(sig))
    try:
        os.unlink(protected)
        result = 0
    except OSError as err:
        result = err.errno
    def further():  # a Python call: the handlers of signals just delivered run first
        return len(more)
    with open(report, "w") as f:
        f.write(f"{result} {further()}\\n")
    if "stubborn" in sys.argv:
        signal.signal(signum, signal.SIG_IGN)
        print("cleaned", flush=True)
        while True:
            signal.pause()
"""


def start_cleanup(tmp_path, sig, *extra):
    protected = tmp_path / "protected"
    protected.touch()
    rules = rule("unlink", "type = FAIL\nerror_code = -1", "deny", f'PARAMS[1] == "{protected}"')
    return start(tmp_path, rules, PYTHON, "-c", CLEANS_UP, str(int(sig)), str(protected),
                 str(tmp_path / "cleaned.txt"), *extra)


SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_a_signal_to_the_whole_group_lets_the_command_clean_up(tmp_path, sig):
    with group_of(start_cleanup(tmp_path, sig)) as proc:
        assert proc.stdout.readline().strip().isdigit()  # ready
        os.killpg(proc.pid, sig)  # what Ctrl-C does: the whole foreground group
        assert proc.wait() == 0
    # The rule still applied during the cleanup (EPERM), and the signal came once.
    assert (tmp_path / "cleaned.txt").read_text() == f"{errno.EPERM} 0\n"
    assert (tmp_path / "protected").exists()


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_a_signal_to_sctrace_alone_is_sent_on_to_the_command(tmp_path, sig):
    with group_of(start_cleanup(tmp_path, sig)) as proc:
        assert proc.stdout.readline().strip().isdigit()  # ready
        proc.send_signal(sig)  # timeout(1), systemd: sctrace's pid only
        assert proc.wait() == 0
    assert (tmp_path / "cleaned.txt").read_text() == f"{errno.EPERM} 0\n"


def test_a_signal_to_sctrace_then_to_its_group_is_one_signal(tmp_path):
    """timeout(1) sends its signal to its child (sctrace), then to its whole process group:
    one signal, which the command handles; sctrace took the copy for a second one and
    killed the command in its cleanup (found by review: 7 of 12 runs; whether the two
    arrive as one depends on timing, tests/ptrace/test_signal_echo.py drives the handler)."""
    with group_of(start_cleanup(tmp_path, signal.SIGTERM)) as proc:
        assert proc.stdout.readline().strip().isdigit()  # ready
        proc.send_signal(signal.SIGTERM)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait() == 0
    assert (tmp_path / "cleaned.txt").read_text() == f"{errno.EPERM} 0\n"


def test_a_second_ctrl_c_kills_the_command(tmp_path):
    with group_of(start_cleanup(tmp_path, signal.SIGINT, "stubborn")) as proc:
        pid = int(proc.stdout.readline())
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.stdout.readline() == "cleaned\n"
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait() == 128 + signal.SIGINT
        assert state(pid) == "gone"


# Takes SIGINT with sigwait: no signal-delivery stop shows sctrace that it got it.
SIGWAITS = """\
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
print("ready", flush=True)
signal.sigwait({signal.SIGINT})
for _ in range(2):  # a SIGINT sctrace sent on would be pending after the second call
    try:
        os.unlink(sys.argv[1])
    except OSError:
        pass
print("again" if signal.sigtimedwait({signal.SIGINT}, 0) else "once", flush=True)
"""


def test_ctrl_c_on_a_terminal_reaches_the_command_once(tmp_path):
    absent = str(tmp_path / "absent")
    pid, master = pty.fork()  # sctrace leads a session whose terminal is the pty
    if pid == 0:
        try:
            os.execvp(PYTHON, [*SCTRACE, "-o", os.devnull, "-e", "trace=unlink", "--",
                               PYTHON, "-c", SIGWAITS, absent])
        finally:
            os._exit(127)
    output = b""
    try:
        while b"ready" not in output:
            output += read_terminal(master)
        os.write(master, b"\x03")  # Ctrl-C
        while chunk := read_terminal(master):
            output += chunk
        _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        if pid:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)
    assert b"once" in output, output
    assert os.waitstatus_to_exitcode(status) == 0


def read_terminal(master: int) -> bytes:
    """What the pty shows next; b"" once every writer is gone."""
    deadline = time.monotonic() + 60  # a safety net against a hung test
    while not select.select([master], [], [], 0.1)[0]:
        if time.monotonic() > deadline:
            raise AssertionError("timed out reading the terminal")
    try:
        return os.read(master, 4096)
    except OSError as err:  # EIO: the last process holding the terminal has exited
        if err.errno != errno.EIO:
            raise
        return b""
