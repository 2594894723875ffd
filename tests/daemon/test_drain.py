"""Events still in the kernel ring when the engine goes (sct_config delete, sct_unload
--force, SIGTERM) are all delivered: before, one batch was read and the rest closed with
the ring."""

import json
import os
import signal
import threading

import pytest
from daemon_support import SAFETY, alive_process, rule, wait_for

from syscalltrack.daemon import client, server

N = 4 * server.BATCH + 2000  # more than the last turns read; fewer than the 8 MiB ring holds


class Lines(threading.Thread):
    """An sctlog's lines, to its end."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.lines = proc, []

    def run(self):
        self.lines.extend(self.proc.stdout)


@pytest.mark.parametrize("how", ["delete", "unload --force", "SIGTERM"])
def test_what_the_ring_holds_is_delivered_before_the_engine_goes(tracker, tmp_path, how):
    gen = tmp_path / "gen"
    gen.mkdir()
    events = tmp_path / "events.json"
    rules = tmp_path / "r.conf"
    rules.write_text(rule("mk", "mkdir", f'PARAMS[1] startswith "{gen}/"'))
    tracker.ok("sct_load", "--no-syslog", "--json-file", str(events))
    tracker.ok("sct_config", "upload", str(rules))
    reader = Lines(tracker.follow("--format", "%params"))
    reader.start()
    pid = tracker.pid()
    sock = client.connect()  # accepted now, so that the daemon reads the request at once
    sock.settimeout(SAFETY)
    answers = sock.makefile("rb")
    client.send(sock, "ping")
    client.answer(answers, "ping")
    os.kill(pid, signal.SIGSTOP)  # the ring fills while the daemon reads nothing
    try:
        for i in range(N):
            (gen / str(i)).mkdir()
            (gen / str(i)).rmdir()
        if how == "SIGTERM":
            os.kill(pid, signal.SIGTERM)
        else:  # read when the daemon runs again, with the ring full
            client.send(sock, how.split()[0], **({"force": True} if "force" in how else {}))
    finally:
        os.kill(pid, signal.SIGCONT)
    with sock, answers:
        if how != "SIGTERM":
            client.answer(answers, how.split()[0])
    if how == "delete":
        # (At least N: other processes' undecided mkdirats count as delivered too.)
        counts = tracker.status()["events"]
        assert counts["kernel_lost"] == 0 and counts["delivered"] >= N, counts
        wait_for(lambda: len(reader.lines) >= N, "the reader's lines")
    else:
        wait_for(lambda: not alive_process(pid), "the daemon to exit")
        reader.join(SAFETY)
    names = [f'"{gen}/{i}", 511\n'.encode() for i in range(N)]  # mode 0777
    # (The engine watches the whole machine: another process's mkdirat of a relative
    # name, which the rule cannot decide in the kernel, is told to readers too.)
    ours = f"-- rule mk undecided in the kernel for {os.getpid()}[".encode()
    others = b"-- rule mk undecided in the kernel for "
    assert [line for line in reader.lines
            if not line.startswith(others) or line.startswith(ours)] == names
    written = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["args"][0]["value"] for e in written if e.get("pid") == os.getpid()] == [
        f"{gen}/{i}" for i in range(N)]
