"""When sctrace cannot attach, it says why in words: a zombie, a kernel thread, itself,
another tracer; and what to give when it got neither a command nor -p."""

import os
import subprocess
import time

from sctrace_support import SCTRACE

from syscalltrack.cli.sctrace import _why_not_traceable


def attach_error(pid: int) -> str:
    done = subprocess.run([*SCTRACE, "-e", "trace=unlink", f"-p{pid}"], capture_output=True,
                          text=True)
    assert done.returncode == 1
    return done.stderr


def test_a_zombie_is_named_as_such():
    parent = subprocess.Popen(["sh", "-c", "sleep 0.1 & exec sleep 30"])
    try:
        child = None
        while child is None:  # the sleep 0.1 child, a zombie once done (its parent: sleep)
            time.sleep(0.05)
            with open(f"/proc/{parent.pid}/task/{parent.pid}/children") as f:
                kids = f.read().split()
            if kids:
                with open(f"/proc/{kids[0]}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        child = int(kids[0])
        assert attach_error(child) == (f"sctrace: cannot attach to pid {child}: it is a zombie "
                                       "(it has exited and waits for its parent to reap it)\n")
    finally:
        parent.kill()
        parent.wait()


def test_a_kernel_thread_is_named_as_such():
    assert attach_error(2) == "sctrace: cannot attach to pid 2: it is a kernel thread\n"


def test_sctrace_itself_and_an_untraced_process_have_their_reasons():
    assert _why_not_traceable(os.getpid()) == "that is sctrace itself"
    assert _why_not_traceable(1).startswith("not permitted")  # nothing about pid 1 says why


def test_neither_a_command_nor_a_pid_says_what_to_give():
    done = subprocess.run([*SCTRACE, "-e", "trace=unlink"], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (
        1, "sctrace: give a command to run (sctrace [options] -- CMD ARGS...), or -p PID to "
           "attach to a running process\n")
