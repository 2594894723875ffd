"""Arguments in memory the caller has not touched yet: BPF programs cannot fault pages
in, so such a string reads as an error in the program although the kernel will read it.
The rule is then undecided (a notice, never a silent miss), before or after the call --
not decided on a read at the exit, when the call may have overwritten the bytes -- and
only a NULL pointer makes string tests false."""

import os
import subprocess

import pytest
from systemwide_support import Bench, rule

from syscalltrack.engines.systemwide import SystemwideEngine
from syscalltrack.engines.systemwide.layout import KIND_UNDECIDED, KIND_UNREADABLE
from syscalltrack.events.event import Event, Undecided, Unreadable
from syscalltrack.events.render import Renderer
from syscalltrack.rules import load_rules

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf()")


def items_of(engine, pid):
    return [i for i in engine.events(timeout=0.3)
            if (i.event if isinstance(i, Undecided) else i).pid == pid]


def test_a_before_rule_on_a_cold_path_is_undecided_not_silently_missed(helper, work):
    (work / "cold").touch()
    (work / "warm").touch()
    text = rule("cold", "unlink", f'PARAMS[1] == "{work}/cold"') + rule(
        "warm", "unlink", f'PARAMS[1] == "{work}/warm"')
    with SystemwideEngine(load_rules(text)) as engine:
        proc = subprocess.Popen([helper, "coldunlink", f"{work}/cold", "unlink", f"{work}/warm"],
                                stdout=subprocess.PIPE, text=True)
        out, _ = proc.communicate()
        got = items_of(engine, proc.pid)
    assert out.splitlines() == [f"coldunlink {work}/cold = 0 0", f"unlink {work}/warm = 0 0"]
    assert not (work / "cold").exists()  # the kernel read the path
    notice, event = got
    assert isinstance(notice, Undecided) and notice.rule == "cold"
    assert isinstance(notice.event.values[0], Unreadable)
    line = Renderer()(notice)  # the unread path shows as its address
    assert line.startswith(f"-- rule cold undecided in the kernel for {proc.pid}[helper] "
                           f"unlink({notice.event.values[0].address:#x}): "), line
    assert line.endswith("PARAMS[1] could not be read in the kernel (not in memory yet, or "
                         "a bad pointer); no action taken --"), line
    assert notice.reason.startswith("PARAMS[1] could not be read")
    assert isinstance(event, Event) and event.rule == "warm"
    assert event.values == (f"{work}/warm".encode(),)


def test_an_after_rule_on_a_cold_path_is_undecided_too(helper, work):
    """Not decided on the memory at the exit: readlink(p, p, n) writes its answer there."""
    (work / "cold").touch()
    text = rule("gone", "unlink", f'PARAMS[1] == "{work}/cold"', when="after")
    with SystemwideEngine(load_rules(text)) as engine:
        proc = subprocess.Popen([helper, "coldunlink", f"{work}/cold"], stdout=subprocess.PIPE)
        proc.communicate()
        got = items_of(engine, proc.pid)
    assert not (work / "cold").exists()
    assert [(type(i), i.rule, i.event.retval) for i in got] == [(Undecided, "gone", 0)]
    assert isinstance(got[0].event.values[0], Unreadable)


def test_an_unreadable_socket_address_leaves_a_field_test_undecided():
    with Bench(rule("https", "connect", "PARAMS[2].port == 443")) as bench:
        out = bench.run("connect", [3, 0x10, 16])  # not readable by the program
        assert (out.rule, out.undecided) == (0, True)
        assert bench.run("connect", [3, None, 0]).rule is None  # NULL: no address


def test_the_reason_names_the_argument_the_rule_could_not_read_and_only_that():
    """renameat(3, "a", AT_FDCWD, <unreadable>): a rule on the first path is undecided for
    the directory fd, not for the second argument; one on the second names PARAMS[2]."""
    text = (rule("first", "rename", 'PARAMS[1] == "zzz"')
            + rule("second", "rename", 'PARAMS[2] == "zzz"'))
    with Bench(text) as bench:
        out = bench.run("renameat", [3, b"a", -100, 0x10])
        assert (out.rule, out.kind) == (0, KIND_UNDECIDED)
        out = bench.run("renameat", [-100, b"/a", -100, 0x10])
        assert (out.rule, out.kind) == (1, KIND_UNREADABLE + 2)
