"""The control socket: who may use it, what it answers to garbage, and the daemon's lifetime
(not loaded, killed with -9, restored, the default paths)."""

import json
import os
import signal
import socket
import tempfile
from pathlib import Path

import pytest
from daemon_support import (
    SAFETY,
    Tracker,
    alive_process,
    kernel_objects_gone,
    rule,
    wait_for,
)

from syscalltrack.daemon import client, launch, protocol
from syscalltrack.rules import load_rules

NOBODY = 65534
UNLINK = rule("unlink_rule1", "unlink", fmt="%comm : %params delete by %euid --> %suid")


def as_nobody(action) -> str:
    """Run ``action`` in a child process with uid nobody; what it raised, as text.

    The interpreter lives under /root (mode 0700), so a fresh ``setpriv --reuid=nobody
    sct_config ...`` could not even start Python; a forked child already has it loaded.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            action()
            message = "no error"
        except BaseException as err:  # reported to the parent
            message = f"{type(err).__name__}: {err}"
        os.write(w, message.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        message = f.read().decode()
    os.waitpid(pid, 0)
    return message


def test_every_tool_says_when_the_tracker_is_not_loaded(tracker, tmp_path):
    rules = tmp_path / "r.conf"
    rules.write_text(UNLINK)
    for tool in (["sct_config", "upload", str(rules)], ["sct_config", "download"],
                 ["sct_config", "delete"], ["sctlog"], ["sct_unload"], ["sct", "status"]):
        done = tracker.tool(*tool)
        assert done.returncode == 1, tool
        assert "syscalltrack is not loaded" in done.stderr, tool
        assert "load it with 'sct_load' (as root)" in done.stderr, tool
    assert tracker.ok("sct_config", "check", str(rules)).startswith("1 rule OK")


def test_non_root_is_refused_by_the_socket_mode(tracker):
    tracker.ok("sct_load")
    assert oct(os.stat(tracker.run_dir / "control.sock").st_mode & 0o777) == "0o600"
    message = as_nobody(lambda: client.request("download"))
    assert message == (f"NotLoaded: permission denied on {protocol.control_socket()}: "
                       "only root may control syscalltrack")


def test_non_root_is_refused_by_peer_credentials_too(monkeypatch):
    """With the socket opened to everyone, SO_PEERCRED still keeps non-root out."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = Path(tempfile.mkdtemp(prefix="sct-peercred-"))
    base.chmod(0o755)
    monkeypatch.setenv("SYSCALLTRACK_RUN_DIR", str(base / "run"))
    monkeypatch.setenv("SYSCALLTRACK_STATE_DIR", str(base / "state"))
    t = Tracker(base / "run", base / "state")
    try:
        t.ok("sct_load")
        (base / "run" / "control.sock").chmod(0o666)
        message = as_nobody(lambda: client.request("download"))
        assert message == ("DaemonError: permission denied: only root may control "
                           f"syscalltrack (you are uid {NOBODY})")
        assert client.request("ping")["pid"] == t.pid()  # and it still serves root
    finally:
        t.teardown()
        for p in sorted(base.rglob("*"), reverse=True):
            p.unlink() if not p.is_dir() else p.rmdir()
        base.rmdir()


def test_non_root_sct_load_says_why():
    message = as_nobody(lambda: launch.start_background([]))
    assert message == (f"StartupError: syscalltrack must be loaded by root (it attaches eBPF "
                       f"programs to every process); you are uid {NOBODY}")


def raw_exchange(lines: list[bytes]) -> list[dict]:
    """Send raw bytes on one connection; the answers, one per request line."""
    with client.connect() as sock, sock.makefile("rb") as answers:
        out = []
        for data in lines:
            sock.sendall(data)
            out.append(json.loads(answers.readline()))
        return out


def test_malformed_requests_are_answered_and_the_daemon_stays_up(tracker):
    tracker.ok("sct_load")
    answers = raw_exchange([
        b"this is not json\n",
        b"[1, 2, 3]\n",
        b'{"no": "op"}\n',
        b'{"op": "reboot"}\n',
        b'{"op": "upload"}\n',
        b'{"op": "upload", "text": 42}\n',
        b'{"op": "unload", "force": "yes"}\n',
        b'{"op": "follow", "last": -1}\n',
        b'{"op": "follow", "format": "%nosuchmacro"}\n',
        b'{"op": "upload", "text": "rule {", "filename": "x.conf"}\n',
        b"\xff\xfe\n",
        b'{"op": "ping"}\n',
    ])
    assert [a["ok"] for a in answers] == [False] * 11 + [True]
    errors = [a["error"] for a in answers[:11]]
    assert errors[0].startswith("malformed request (not JSON")
    assert errors[1] == errors[2] == 'malformed request: expected {"op": "...", ...}'
    assert errors[3].startswith("unknown op 'reboot'; known: delete, download, follow")
    assert errors[4] == "'upload' needs 'text'"
    assert errors[5] == "'text' must be of type str"
    assert errors[6] == "'force' must be of type bool"
    assert errors[7] == "last must be 0 or more"
    assert errors[8] == "unknown macro %nosuchmacro in format at offset 0"
    assert errors[9].startswith("x.conf:1:")
    # A line too long to be a request: refused, and that connection is closed.
    with client.connect() as sock, sock.makefile("rb") as answers:
        sock.sendall(b"x" * (protocol.MAX_REQUEST + 2 * 65536))
        reply = json.loads(answers.readline())
        assert reply == {"ok": False, "error": f"request longer than {protocol.MAX_REQUEST} "
                                                "bytes without a newline"}
        assert answers.readline() == b""
    # A client that connects and vanishes mid-request.
    with client.connect() as sock:
        sock.sendall(b'{"op": "sta')
    assert client.request("ping")["pid"] == tracker.pid()
    assert tracker.status()["engine"] is None


def test_an_invalid_set_changes_nothing_and_every_error_is_printed(tracker, tmp_path):
    before = tracker.loaded_with(tmp_path / "good.conf", UNLINK)
    bad = tmp_path / "bad.conf"
    bad.write_text(rule("a", "nosuchcall") + rule("b", "unlink", "PARAMS[1] == 3"))
    done = tracker.tool("sct_config", "upload", str(bad))
    assert done.returncode == 1
    assert len([ln for ln in done.stderr.splitlines() if f"{bad}:" in ln]) >= 2
    assert tracker.ok("sct_config", "download") == before


def test_killed_with_9_takes_its_kernel_objects_and_loads_again(tracker, tmp_path):
    rules = tmp_path / "r.conf"
    rules.write_text(UNLINK)
    tracker.ok("sct_load")
    tracker.ok("sct_config", "upload", str(rules))
    saved = (tracker.state_dir / "rules").read_text()
    assert saved == UNLINK
    ids = tracker.status()["engine"]
    pid = tracker.pid()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive_process(pid), "the daemon to die", SAFETY)
    assert kernel_objects_gone(ids)
    assert (tracker.run_dir / "control.sock").exists()  # stale, left by the dead daemon
    done = tracker.tool("sct_config", "download")
    assert done.returncode == 1 and "not loaded" in done.stderr

    out = tracker.ok("sct_load", "--restore")
    assert "1 rules restored" in out
    assert tracker.pid() != pid
    assert tracker.ok("sct_config", "download") == load_rules(saved).text()
    assert [r["name"] for r in tracker.status()["rules"]] == ["unlink_rule1"]
    tracker.ok("sct_config", "delete")
    assert not (tracker.state_dir / "rules").exists()
    tracker.ok("sct_unload")
    out = tracker.ok("sct_load", "--restore")  # nothing saved: starts with no rules
    assert "restored" not in out
    assert tracker.status()["engine"] is None


def test_unload_force_with_rules_loaded(tracker, tmp_path):
    rules = tmp_path / "r.conf"
    rules.write_text(UNLINK)
    tracker.ok("sct_load")
    tracker.ok("sct_config", "upload", str(rules))
    ids = tracker.status()["engine"]
    pid = tracker.pid()
    tracker.ok("sct_unload", "--force")
    assert not alive_process(pid)
    assert kernel_objects_gone(ids)


def test_startup_failure_is_reported_with_its_reason(tracker, tmp_path):
    """An unwritable JSON file stops the start, and sct_load says exactly that."""
    done = tracker.tool("sct_load", "--json-file", str(tmp_path / "no" / "such" / "dir.json"))
    assert done.returncode == 1
    assert done.stderr == (f"sct_load: cannot open the JSON file {tmp_path}/no/such/dir.json: "
                           "No such file or directory\n")
    assert tracker.pid() is None


def test_status_shows_engine_rules_counters_readers_and_kernel(tracker, tmp_path):
    rules = tmp_path / "r.conf"
    rules.write_text(UNLINK)
    tracker.ok("sct_load")
    tracker.ok("sct_config", "upload", str(rules))
    tracker.follow("--json")
    victim = tmp_path / "victim"
    victim.touch()
    victim.unlink()
    wait_for(lambda: tracker.status()["rules"][0]["matches"] >= 1, "the match to count")
    text = tracker.ok("sct", "status")
    assert text.startswith(f"syscalltrack loaded: pid {tracker.pid()}, up ")
    assert "engine: systemwide (eBPF), calls watched: x86_64 and i386, programs [" in text
    assert "  unlink_rule1: unlink before -> LOG: " in text and " lost, 0 undecided" in text
    assert "readers (1):\n  json: " in text
    assert "syslog: /dev/log facility authpriv: " in text
    assert "ways to change a syscall's result:" in text


def test_the_default_paths(tmp_path, monkeypatch):
    """Once without overrides: /run/syscalltrack and /var/lib/syscalltrack."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    monkeypatch.delenv("SYSCALLTRACK_RUN_DIR", raising=False)
    monkeypatch.delenv("SYSCALLTRACK_STATE_DIR", raising=False)
    if launch.running_pid() is not None:
        pytest.skip("a real syscalltrack is loaded on this machine; not touching it")
    t = Tracker(Path("/run/syscalltrack"), Path("/var/lib/syscalltrack"))
    try:
        t.ok("sct_load")
        assert protocol.control_socket() == "/run/syscalltrack/control.sock"
        assert Path("/run/syscalltrack/control.sock").is_socket()
        assert client.request("ping")["pid"] == t.pid()
        t.ok("sct_unload")
        assert not Path("/run/syscalltrack/control.sock").exists()
    finally:
        t.teardown()


def test_a_stale_socket_file_is_replaced(tracker):
    tracker.run_dir.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tracker.run_dir / "control.sock"))
    stale.close()  # the file stays, nobody listens
    (tracker.run_dir / "syscalltrack.pid").write_text("999999\n")
    with pytest.raises(client.NotLoaded):
        client.request("ping")
    tracker.ok("sct_load")
    assert client.request("ping")["pid"] == tracker.pid() != 999999
