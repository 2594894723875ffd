"""Where the lines go: many sctlog readers (one stalled while a million events flow),
syslog through a real rsyslogd, and the JSON file with rotation on SIGHUP."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading

import pytest
from daemon_support import LOST, SAFETY, rule, wait_for

from syscalltrack.daemon import server

# Other processes unlink files too (tests run side by side): match only our marker files.
MARK = "sctd-mark-"
UNLINK = rule("unlink_rule1", "unlink", f'PARAMS[1] ~= "{MARK}"',
              fmt="%comm : %params delete by %euid --> %suid")
HOT = "sctd-hot"  # our own copy of the helper: other tests' helpers must not match
KERNEL_LOST = re.compile(rb"^-- (\d+) events lost in the kernel", re.M)


def unlink_marker(directory, name: str) -> None:
    """A file named ``name`` created and removed by another process (rm)."""
    path = directory / f"{MARK}{name}"
    path.touch()
    subprocess.run(["rm", str(path)], check=True)


def read_until(proc, needle: bytes) -> list[bytes]:
    """sctlog lines up to and including the first that contains ``needle``."""
    needle = MARK.encode() + needle
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, f"sctlog ended before {needle!r}: {proc.stderr.read()}"
        lines.append(line)
        if needle in line:
            return lines


def test_two_readers_each_with_its_own_format_and_history(tracker, tmp_path):
    rules = tmp_path / "r.conf"
    rules.write_text(UNLINK)
    tracker.ok("sct_load")
    tracker.ok("sct_config", "upload", str(rules))
    plain = tracker.follow()
    custom = tracker.follow("--format", "%sname by %pid[%comm]: %params (%ruleid)")
    unlink_marker(tmp_path, "two-readers-1")
    assert read_until(plain, b"two-readers-1")[-1] == \
        f'"rm" : "{tmp_path}/{MARK}two-readers-1" delete by 0 --> 0\n'.encode()
    line = read_until(custom, b"two-readers-1")[-1].decode()
    assert re.fullmatch(rf'unlink(at)? by \d+\["rm"\]: "{tmp_path}/{MARK}two-readers-1" '
                        r"\(unlink_rule1\)\n", line)
    # A third reader joining later starts with the last line the daemon kept, as JSON.
    late = tracker.follow("--json", "-n", "1")
    event = json.loads(late.stdout.readline())
    assert (event["comm"], event["rule"]) == ("rm", "unlink_rule1")
    assert event["args"][0]["value"] == f"{tmp_path}/{MARK}two-readers-1"


class Counter(threading.Thread):
    """Reads one sctlog to the end: lines, and the losses it was told about."""

    def __init__(self, proc, pattern: bytes):
        super().__init__(daemon=True)
        self.proc, self.pattern = proc, pattern
        self.lines = self.reader_lost = self.kernel_lost = 0
        self.notices: list[bytes] = []

    @property
    def total(self) -> int:
        return self.lines + self.reader_lost + self.kernel_lost

    def run(self):
        for line in self.proc.stdout:
            if line.startswith(b"-- "):
                self.notices.append(line)
                if m := KERNEL_LOST.match(line):
                    self.kernel_lost += int(m.group(1))
                elif m := LOST.match(line):
                    self.reader_lost += int(m.group(1))
            elif self.pattern in line:
                self.lines += 1


def test_a_stalled_reader_slows_nobody_and_is_told_what_it_lost(tracker, tmp_path, helper):
    hot = tmp_path / HOT
    shutil.copy(helper, hot)
    rules = tmp_path / "hot.conf"
    rules.write_text(rule("hot", "getppid", f'COMM == "{HOT}"'))
    tracker.ok("sct_load")
    tracker.ok("sct_config", "upload", str(rules))
    fast = Counter(tracker.follow("--format", "%pid %sname"), b" getppid")
    fast.start()
    stalled_proc = tracker.follow()  # nobody reads its stdout until the end
    rounds, per_round = 20, 50_000  # paced so that the 16 MB ring never overflows
    total = rounds * per_round
    for i in range(1, rounds + 1):
        subprocess.run([str(hot), "getppid", str(per_round)], check=True,
                       stdout=subprocess.DEVNULL)
        wait_for(lambda i=i: fast.total >= i * per_round, f"round {i} at the fast reader")
    status = tracker.status()
    assert status["rules"][0]["matches"] == total
    stalled_status = next(r for r in status["readers"] if r["format"] is None)
    assert stalled_status["events_lost"] > 0
    assert stalled_status["backlog"] <= 4 << 20
    # The fast reader kept up: every call reached it (or was reported lost by the kernel).
    assert fast.total == total and fast.reader_lost == 0

    stalled = Counter(stalled_proc, b"_getppid()")
    stalled.start()
    wait_for(lambda: stalled.total >= total, "the stalled reader to catch up")
    assert stalled.total == total
    assert stalled.reader_lost == stalled_status["events_lost"] > 0
    assert any(LOST.match(n) and not KERNEL_LOST.match(n) for n in stalled.notices)
    tracker.ok("sct_config", "delete")
    tracker.ok("sct_unload")
    fast.join(SAFETY)
    stalled.join(SAFETY)


RSYSLOG_CONF = """\
global(workDirectory="{dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{dir}/log" CreatePath="on")
template(name="raw" type="string"
         string="%syslogfacility-text%.%syslogseverity-text% %syslogtag%%msg%\\n")
*.* action(type="omfile" file="{dir}/messages" template="raw")
"""


@pytest.fixture
def rsyslogd(tmp_path):
    if shutil.which("rsyslogd") is None:
        pytest.skip("rsyslogd is not installed (scripts/test installs the rsyslog package)")
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(dir=tmp_path))
    proc = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(tmp_path / "pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (tmp_path / "log").exists() or proc.poll() is not None,
                 "rsyslogd's socket")
        assert proc.poll() is None, proc.stderr.read()
        yield tmp_path
    finally:
        proc.terminate()
        proc.wait(SAFETY)
        proc.stderr.close()


def test_log_lines_reach_a_real_rsyslogd(tracker, rsyslogd, tmp_path):
    rules = tmp_path / "r.conf"
    rules.write_text(UNLINK)
    tracker.ok("sct_load", "--syslog-socket", str(rsyslogd / "log"),
               "--syslog-facility", "local3")
    tracker.ok("sct_config", "upload", str(rules))
    unlink_marker(tmp_path, "to-syslog")
    expected = (f'local3.notice syscalltrack[{tracker.pid()}]: "rm" : "{tmp_path}/{MARK}to-syslog" '
                "delete by 0 --> 0")
    messages = rsyslogd / "messages"
    wait_for(lambda: messages.exists() and expected in messages.read_text(),
             "the line in rsyslog's file")


def test_no_syslog_socket_warns_once_and_keeps_serving(tracker, tmp_path):
    rules = tmp_path / "r.conf"
    rules.write_text(UNLINK)
    tracker.ok("sct_load", "--syslog-socket", str(tmp_path / "absent"))
    tracker.ok("sct_config", "upload", str(rules))
    reader = tracker.follow()
    for name in ("no-syslog-1", "no-syslog-2"):
        unlink_marker(tmp_path, name)
        read_until(reader, name.encode())
    log = (tracker.run_dir / "daemon.log").read_text()
    assert log.count(f"no syslog at {tmp_path}/absent") == 1
    assert tracker.status()["syslog"]["failed"] >= 2


def test_json_file_is_reopened_on_sighup(tracker, tmp_path):
    path = tmp_path / "events.json"
    rules = tmp_path / "r.conf"
    rules.write_text(UNLINK)
    tracker.ok("sct_load", "--json-file", str(path))
    tracker.ok("sct_config", "upload", str(rules))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"

    def unlinked(file) -> list[str]:
        if not file.exists():
            return []
        return [json.loads(line)["args"][0]["value"] for line in file.read_text().splitlines()
                if json.loads(line).get("comm") == "rm"]

    unlink_marker(tmp_path, "before-rotation")
    wait_for(lambda: f"{tmp_path}/{MARK}before-rotation" in unlinked(path), "the first event")
    rotated = tmp_path / "events.json.1"
    path.rename(rotated)
    os.kill(tracker.pid(), signal.SIGHUP)
    wait_for(path.exists, "the daemon to reopen the file")
    unlink_marker(tmp_path, "after-rotation")
    wait_for(lambda: f"{tmp_path}/{MARK}after-rotation" in unlinked(path), "the second event")
    assert f"{tmp_path}/{MARK}after-rotation" not in unlinked(rotated)
    assert f"{tmp_path}/{MARK}before-rotation" in unlinked(rotated)
    assert tracker.status()["json_file"]["error"] is None


def test_kernel_drops_appear_in_the_stream_and_the_stats(tracker, tmp_path, helper):
    """A burst far larger than the ring: what the kernel dropped is reported, to the count."""
    hot = tmp_path / HOT
    shutil.copy(helper, hot)
    rules = tmp_path / "hot.conf"
    rules.write_text(rule("hot", "getppid", f'COMM == "{HOT}"'))
    # A 1 MB ring holds ~6,000 records: the burst overflows it however fast the daemon
    # drains (at the default size a quick daemon on an idle machine could keep up).
    tracker.ok("sct_load", "--ring-mb", "1")
    tracker.ok("sct_config", "upload", str(rules))
    reader = Counter(tracker.follow("--format", "%pid %sname"), b" getppid")
    reader.start()
    burst = 1_000_000
    subprocess.run([str(hot), "getppid", str(burst)], check=True, stdout=subprocess.DEVNULL)
    wait_for(lambda: reader.total >= burst, "every call to be delivered or reported lost")
    assert reader.total == burst
    assert reader.kernel_lost > 0 and reader.reader_lost == 0
    status = tracker.status()
    assert status["rules"][0]["lost"] == status["events"]["kernel_lost"] == reader.kernel_lost
    assert status["rules"][0]["matches"] == burst


def test_a_leaving_reader_takes_its_own_format_along():
    """Formats readers asked for are compiled per rule and call: once no reader wants one,
    the daemon forgets it (a long-lived daemon meets many `sctlog --format`s)."""
    daemon = server.Daemon(server.Options(syslog_socket=None))
    mine, theirs = socket.socketpair()
    with mine, theirs:
        custom = (False, "%pid %comm")
        reader = daemon.stream.add(mine, custom)
        other = daemon.stream.add(theirs, server.DEFAULT_KEY)
        daemon._render(custom, [])
        daemon._render(server.DEFAULT_KEY, [])
        assert set(daemon.renderers) == {custom, server.DEFAULT_KEY}
        daemon._drop_reader(reader)
        assert set(daemon.renderers) == {server.DEFAULT_KEY}
        daemon._drop_reader(other)
        assert set(daemon.renderers) == {server.DEFAULT_KEY}  # the rules' own: always needed
