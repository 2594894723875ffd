"""sctrace's failures of its own: told in one line, never a traceback, never the command's harm.

A log that cannot be written loses lines, not the traced command; -p on a process
that cannot be seized, a bad --format or a bad error_code stop sctrace with a message.
"""

import os
import re
import subprocess

from sctrace_support import SCTRACE, rule, sctrace

from syscalltrack.ptrace import sys as pt


def proc_status(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line.split(":\t", 1)[1].strip() for line in f
                    if line.startswith(field + ":\t"))


def lost_lines(notices: list[str], log: str) -> int:
    """The count of the final 'N log lines could not be written' notice."""
    counts = [re.fullmatch(rf"sctrace: (\d+) log lines? could not be written to {log}", n)
              for n in notices]
    (count,) = [int(m[1]) for m in counts if m]
    return count


def test_a_full_log_loses_lines_not_the_command(tmp_path):
    """The command waits on stdin until sctrace said the log failed, so that it
    certainly still has work to do (and a write to log) after the failure."""
    done = tmp_path / "done"
    proc = subprocess.Popen(
        [*SCTRACE, "-e", "trace=write", "-o", "/dev/full", "--",
         "sh", "-c", f'echo a; read x; echo "$x" > {done}; exit 3'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()
    out, rest = proc.communicate("go\n")
    assert first == ("sctrace: cannot write the log to /dev/full: No space left on device; "
                     "lines are being lost\n")
    assert (proc.returncode, out, done.read_text()) == (3, "a\n", "go\n")
    assert lost_lines(rest.splitlines(), "/dev/full") == 2


def test_rules_still_apply_once_the_log_fails(tmp_path):
    target = tmp_path / "keep"
    target.write_text("")
    rules = rule("unlink", "type = FAIL\nerror_code = -EACCES\nlog_format {%pid %params}")
    run = sctrace(tmp_path, rules, "sh", "-c", f"rm {target}; rm {target}; exit 5",
                  options=["-o", "/dev/full"])
    assert run.code == 5
    assert target.exists()
    assert run.err.count("Permission denied") == 2
    assert lost_lines(run.notices, "/dev/full") == 2


def test_a_log_pipe_with_no_reader_loses_lines_not_the_command(tmp_path):
    done = tmp_path / "done"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [*SCTRACE, "-e", "trace=write", "-o", f"/dev/fd/{write_end}", "--",
             "sh", "-c", f"echo a; echo b > {done}; exit 3"],
            pass_fds=[write_end], capture_output=True, text=True)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stdout, done.read_text()) == (3, "a\n", "b\n")
    notices = proc.stderr.splitlines()
    assert notices[0] == (f"sctrace: cannot write the log to /dev/fd/{write_end}: Broken pipe; "
                          "lines are being lost")
    assert lost_lines(notices, f"/dev/fd/{write_end}") == 2


def test_closed_stderr_loses_the_log_not_the_command(tmp_path):
    """Without -o the log goes to stderr; closed, nobody can be told, but the command runs."""
    done = tmp_path / "done"
    proc = subprocess.run(
        [*SCTRACE, "-e", "trace=write", "--", "sh", "-c", f"echo a; echo b > {done}; exit 3"],
        stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(2))
    assert (proc.returncode, proc.stdout, done.read_text()) == (3, "a\n", "b\n")


def attach_error(*pids: int) -> subprocess.CompletedProcess:
    return subprocess.run([*SCTRACE, "-e", "trace=unlink", *(f"-p{pid}" for pid in pids)],
                          capture_output=True, text=True)


def test_attach_to_no_such_process_is_a_message():
    with open("/proc/sys/kernel/pid_max") as f:
        no_such_pid = int(f.read())  # pids stay below pid_max
    result = attach_error(no_such_pid)
    assert (result.returncode, result.stderr) == (
        1, f"sctrace: cannot attach to pid {no_such_pid}: no such process\n")


def test_attach_to_a_traced_process_is_a_message(helper):
    """The first process is seized, then let go when the second cannot be."""
    free = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
    traced = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
    try:
        pt.seize(traced.pid, 0)
        result = attach_error(free.pid, traced.pid)
        assert (result.returncode, result.stderr) == (
            1, f"sctrace: cannot attach to pid {traced.pid}: it is already traced by pid "
               f"{os.getpid()} (one tracer per process)\n")
        assert proc_status(free.pid, "TracerPid") == "0"
        assert proc_status(free.pid, "State")[0] == "S"
    finally:
        for proc in (free, traced):
            proc.stdin.close()
            proc.wait()


def test_unknown_macro_in_format_is_refused(tmp_path):
    ran = tmp_path / "ran"
    run = sctrace(tmp_path, None, "touch", str(ran), options=["--format", "X %bogus %pid %"])
    assert run.code == 1
    assert run.notices == ["sctrace: unknown macro %bogus in --format at offset 2"]
    assert not ran.exists()


def test_error_code_outside_the_errno_range_is_refused_before_the_command_runs(tmp_path):
    target = tmp_path / "target"
    target.write_text("")
    rules = rule("unlink", "type = FAIL\nerror_code = -5000", filter_='PARAMS[1] ~= "target"')
    run = sctrace(tmp_path, rules, "rm", str(target))
    assert run.code == 1
    assert run.err.endswith("error: error_code -5000 is not an errno: a negative error_code "
                            "is -1 to -4095 (or a name, such as -EACCES); 0 pretends success, "
                            "a positive number is returned as is\n")
    assert target.exists()
