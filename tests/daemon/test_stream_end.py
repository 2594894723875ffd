"""How a follow stream ends: an orderly stop (sct_unload, SIGTERM) marks the end, so sctlog
tells it from a daemon that was killed, which it reports as a lost connection (status 1)."""

import json
import os
import signal
import socket
import threading

import pytest
from daemon_support import SAFETY, alive_process, wait_for

from syscalltrack.daemon import client
from syscalltrack.sinks.stream import END_OF_STREAM, Stream


def raw_follower(end_mark: bool | None) -> socket.socket:
    """A follow connection made by hand; `end_mark` None leaves the field out, as an older
    client does."""
    sock = client.connect()
    extra = {} if end_mark is None else {"end_mark": end_mark}
    client.send(sock, "follow", **extra)
    reply = b""
    while not reply.endswith(b"\n"):
        reply += sock.recv(1)
    assert json.loads(reply) == {"ok": True}
    return sock


def read_to_the_end(sock: socket.socket) -> bytes:
    sock.settimeout(SAFETY)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return data


@pytest.mark.parametrize("stop", ["sct_unload", "SIGTERM"])
def test_an_orderly_stop_ends_each_stream_with_the_mark_only_for_who_asked(tracker, stop):
    tracker.ok("sct_load")
    asking, old_style, declining = raw_follower(True), raw_follower(None), raw_follower(False)
    text, as_json = tracker.follow(), tracker.follow("--json")
    wait_for(lambda: len(tracker.status()["readers"]) == 5, "every reader to be registered")
    pid = tracker.pid()
    if stop == "sct_unload":
        tracker.ok("sct_unload")
    else:
        os.kill(pid, signal.SIGTERM)
    assert read_to_the_end(asking) == END_OF_STREAM
    assert read_to_the_end(old_style) == read_to_the_end(declining) == b""
    for reader in (text, as_json):
        out, err = reader.communicate(timeout=SAFETY)
        assert (reader.returncode, out, err) == (0, b"", b"")
    wait_for(lambda: not alive_process(pid), "the daemon to exit")


def test_sctlog_reports_a_killed_daemon_as_a_lost_connection(tracker):
    tracker.ok("sct_load")
    log = tracker.follow()
    os.kill(tracker.pid(), signal.SIGKILL)
    out, err = log.communicate(timeout=SAFETY)
    assert log.returncode == 1 and out == b""
    assert err.decode() == ("sctlog: lost the connection to the daemon (the stream ended "
                            "without the daemon's end-of-stream mark: the daemon was killed or "
                            "crashed)\n")


def test_a_reader_behind_at_the_end_still_gets_every_line_then_the_mark():
    """What a slow reader is owed when the stream ends (more than its socket holds) is sent
    before the mark, while the reader takes it."""
    ours, theirs = socket.socketpair()
    stream = Stream()
    stream.add(ours, (False, None), end_mark=True)
    lines = b"".join(b"line %d\n" % i for i in range(100_000))
    stream.publish({(False, None): (lines, 100_000)})
    received = []
    taker = threading.Thread(target=lambda: received.append(read_to_the_end(theirs)))
    taker.start()
    stream.end(grace=SAFETY)
    taker.join(SAFETY)
    assert received == [lines + END_OF_STREAM]
    assert not stream.readers and ours.fileno() == -1
