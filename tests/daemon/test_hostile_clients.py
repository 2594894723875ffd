"""Root clients that misbehave cost only themselves: deeply nested JSON, answers never
read, a follow behind a pile of unread answers, text JSON can carry but UTF-8 cannot,
and running out of descriptors."""

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time

from daemon_support import SAFETY, rule, wait_for

from syscalltrack.daemon import client, protocol

UNLINK = rule("unlink_rule1", "unlink")


def connect() -> socket.socket:
    sock = client.connect()
    sock.settimeout(SAFETY)
    return sock


def answers(sock: socket.socket, count: int) -> list[dict]:
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(1 << 16)
        assert chunk, f"closed after {len(data.splitlines())} answers"
        data += chunk
    return [json.loads(line) for line in data.splitlines()[:count]]


def test_deeply_nested_json_is_an_error_answer_not_the_end_of_the_daemon(tracker):
    tracker.ok("sct_load")
    with connect() as sock:
        sock.sendall(b'{"op":"download","x":' + b"[" * 100_000 + b"\n")
        (answer,) = answers(sock, 1)
    assert answer["ok"] is False and "malformed request" in answer["error"]
    assert client.request("ping")["ok"]


def test_a_client_that_never_reads_its_answers_holds_up_nobody(tracker, tmp_path):
    loaded = tracker.loaded_with(tmp_path / "r.conf", UNLINK)
    pending = 20_000  # status answers of ~1 KB each: far more than a socket buffers
    with connect() as hog, connect() as follower:
        # Its requests pile up too (the daemon stops reading them past OUT_LIMIT of
        # unread answers): send from a thread, which blocks until the hog reads.
        sender = threading.Thread(target=hog.sendall, args=(b'{"op":"status"}\n' * pending,))
        sender.start()
        # A follow queued behind a pile of answers its client has not read yet.
        follower.sendall(b'{"op":"status"}\n' * 300 + b'{"op":"follow"}\n')
        time.sleep(0.5)
        # Everyone else is served meanwhile: another client, and an upload.
        assert client.request("ping")["ok"]
        assert tracker.ok("sct_config", "download") == loaded
        # The follower still gets every answer, in order, then its stream.
        got = answers(follower, 301)
        assert [a["ok"] for a in got] == [True] * 301 and "rules" in got[0]
        assert got[-1] == {"ok": True}
        # The hog, once it reads, gets all its answers too.
        assert len(answers(hog, pending)) == pending
        sender.join()


def test_text_that_is_not_unicode_changes_nothing(tracker, tmp_path):
    loaded = tracker.loaded_with(tmp_path / "r.conf", UNLINK)
    saved = (tracker.state_dir / "rules").read_text()
    other = rule("other", "rmdir") + "# \ud800 comment\n"
    with connect() as sock:
        sock.sendall(json.dumps({"op": "upload", "text": other, "filename": "x"}).encode()
                     + b"\n")
        (answer,) = answers(sock, 1)
    assert answer["ok"] is False
    assert "not valid Unicode" in answer["error"] and "nothing changed" in answer["error"]
    assert tracker.ok("sct_config", "download") == loaded
    assert (tracker.state_dir / "rules").read_text() == saved


HOLDER = """
import socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks.append(s)
print("ready", flush=True)
time.sleep(600)
"""


def test_out_of_descriptors_pauses_accepting_warns_once_and_recovers(tracker):
    tracker.ok("sct_load")
    pid = tracker.pid()
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    in_use = len(os.listdir(f"/proc/{pid}/fd"))
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 20, hard))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, protocol.control_socket(), "60"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"  # 60 connected; ~40 wait unaccepted
        wait_for(lambda: len(os.listdir(f"/proc/{pid}/fd")) >= in_use + 20, "the limit")
        time.sleep(3)  # three pauses' worth: a spinning daemon would burn this at 100% CPU
        with open(f"/proc/{pid}/stat") as f:
            ticks = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
        time.sleep(2)
        with open(f"/proc/{pid}/stat") as f:
            later = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
        assert later - ticks < 0.5 * os.sysconf("SC_CLK_TCK"), "the daemon spins"
    finally:
        holder.kill()
        holder.wait()
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    wait_for(lambda: client.request("ping")["ok"], "the daemon to accept again")
    log = (tracker.run_dir / "daemon.log").read_text()
    assert log.count("cannot accept connections: Too many open files") == 1, log[-2000:]
