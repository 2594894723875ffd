"""A syslog receiver that stops reading must cost counted lines, never the daemon: before,
the daemon blocked in send() to it, and with it the readers, the control socket and the
kernel ring."""

import socket
import threading

from daemon_support import SAFETY, rule, wait_for

N = 6000  # lines of about 1 KB (the most a line takes): more than the daemon holds for
PAD = "x" * 1024  # syslog (sinks.syslog.QUEUE_LIMIT)


def make(gen, first: int, count: int) -> None:
    for i in range(first, first + count):
        (gen / str(i)).mkdir()
        (gen / str(i)).rmdir()


class Lines(threading.Thread):
    """Counts an sctlog's lines as they come."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.count = proc, 0

    def run(self):
        for _line in self.proc.stdout:
            self.count += 1


def received(receiver: socket.socket, into: list[bytes]) -> list[bytes]:
    """`into`, with the datagrams waiting at `receiver` added."""
    while True:
        try:
            into.append(receiver.recv(1 << 16, socket.MSG_DONTWAIT))
        except BlockingIOError:
            return into


def test_a_syslog_that_does_not_read_costs_counted_lines_not_the_daemon(tracker, tmp_path):
    gen = tmp_path / "gen"
    gen.mkdir()
    path = tmp_path / "log"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    try:
        rules = tmp_path / "r.conf"
        rules.write_text(rule("mk", "mkdir", f'PARAMS[1] startswith "{gen}/"',
                              fmt=f"%params {PAD}"))
        tracker.ok("sct_load", "--syslog-socket", str(path))
        tracker.ok("sct_config", "upload", str(rules))
        reader = Lines(tracker.follow("--format", "%params"))
        reader.start()
        make(gen, 0, N)  # and the receiver reads none of them
        wait_for(lambda: reader.count >= N, "every line to reach the reader")
        assert reader.count == N
        sl = tracker.status()["syslog"]
        assert sl["failed"] > 0 and sl["sent"] + sl["failed"] + sl["waiting"] == N
        assert sl["error"].startswith(f"{path}: not taking lines")
        assert f"{sl['sent']} sent, {sl['failed']} failed" in tracker.ok("sct", "status")
        log = (tracker.run_dir / "daemon.log").read_text()
        assert "syscalltrack: syslog: " in log and " lines not sent (" in log

        # The receiver reads again: what waited goes, then new lines at once.
        got: list[bytes] = []
        wait_for(lambda: not received(receiver, got) or
                 tracker.status()["syslog"]["waiting"] == 0, "the waiting lines to go")
        make(gen, N, 5)
        wait_for(lambda: len(received(receiver, got)) == tracker.status()["syslog"]["sent"]
                 and reader.count == N + 5, "the new lines")
        sl = tracker.status()["syslog"]
        assert sl["error"] is None and sl["sent"] + sl["failed"] == N + 5
        assert all(b"xxxxxxxxxx" in d for d in got)
        assert [d.split(b'"')[1] for d in got[-5:]] == \
            [f"{gen}/{i}".encode() for i in range(N, N + 5)]

        # A receiver that went away and came back (syslogd restarted) is reconnected to.
        receiver.close()
        path.unlink()
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(str(path))
        receiver.settimeout(SAFETY)
        make(gen, N + 5, 1)
        assert receiver.recv(1 << 16).split(b'"')[1] == f"{gen}/{N + 5}".encode()
    finally:
        receiver.close()  # before the tracker's teardown: a daemon blocked on it wakes up
