"""Arguments in memory the caller has not touched yet: BPF programs cannot fault pages
in, so such a string reads as an error at the call's entry although the kernel will
read it. A before rule is then undecided (a notice, never a silent miss), an after rule
reads it again at the exit, and only a NULL pointer makes string tests false."""

import os
import subprocess

import pytest
from systemwide_support import Bench, rule

from syscalltrack.engines.systemwide import SystemwideEngine
from syscalltrack.events.event import Event, Undecided, Unreadable
from syscalltrack.events.render import Renderer
from syscalltrack.rules import load_rules

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf()")


def run_helper(helper, *args):
    proc = subprocess.run([helper, *args], capture_output=True, text=True, check=True)
    return proc


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
    assert Renderer()(notice) == (f"-- rule cold undecided in the kernel for {proc.pid}[helper] "
                                  "unlink: argument 1 could not be read in the kernel; "
                                  "no action taken --")
    assert isinstance(event, Event) and event.rule == "warm"
    assert event.values == (f"{work}/warm".encode(),)


def test_an_after_rule_reads_a_cold_path_again_at_the_exit(helper, work):
    (work / "cold").touch()
    text = rule("gone", "unlink", f'PARAMS[1] == "{work}/cold" && RETVAL == 0', when="after")
    with SystemwideEngine(load_rules(text)) as engine:
        proc = subprocess.Popen([helper, "coldunlink", f"{work}/cold"], stdout=subprocess.PIPE)
        proc.communicate()
        got = items_of(engine, proc.pid)
    assert [(type(e), e.rule, e.values, e.retval) for e in got] == [
        (Event, "gone", (f"{work}/cold".encode(),), 0)]


def test_an_unreadable_socket_address_leaves_a_field_test_undecided():
    with Bench(rule("https", "connect", "PARAMS[2].port == 443")) as bench:
        out = bench.run("connect", [3, 0x10, 16])  # not readable by the program
        assert (out.rule, out.undecided) == (0, True)
        assert bench.run("connect", [3, None, 0]).rule is None  # NULL: no address
