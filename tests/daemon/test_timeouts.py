"""Tools facing a stopped daemon give up with a message instead of hanging; a following
sctlog keeps waiting for events (quiet is no hang); the request may still run later."""

import os
import select
import signal
import subprocess

from daemon_support import BIN, SAFETY, alive_process, rule, wait_for


def make(gen, name: str) -> None:
    (gen / name).mkdir()
    (gen / name).rmdir()


def silent(pid: int, op: str) -> str:
    return (f"the syscalltrack daemon (pid {pid}) did not answer '{op}' within 1 s: it is "
            f"stopped or stuck; the '{op}' request may still run if it resumes "
            "(SYSCALLTRACK_TIMEOUT sets the limit in seconds)\n")


def test_tools_time_out_on_a_stopped_daemon_and_a_stream_waits(tracker, tmp_path):
    gen = tmp_path / "gen"
    gen.mkdir()
    rules = tmp_path / "r.conf"
    rules.write_text(rule("mk", "mkdir", f'PARAMS[1] startswith "{gen}/"', fmt="%params"))
    tracker.ok("sct_load", "--no-syslog")
    tracker.ok("sct_config", "upload", str(rules))
    env = {**os.environ, "SYSCALLTRACK_TIMEOUT": "1"}
    follower = subprocess.Popen([str(BIN / "sctlog")], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
    tracker.followers.append(follower)
    wait_for(lambda: tracker.status()["readers"], "sctlog to connect")
    pid = tracker.pid()

    os.kill(pid, signal.SIGSTOP)
    try:
        done = tracker.tool("sct", "status", env=env)
        assert (done.returncode, done.stderr) == (1, "sct: " + silent(pid, "status"))
        done = tracker.tool("sctlog", env=env)  # the handshake times out
        assert (done.returncode, done.stderr) == (1, "sctlog: " + silent(pid, "follow"))
        done = tracker.tool("sct_load", env=env)
        assert done.returncode == 1 and f"already loaded (pid {pid})" in done.stderr
    finally:
        os.kill(pid, signal.SIGCONT)
    # The stream was quiet for longer than the limit (sct status gave up meanwhile):
    # sctlog still waits, and shows the next event.
    make(gen, "after-the-stop")
    ready, _, _ = select.select([follower.stdout], [], [], SAFETY)
    assert ready and follower.stdout.readline() == f'"{gen}/after-the-stop", 511\n'.encode()

    os.kill(pid, signal.SIGSTOP)
    try:
        done = tracker.tool("sct_config", "delete", env=env)
        assert (done.returncode, done.stderr) == (1, "sct_config: " + silent(pid, "delete"))
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: tracker.status()["engine"] is None, "the delete to run after all")

    os.kill(pid, signal.SIGSTOP)
    try:
        done = tracker.tool("sct_unload", env=env)
        assert (done.returncode, done.stderr) == (1, "sct_unload: " + silent(pid, "unload"))
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: not alive_process(pid), "the unload to run after all")
    assert follower.wait(SAFETY) == 0  # it had the end-of-stream mark
