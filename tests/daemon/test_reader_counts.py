"""A reader's "sent" count in status is the event lines it was sent: before, the events
the kernel lost (told in a notice) were counted as sent too."""

import os
import re
import signal
import threading

from daemon_support import rule, wait_for

KERNEL_LOST = re.compile(rb"^-- (\d+) events lost in the kernel")
N = 4000  # a 1 MiB ring holds about 2,400 records: the rest are lost in the kernel


class Counter(threading.Thread):
    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc = proc
        self.events = self.kernel_lost = 0

    def run(self):
        for line in self.proc.stdout:
            if m := KERNEL_LOST.match(line):
                self.kernel_lost += int(m.group(1))
            else:
                self.events += 1


def test_a_readers_sent_count_leaves_out_what_the_kernel_lost(tracker, tmp_path):
    gen = tmp_path / "gen"
    gen.mkdir()
    rules = tmp_path / "r.conf"
    rules.write_text(rule("mk", "mkdir", f'PARAMS[1] startswith "{gen}/"', fmt="%params"))
    tracker.ok("sct_load", "--no-syslog", "--ring-mb", "1")
    tracker.ok("sct_config", "upload", str(rules))
    reader = Counter(tracker.follow())
    reader.start()
    pid = tracker.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(N):
            (gen / str(i)).mkdir()
            (gen / str(i)).rmdir()
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: reader.events + reader.kernel_lost == N, "every event or its notice")
    assert reader.kernel_lost > 0
    (status,) = tracker.status()["readers"]
    assert (status["events_sent"], status["events_lost"]) == (reader.events, 0)
