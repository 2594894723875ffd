"""A process names itself (prctl(PR_SET_NAME), up to 15 bytes): in the default format,
`PID[COMM]: SID_NAME(PARAMS) (rule RULE)`, its name cannot close the bracket and so make
its line read as another call. A `%barecomm` inside `[...]` of a format escapes `]` as
`\\x5d` (and `\\` as `\\\\`, as every value does); ordinary names print as the original
printed them, byte for byte, and `%barecomm` outside brackets is the name escaped as any
value. Every way a line is rendered agrees: from an Event (sctrace's slow path), from a view's
record (the daemon's and sctrace's fast path), and both engines' real events."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from view_support import record_of, view_of

from syscalltrack.cli.sctrace import _TextLines
from syscalltrack.events import DEFAULT_FORMAT, Event, LogFormat, Undecided, escape
from syscalltrack.events.event import NO_PATHS
from syscalltrack.events.render import TRACE_FORMAT, Renderer
from syscalltrack.events.view import Records

FORGED = b"x]: 87_unlink"  # 13 bytes: prctl takes it whole
# The default format's line, parsed as someone reading the log would: the name is
# everything up to the first `]` after the pid's `[`.
LINE = re.compile(r"syscall: (\d+)\[([^\]]*)\]: (\d+)_(\w+)\((.*)\) \(rule (.*)\)")


def unescape(text: str) -> bytes:
    """The bytes a value printed as (`\\n \\t \\r \\" \\\\ \\xHH`, the rest as is)."""
    out, i = bytearray(), 0
    while i < len(text):
        if text[i] != "\\":
            out.append(ord(text[i]))
            i += 1
        elif text[i + 1] == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(b'\\"\n\t\r'["\\\"ntr".index(text[i + 1])])
            i += 2
    return bytes(out)


def every_rendering(event: Event, fmt: str | None = None) -> set[str]:
    """The line of `event` as each path prints it: the Event (slow path), its view's record
    alone and in a daemon batch, and sctrace's text output (`_TextLines`)."""
    event = event._replace(paths=NO_PATHS, log_format=fmt)  # records carry no paths
    renderer = Renderer()
    row = record_of(event)
    view = view_of(event)
    return {
        renderer(event),
        LogFormat(fmt or DEFAULT_FORMAT).for_view(view)(row),
        *renderer.lines(Records([row, row], (0,), {0: view})),
        _TextLines(Renderer())(event),
    }


def test_a_forged_name_cannot_close_the_bracket(make_event):
    event = make_event("mkdir", [b"foo", 0o775], comm=FORGED, rule="r")
    (line,) = every_rendering(event)
    assert line == 'syscall: 876[x\\x5d: 87_unlink]: 83_mkdir("foo", 509) (rule r)'
    pid, comm, nr, name, params, rule = LINE.fullmatch(line).groups()
    assert (pid, unescape(comm), nr, name, params, rule) == (
        "876", FORGED, "83", "mkdir", '"foo", 509', "r")


@pytest.mark.parametrize("fmt", ["%ruleid] %pid[%barecomm]: %sname", ":] %pid[%barecomm]",
                                 "]][%barecomm]", "[a]] [%barecomm]"])
def test_a_stray_closing_bracket_before_does_not_turn_the_escape_off(make_event, fmt):
    event = make_event("mkdir", [b"foo", 0o775], comm=FORGED, rule="r")
    (line,) = every_rendering(event, fmt)
    assert "[x\\x5d: 87_unlink]" in line, line


@pytest.mark.parametrize("comm", [
    b"mkdir", b"rm", b"kworker/0:1", b"(sd-pam)", b"a[b", b"[x", b"x: y", b"a b",
    b"python3.11", b"%pid", b"~!@#$%^&*()_+{}|:<>?",
])
def test_ordinary_names_print_byte_for_byte_as_before(make_event, comm):
    event = make_event("mkdir", [b"foo", 0o775], comm=comm, rule="r")
    expected = f'syscall: 876[{comm.decode()}]: 83_mkdir("foo", 509) (rule r)'
    assert every_rendering(event) == {expected}
    assert every_rendering(event, TRACE_FORMAT) == {expected.replace("(rule r)", "= ?")}


@pytest.mark.parametrize(("comm", "printed"), [
    (b"]", "\\x5d"),
    (b"a]b]", "a\\x5db\\x5d"),
    (b"a\\x5d", "a\\\\x5d"),  # a name spelling the escape is not the escaped name
    (b"\\]", "\\\\\\x5d"),
    (b"x]\n", "x\\x5d\\n"),
    (b'q"]', 'q\\"\\x5d'),
])
def test_the_bracket_and_the_escape_character_are_escaped(make_event, comm, printed):
    event = make_event("getpid", comm=comm, rule="r")
    assert every_rendering(event) == {f"syscall: 876[{printed}]: 39_getpid() (rule r)"}
    assert every_rendering(event, "[%barecomm]") == {f"[{printed}]"}
    assert every_rendering(event, "[%pid %barecomm] [] %barecomm") == {
        f"[876 {printed}] [] {escape(comm)}"}
    assert every_rendering(event, "%barecomm]") == {f"{escape(comm)}]"}  # no bracket open


def test_quoted_comm_is_unchanged(make_event):
    event = make_event("getpid", comm=FORGED)
    assert every_rendering(event, "%comm") == {'"x]: 87_unlink"'}


def test_an_undecided_notice_brackets_the_name_the_same_way(make_event):
    event = make_event("unlink", [b"/etc/passwd"], comm=FORGED, rule="r")
    notice = Renderer()(Undecided("r", 0, event, "string longer than the window"))
    assert "876[x\\x5d: 87_unlink] unlink(" in notice and "]: " not in notice


hostile_comm = st.lists(st.sampled_from([b"]", b"[", b"\\", b"x", b"5", b"d", b": ",
                                         b"\n", b'"', b"\xff", b"87_unlink"]),
                        max_size=8).map(b"".join).map(lambda b: b[:15]) | st.binary(max_size=15)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), comm=hostile_comm,
       fmt=st.sampled_from([None, TRACE_FORMAT, "%barecomm", "[%barecomm]%comm",
                            "[[%barecomm] %barecomm]%barecomm"]))
def test_every_path_agrees_and_the_name_reads_back(any_event, data, comm, fmt):
    event = data.draw(any_event)._replace(comm=comm, rule="r")
    lines = every_rendering(event, fmt)
    assert len(lines) == 1, lines
    if fmt is None:
        (line,) = lines
        pid, printed = LINE.match(line).groups()[:2]
        assert (int(pid), unescape(printed)) == (event.pid, comm)


# ---------------------------------------------------------------- the real engines

NAMED_MKDIR = """
import ctypes, os, sys
ctypes.CDLL(None, use_errno=True).prctl(15, sys.argv[1].encode("latin-1"), 0, 0, 0)  # SET_NAME
os.mkdir(sys.argv[2])
"""


def named_mkdir(path: Path) -> list[str]:
    """The command that names itself FORGED, then makes `path`."""
    return [sys.executable, "-c", NAMED_MKDIR, FORGED.decode("latin-1"), str(path)]


def mkdir_rule(work: Path) -> str:
    return ("rule\n{\nsyscall_name = mkdir\nrule_name = r\n"
            f'filter_expression {{PARAMS[1] startswith "{work}/"}}\n'
            "action {\ntype = LOG\n}\nwhen = before\n}\n")


def parsed(lines: list[str]) -> list[tuple]:
    """(pid, name, call, params, rule) of each line, which must parse as the default
    format."""
    matches = [LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    return [(int(m[1]), unescape(m[2]), m[4], m[5], m[6]) for m in matches]


@pytest.fixture
def work():
    """A directory every uid can reach (pytest's tmp_path sits under a 0700 parent)."""
    path = Path(tempfile.mkdtemp(prefix="sct-comm-"))
    os.chmod(path, 0o777)
    yield path
    for child in path.iterdir():
        child.rmdir()
    path.rmdir()


def test_the_system_wide_engine_logs_a_forged_name_in_its_brackets(work):
    if os.geteuid() != 0:
        pytest.skip("needs root: the system-wide engine loads eBPF programs")
    from syscalltrack.daemon.server import StartupError, preflight
    from syscalltrack.engines.systemwide import SystemwideEngine
    from syscalltrack.rules import load_rules
    try:
        preflight(compat=False)
    except StartupError as err:
        pytest.skip(str(err))
    with SystemwideEngine(load_rules(mkdir_rule(work)), compat=False).load() as engine:
        proc = subprocess.Popen(named_mkdir(work / "d"))
        assert proc.wait() == 0
        batch = engine.poll_records(0, None)
        lines = Renderer().lines(batch)  # the daemon's way: records straight from views
        slow = [Renderer()(item) for item in batch.stream_items()]
    assert lines == slow
    ours = [line for line in lines if f"{work}/d" in line]
    assert len(ours) == 1 and "[x\\x5d: 87_unlink]: " in ours[0], lines
    ((pid, comm, call, params, rule),) = parsed(ours)
    assert (pid, comm, params, rule) == (proc.pid, FORGED, f'"{work}/d", 511', "r")
    assert call in ("mkdir", "mkdirat")


def test_sctrace_logs_a_forged_name_in_its_brackets(work, tmp_path):
    rules = tmp_path / "mkdir.rules"
    rules.write_text(mkdir_rule(work))
    log = tmp_path / "log"
    done = subprocess.run([sys.executable, "-m", "syscalltrack.cli.sctrace", "-c", str(rules),
                           "-o", str(log), "--", *named_mkdir(work / "d")],
                          capture_output=True, text=True)
    if done.returncode != 0 and "cannot trace" in done.stderr:
        pytest.skip(done.stderr)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "[x\\x5d: 87_unlink]: " in lines[0], lines
    ((pid, comm, call, params, rule),) = parsed(lines)
    assert (comm, params, rule) == (FORGED, f'"{work}/d", 511', "r") and pid > 0
    assert call in ("mkdir", "mkdirat")
