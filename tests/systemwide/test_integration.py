"""The engine against real processes: rm, touch, mv, direct unlink/unlinkat, other uids,
both CPUs, KILL and SUSPEND, 100 rules, a rule that matches nothing, the article's line."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from systemwide_support import rule

from syscalltrack.engines.systemwide import Lost, SystemwideEngine, codegen
from syscalltrack.engines.systemwide.demo import article_log_rules, log_lines
from syscalltrack.events.event import Event, SockAddr, Undecided
from syscalltrack.events.render import Renderer
from syscalltrack.rules import load_rules
from syscalltrack.syscalls import X86_64, table

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf() and tracefs")
HERE = Path(__file__).parent
SAFETY_POLL = 5.0  # seconds a poll may wait for records already in the ring


@pytest.fixture(scope="module")
def unlinker(tmp_path_factory):
    exe = tmp_path_factory.mktemp("bin") / "unlinker"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(HERE / "unlinker.c")], check=True)
    return str(exe)


def events(engine, pred, settle=0.3):
    """Events matching ``pred`` that arrive until ``settle`` seconds pass without any."""
    out = []
    for item in engine.events(timeout=settle):
        if isinstance(item, Event) and pred(item):
            out.append(item)
    return out


def engine_for(text):
    return SystemwideEngine(load_rules(text)).load()


def test_article_line_for_rm_by_any_process(work, monkeypatch):
    """Other sessions on this machine may run the same scenario: keep our shell's rm only."""
    with SystemwideEngine(article_log_rules()) as engine:
        shell = subprocess.Popen("touch ./dummy && rm ./dummy", shell=True, cwd=work)
        assert shell.wait() == 0
        events = engine.events
        monkeypatch.setattr(engine, "events", lambda timeout: (
            e for e in events(timeout) if isinstance(e, Event) and shell.pid in (e.pid, e.ppid)))
        lines = list(log_lines(engine, timeout=0.3))
    assert lines == ['"rm" : "./dummy" delete by 0 --> 0']


def test_rm_touch_mv_carry_pid_comm_path(work):
    text = (rule("rm", "unlink", f'PARAMS[1] startswith "{work}"')
            + rule("touch", "open", f'PARAMS[1] startswith "{work}" && (PARAMS[2] & O_CREAT)')
            + rule("mv", "rename", 'PARAMS[2] endswith "/b"'))
    with engine_for(text) as engine:
        for cmd in (["touch", f"{work}/a"], ["mv", f"{work}/a", f"{work}/b"],
                    ["rm", f"{work}/b"]):
            proc = subprocess.Popen(cmd)
            assert proc.wait() == 0
            cmd.append(proc.pid)
        got = events(engine, lambda e: e.rule in ("rm", "touch", "mv"))
    by_rule = {e.rule: e for e in got}
    assert set(by_rule) == {"rm", "touch", "mv"}
    assert by_rule["touch"].comm == b"touch" and by_rule["touch"].name == "openat"
    assert by_rule["touch"].values[0] == f"{work}/a".encode()
    assert by_rule["mv"].comm == b"mv" and by_rule["mv"].values == (
        f"{work}/a".encode(), f"{work}/b".encode())
    assert by_rule["rm"].comm == b"rm" and by_rule["rm"].name == "unlinkat"
    assert by_rule["rm"].values == (f"{work}/b".encode(),)
    assert by_rule["rm"].uid == 0 and by_rule["rm"].ppid == os.getpid()


def test_direct_unlink_and_unlinkat_before_and_after(unlinker, work):
    text = (rule("before", "unlink", f'PARAMS[1] startswith "{work}/"')
            + rule("after", "unlink", f'PARAMS[1] startswith "{work}/" && RETVAL == -2',
                   when="after"))
    (work / "present").touch()
    with engine_for(text) as engine:
        out = subprocess.run([unlinker, f"{work}/present", f"{work}/missing"],
                             capture_output=True, text=True, check=True).stdout.split()
        got = events(engine, lambda e: e.pid == int(out[0]))
    assert (out[1], out[2]) == ("0", "-1")
    seen = sorted((e.rule, e.name, e.values[0], e.retval) for e in got)
    assert seen == [
        ("after", "unlinkat", f"{work}/missing".encode(), -2),
        ("before", "unlink", f"{work}/present".encode(), None),
        ("before", "unlinkat", f"{work}/missing".encode(), None),
    ]
    assert all(e.comm == b"unlinker" and e.tid == e.pid for e in got)


def test_other_uids_are_seen_with_their_ids(work):
    text = (rule("nobody", "unlink", f'PARAMS[1] startswith "{work}/" && EUID == 65534')
            + rule("anyone", "unlink", f'PARAMS[1] startswith "{work}/"'))
    for name in ("n", "r"):
        (work / name).touch()
        os.chmod(work / name, 0o666)
    with engine_for(text) as engine:
        subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "rm", "-f", f"{work}/n"], check=True)
        subprocess.run(["rm", "-f", f"{work}/r"], check=True)
        got = {e.values[0]: e for e in events(engine, lambda e: e.rule in ("nobody", "anyone"))}
    nobody, root = got[f"{work}/n".encode()], got[f"{work}/r".encode()]
    assert nobody.rule == "nobody"
    assert (nobody.uid, nobody.euid, nobody.suid, nobody.gid, nobody.egid, nobody.sgid) == \
        (65534,) * 6
    assert root.rule == "anyone" and (root.uid, root.euid, root.gid) == (0, 0, 0)


def test_calls_on_both_cpus(unlinker, work):
    cpus = sorted(os.sched_getaffinity(0))[:2]
    text = rule("cpu", "unlink", f'PARAMS[1] startswith "{work}/"')
    with engine_for(text) as engine:
        pids = []
        for cpu in cpus:
            out = subprocess.run(["taskset", "-c", str(cpu), unlinker, f"{work}/c{cpu}",
                                  f"{work}/d{cpu}"], capture_output=True, text=True).stdout
            pids.append(int(out.split()[0]))
        got = events(engine, lambda e: e.rule == "cpu")
    assert sorted({e.pid for e in got}) == sorted(pids)
    assert len(got) == 2 * len(cpus)


def test_a_rule_that_matches_nothing(work):
    text = rule("never", "unlink", 'PARAMS[1] == "/nonexistent/sct/never"')
    with engine_for(text) as engine:
        for i in range(20):
            (work / str(i)).touch()
            os.unlink(work / str(i))
        assert events(engine, lambda e: True) == []
        assert [(s.rule, s.matches, s.lost) for s in engine.stats()] == [("never", 0, 0)]


@pytest.mark.parametrize("calls", [4, codegen.PREFILTER_MAX + 8])
def test_calls_watched_beside_unlink_by_few_or_many_numbers(work, calls):
    """Up to PREFILTER_MAX numbers the dispatchers compare the number first; beyond,
    they go straight to the tail call. Either way the unlink rule fires, and only it."""
    others = [sc.name for sc in table() if sc.abi == X86_64 and sc.args
              and sc.name not in ("unlink", "unlinkat")][:calls]
    text = "".join(rule(f"o{i}", name, "PID == 1 && UID == 12345")
                   for i, name in enumerate(others))
    text += rule("rm", "unlink", f'PARAMS[1] startswith "{work}/"')
    with engine_for(text) as engine:
        (work / "f").touch()
        os.unlink(work / "f")
        got = [(e.rule, e.values[0]) for e in events(engine, lambda e: e.pid == os.getpid())]
    assert got == [("rm", f"{work}/f".encode())]


def test_hundred_rules_first_match(work):
    text = "".join(rule(f"r{i}", "unlink", f'PARAMS[1] == "{work}/f{i}"') for i in range(100))
    text += rule("catchall", "unlink", f'PARAMS[1] startswith "{work}/"')
    with engine_for(text) as engine:
        for i in (0, 37, 99, 100):
            (work / f"f{i}").touch()
            os.unlink(work / f"f{i}")
        got = [(e.rule, e.values[0]) for e in events(engine, lambda e: e.pid == os.getpid())]
    assert got == [("r0", f"{work}/f0".encode()), ("r37", f"{work}/f37".encode()),
                   ("r99", f"{work}/f99".encode()), ("catchall", f"{work}/f100".encode())]


def test_kill_and_suspend(unlinker, work):
    text = (rule("kill", "unlink", f'PARAMS[1] == "{work}/kill"', action="KILL")
            + rule("stop", "unlink", f'PARAMS[1] == "{work}/stop"', action="SUSPEND"))
    with engine_for(text) as engine:
        killed = subprocess.run([unlinker, f"{work}/kill", f"{work}/x"], capture_output=True)
        assert killed.returncode == -signal.SIGKILL and killed.stdout == b""
        stopped = subprocess.Popen([unlinker, f"{work}/stop", f"{work}/x"],
                                   stdout=subprocess.PIPE)
        _, status = os.waitpid(stopped.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGSTOP
        os.kill(stopped.pid, signal.SIGCONT)
        assert stopped.wait() == 0
        got = {e.rule: e.action for e in events(engine, lambda e: e.rule in ("kill", "stop"))}
    assert got == {"kill": "KILL", "stop": "SUSPEND"}


def test_full_ring_is_counted_and_reported(work):
    text = rule("many", "unlink", f'PARAMS[1] startswith "{work}/"')
    with SystemwideEngine(load_rules(text), ring_size=os.sysconf("SC_PAGE_SIZE")) as engine:
        for i in range(50):
            (work / str(i)).touch()
            os.unlink(work / str(i))
        # Read until every match is accounted for: a Lost notice waits for the counter
        # interval, and a loaded machine may delay it further (bounded by a safety net).
        got = lost = 0
        deadline = time.monotonic() + 60
        while True:
            items = engine.poll(0.3)
            got += sum(isinstance(i, Event) for i in items)
            lost += sum(i.count for i in items if isinstance(i, Lost))
            stats = engine.stats()[0]
            if got + lost >= stats.matches or time.monotonic() > deadline:
                break
        assert lost > 0 and stats.lost == lost, (got, lost, stats)
        # every match is delivered or reported
        assert stats.matches == got + lost >= 50, (got, lost, stats)


def test_replace_keeps_one_set_active(work):
    a = load_rules(rule("old", "unlink", f'PARAMS[1] startswith "{work}/"'))
    b = load_rules(rule("new", "unlink", f'PARAMS[1] startswith "{work}/"'))
    with SystemwideEngine(a) as engine:
        (work / "1").touch()
        os.unlink(work / "1")
        old_ids = engine.ids()
        engine.replace(b)
        (work / "2").touch()
        os.unlink(work / "2")
        got = [(e.rule, e.values[0]) for e in events(engine, lambda e: e.rule in ("old", "new"))]
        assert not set(old_ids["programs"]) & set(engine.ids()["programs"])
    assert got == [("old", f"{work}/1".encode()), ("new", f"{work}/2".encode())]


def test_dump_shows_rule_source_next_to_its_code():
    text = rule("watch", "unlink", 'PARAMS[1] glob "/etc/*"')
    listing = SystemwideEngine(load_rules(text)).dump()
    assert "; program sct_unlink_e: TRACING on sct_x86_enter:87" in listing
    assert "; program sct_dispatch_e: TRACING on tp_btf:sys_enter" in listing
    assert 'filter_expression {PARAMS[1] glob "/etc/*"}' in listing
    assert "call loop" in listing and "r2 = func[dfa_step]" in listing


def test_records_render_as_their_events_do(unlinker, work):
    """The daemon's path (lines straight from records, per view) prints what rendering
    the decoded Events prints, for each format, on real records of several views."""
    text = (rule("before", "unlink", f'PARAMS[1] startswith "{work}/"')
            + rule("after", "unlink", f'PARAMS[1] startswith "{work}/"', when="after"))
    (work / "present").touch()
    with engine_for(text) as engine:
        subprocess.run([unlinker, f"{work}/present", f"{work}/missing"], check=True,
                       capture_output=True)
        batch = engine.poll_records(SAFETY_POLL)
        while engine.pending():
            batch.rows.extend(engine.poll_records(0).rows)
    items = batch.stream_items()
    assert len({batch.key(r) for r in batch.rows}) >= 3  # unlink and unlinkat, two rules
    for renderer in (Renderer(), Renderer(override="%time %comm %args %retval %ruleid"),
                     Renderer(override='"%comm" : %params delete by %euid --> %retval'),
                     Renderer(json=True)):
        assert renderer.lines(batch) == [renderer(x) for x in items]
    assert any(f'"{work}/missing"' in line and line.endswith("--> -2")
               for line in Renderer(override='"%comm" : %params delete by %euid --> %retval')
               .lines(batch))


def test_an_undecided_call_of_a_later_rule_arrives_as_its_notice(work):
    """The record's rule index and kind (read as one word) find the second rule's undecided
    view: a suffix the kernel cannot see past a 256-byte window."""
    text = (rule("eq", "unlink", 'PARAMS[1] == "/etc/passwd"')
            + rule("suffix", "unlink", 'PARAMS[1] endswith ".conf"'))
    long = work / ("x" * 200) / ("y" * 200)
    with SystemwideEngine(load_rules(text), window=256).load() as engine:
        with pytest.raises(FileNotFoundError):
            os.unlink(long)
        batch = engine.poll_records(SAFETY_POLL)
        items = [x for x in batch.stream_items()
                 if isinstance(x, Undecided) and x.event.pid == os.getpid()]
    assert [(x.rule, x.index, x.event.name, x.event.values[0]) for x in items] == [
        ("suffix", 1, "unlink", bytes(long)[:255])]
    assert Renderer().lines(batch) == [Renderer()(x) for x in batch.stream_items()]


def test_socket_addresses_are_decoded_system_wide():
    """connect/bind carry their address in the record: who connects where, as text."""
    text = (rule("conn", "connect", f"PID == {os.getpid()}", when="after")
            + rule("bnd", "bind", f"PID == {os.getpid()}"))
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    with server, engine_for(text) as engine:
        socket.create_connection(("127.0.0.1", port)).close()
        with socket.socket(socket.AF_UNIX) as unix:
            unix.bind(b"\0sct-test-abstract")
        got = events(engine, lambda e: True)
    seen = {e.rule: e for e in got}
    conn, bnd = seen["conn"], seen["bnd"]
    assert conn.values[1] == SockAddr(socket.AF_INET, "127.0.0.1", port, conn.values[1].raw)
    assert conn.retval == 0
    assert bnd.values[1].address == "@sct-test-abstract"
    assert Renderer(override="%params")(conn).endswith(f"{{AF_INET, 127.0.0.1:{port}}}, 16")


def test_connects_filtered_by_port_in_the_kernel():
    """Only the connect to the watched port leaves the kernel."""
    watched = socket.create_server(("127.0.0.1", 0))
    other = socket.create_server(("127.0.0.1", 0))
    port = watched.getsockname()[1]
    text = rule("to_port", "connect", f"PARAMS[2].port == {port} && PID == {os.getpid()}",
                when="after")
    with watched, other, engine_for(text) as engine:
        for server in (other, watched, other):
            socket.create_connection(server.getsockname()).close()
        got = events(engine, lambda e: True)
    assert [(e.values[1].address, e.values[1].port, e.retval) for e in got] == [
        ("127.0.0.1", port, 0)]


def test_an_address_the_call_fills_in_is_read_at_its_exit():
    """accept4's peer, system-wide: decoded in an after rule's record (read at the exit),
    a pointer in a before rule's (nothing is there yet)."""
    me = os.getpid()
    text = (rule("before", "accept4", f"PID == {me}")
            + rule("after", "accept4", f"PID == {me}", when="after"))
    server = socket.create_server(("127.0.0.1", 0))
    with server, engine_for(text) as engine:
        client = socket.create_connection(server.getsockname())
        conn, peer = server.accept()
        conn.close()
        client.close()
        got = {e.rule: e for e in events(engine, lambda e: True)}
    assert isinstance(got["before"].values[1], int)
    assert got["after"].values[1] == SockAddr(socket.AF_INET, "127.0.0.1", peer[1],
                                              got["after"].values[1].raw)
