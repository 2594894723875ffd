"""A rule file too large for one request (protocol.MAX_REQUEST, 4 MiB): `sct_config upload`
refuses it before sending, naming the file, its size and the limit, and nothing changes;
a client that sends one anyway gets the daemon's error and loses only its connection,
whether the daemon saw the request's end or not, and the daemon keeps serving the others."""

import json
import os
import subprocess
import sys

import pytest
from daemon_support import BIN, rule

from syscalltrack.daemon import client, protocol

UNLINK = rule("unlink_rule1", "unlink")
RMDIR = rule("rmdir_rule", "rmdir")
LIMIT = protocol.MAX_REQUEST


def request_size(path, text: str) -> int:
    """What `sct_config upload path` sends, without its newline."""
    return len(protocol.encode({"op": "upload", "text": text, "filename": str(path)})) - 1


def padded(path, text: str, size: int) -> str:
    """`text` and a comment making the upload request for `path` `size` bytes."""
    short = size - request_size(path, text + "#\n")
    assert short >= 0
    return text + "#" + "a" * short + "\n"


def unchanged(tracker, loaded: str, saved: str, engine: dict) -> None:
    assert tracker.ok("sct_config", "download") == loaded
    assert (tracker.state_dir / "rules").read_text() == saved
    assert tracker.status()["engine"] == engine  # the same programs: nothing reloaded


def refusal(done: subprocess.CompletedProcess, path) -> str:
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"sct_config: cannot upload '{path}': ")
    assert f"the {LIMIT} bytes (4 MiB) the daemon takes in one upload" in line
    assert line.endswith("nothing was sent, the loaded rules are unchanged")
    return line


def test_an_oversized_file_is_refused_before_anything_is_sent(tmp_path, monkeypatch):
    monkeypatch.setenv("SYSCALLTRACK_RUN_DIR", str(tmp_path / "run"))  # nothing loaded
    big = tmp_path / "big.rules"
    big.write_text(padded(big, UNLINK, 3 * LIMIT))
    done = subprocess.run([str(BIN / "sct_config"), "upload", str(big)], capture_output=True,
                          text=True)
    size = big.stat().st_size
    assert f": it is {size} bytes, more than" in refusal(done, big)


def test_one_byte_over_is_refused_and_the_limit_itself_uploads(tracker, tmp_path):
    first = tmp_path / "first.rules"
    loaded = tracker.loaded_with(first, UNLINK)
    saved, engine = (tracker.state_dir / "rules").read_text(), tracker.status()["engine"]
    over = tmp_path / "over.rules"
    text = padded(over, RMDIR, LIMIT + 1)
    assert request_size(over, text) == LIMIT + 1
    over.write_text(text)
    line = refusal(tracker.tool("sct_config", "upload", str(over)), over)
    assert f": it is {len(text)} bytes, but {LIMIT + 1} bytes as an upload request" in line
    unchanged(tracker, loaded, saved, engine)

    # The same rules in a request of exactly LIMIT bytes: the client and the daemon agree.
    exact = tmp_path / "exact.rules"
    text = padded(exact, RMDIR, LIMIT)
    assert request_size(exact, text) == LIMIT
    exact.write_text(text)
    done = tracker.tool("sct_config", "upload", str(exact))
    assert done.returncode == 0, done.stderr
    assert "rule_name = rmdir_rule" in tracker.ok("sct_config", "download")


def test_a_file_under_the_limit_that_json_makes_larger_is_refused(tracker, tmp_path):
    loaded = tracker.loaded_with(tmp_path / "first.rules", UNLINK)
    saved, engine = (tracker.state_dir / "rules").read_text(), tracker.status()["engine"]
    wide = tmp_path / "wide.rules"
    # Each "\t" is one byte in the file and two in JSON; each "é" two and six.
    text = RMDIR + "#" + "\t\"é" * (LIMIT // 10) + "\n"
    wide.write_text(text)
    size, sent = len(text.encode()), request_size(wide, text)
    assert size < LIMIT < sent
    line = refusal(tracker.tool("sct_config", "upload", str(wide)), wide)
    assert f": it is {size} bytes, but {sent} bytes as an upload request" in line
    unchanged(tracker, loaded, saved, engine)


def test_the_daemon_refuses_a_request_one_byte_over_even_when_it_sees_its_end(tracker,
                                                                              tmp_path):
    loaded = tracker.loaded_with(tmp_path / "first.rules", UNLINK)
    saved, engine = (tracker.state_dir / "rules").read_text(), tracker.status()["engine"]
    text = padded("x", RMDIR, LIMIT + 1)
    line = protocol.encode({"op": "upload", "text": text, "filename": "x"})
    assert len(line) == LIMIT + 2  # and its newline
    with client.connect() as other, other.makefile("rb") as other_answers, \
            client.connect() as sock, sock.makefile("rb") as answers:
        # The daemon has read LIMIT bytes, no newline among them, when the rest comes
        # with the newline: the last bytes come in one piece, as the whole line would.
        sock.sendall(line[:LIMIT])
        sock.sendall(line[LIMIT:])
        reply = json.loads(answers.readline())
        assert reply["ok"] is False
        assert reply["error"] == (f"request of {LIMIT + 1} bytes, longer than the {LIMIT} "
                                  "bytes a request may hold: refused, nothing changed")
        assert answers.readline() == b""  # and that connection ends
        # Another client's connection, open meanwhile, is served as before.
        other.sendall(b'{"op": "ping"}\n')
        assert json.loads(other_answers.readline()) == {"ok": True, "pid": tracker.pid()}
    unchanged(tracker, loaded, saved, engine)


def test_a_client_that_sends_a_huge_request_anyway_is_told_why(tracker, tmp_path,
                                                                 monkeypatch):
    loaded = tracker.loaded_with(tmp_path / "first.rules", UNLINK)
    saved, engine = (tracker.state_dir / "rules").read_text(), tracker.status()["engine"]
    # A client that believes in a larger limit: the daemon refuses and, past what it
    # drains, closes while the request is still being sent.
    with monkeypatch.context() as patch, pytest.raises(client.DaemonError) as refused:
        patch.setattr(protocol, "MAX_REQUEST", 64 * LIMIT)
        client.request("upload", text=RMDIR + "#" + "a" * (4 * LIMIT) + "\n", filename="x")
    assert str(refused.value) == (
        "the daemon closed the connection before it had the whole 'upload' request: "
        f"request longer than {LIMIT} bytes without a newline")
    assert client.request("ping")["pid"] == tracker.pid()
    unchanged(tracker, loaded, saved, engine)


def test_a_pipe_too_large_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    monkeypatch.setenv("SYSCALLTRACK_RUN_DIR", str(tmp_path / "run"))
    fifo = tmp_path / "rules.fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", f"""
import sys
with open(sys.argv[1], "w") as f:
    f.write({UNLINK!r} + "#" + "a" * {2 * LIMIT} + "\\n")
""", str(fifo)], stderr=subprocess.PIPE)
    try:
        done = subprocess.run([str(BIN / "sct_config"), "upload", str(fifo)],
                              capture_output=True, text=True)
        assert ": it holds more than the" in refusal(done, fifo)
    finally:
        writer.kill()
        writer.wait()
        writer.stderr.close()

