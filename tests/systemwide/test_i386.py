"""i386 (int $0x80) calls: the syscalls:* tracepoints never see them, so the engine runs
the same rules for them behind raw sys_enter/sys_exit dispatchers. A 32-bit call must
not get past a rule, and a 64-bit call must not be reported twice."""

import ctypes
import os
import struct
import subprocess

import pytest
from systemwide_support import rule

from syscalltrack.bpf.asm import R0, R1, R2, R3, R4, R6, R10, Assembler
from syscalltrack.bpf.link import attach_raw_tracepoint
from syscalltrack.bpf.maps import MapSpec, MapType
from syscalltrack.bpf.prog import Program, ProgType
from syscalltrack.bpf.ringbuf import RingBuffer
from syscalltrack.engines.systemwide import SystemwideEngine
from syscalltrack.engines.systemwide.layout import TS_COMPAT, kernel
from syscalltrack.events.event import Event
from syscalltrack.events.format import LogFormat
from syscalltrack.rules import RuleError, load_rules

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf() and tracefs")
I386_UNLINK, X86_64_UNLINK, MEMFD_SECRET = 10, 87, 447


def ours(engine, pid):
    return [e for e in engine.events(timeout=0.3) if isinstance(e, Event) and e.pid == pid]


def status_recorder(exit_side: bool) -> tuple:
    """sys_enter/sys_exit: record (tgid, call number, thread_info.status) of every call
    made by a task named "helper"."""
    k = kernel()
    a = Assembler()
    a.mov(R6, R1)
    a.mov(R1, R10)
    a.add(R1, -16)
    a.mov(R2, 16)
    a.call("get_current_comm")
    a.ldxdw(R0, R10, -16)
    a.ld_imm64(R1, int.from_bytes(b"helper\0\0", "little"))
    a.jne(R0, R1, "out")
    a.call("get_current_pid_tgid")
    a.rsh(R0, 32)
    a.stxdw(R10, -24, R0)
    if exit_side:  # (regs, ret): the number is regs->orig_ax
        a.ldxdw(R3, R6, 0)
        a.add(R3, k.orig_ax)
        a.mov(R1, R10)
        a.add(R1, -16)
        a.mov(R2, 8)
        a.call("probe_read_kernel")
    else:
        a.ldxdw(R0, R6, 8)
        a.stxdw(R10, -16, R0)
    a.st(8, R10, -8, 0)
    a.call("get_current_task")
    a.mov(R3, R0)
    a.add(R3, k.task_status)
    a.mov(R1, R10)
    a.add(R1, -8)
    a.mov(R2, 4)
    a.call("probe_read_kernel")
    a.ld_map_fd(R1, "ring")
    a.mov(R2, R10)
    a.add(R2, -24)
    a.mov(R3, 24)
    a.mov(R4, 0)
    a.call("ringbuf_output")
    a.label("out")
    a.mov(R0, 0)
    a.exit()
    return a.instructions()


@pytest.mark.parametrize("tracepoint", ["sys_enter", "sys_exit"])
def test_ts_compat_is_set_during_int80_calls_and_clear_otherwise(helper, work, tracepoint):
    """The kernel fact the dispatchers rest on (TS_COMPAT is a #define, not in BTF)."""
    (work / "a").touch()
    (work / "b").touch()
    with MapSpec("ring", MapType.RINGBUF, 0, 0, 1 << 22).create() as ring, \
            Program.load(ProgType.RAW_TRACEPOINT, status_recorder(tracepoint == "sys_exit"),
                         maps=[ring]) as prog:
        with attach_raw_tracepoint(prog, tracepoint):
            proc = subprocess.Popen([helper, "unlink", work / "a", "getppid", "3",
                                     "i386unlink", work / "b", "getppid", "3"],
                                    stdout=subprocess.PIPE)
            proc.communicate()
        with RingBuffer(ring) as reader:
            records = [struct.unpack("<QqI4x", r) for r in reader.read()]
    assert proc.returncode == 0 and not (work / "b").exists()
    calls = [(nr, status) for tgid, nr, status in records if tgid == proc.pid]
    assert [nr for nr, status in calls if status & TS_COMPAT] == [I386_UNLINK]
    # Clear on the 64-bit calls, among them unlink and the three getppid.
    assert {X86_64_UNLINK, 110} <= {nr for nr, _ in calls} and len(calls) > 10


def test_i386_unlink_is_logged_once_with_its_abi_and_number(helper, work):
    text = rule("rm", "unlink", f'PARAMS[1] startswith "{work}/"')
    (work / "x64").touch()
    (work / "x32").touch()
    with SystemwideEngine(load_rules(text)) as engine:
        assert [d.attach for d in engine.plan.dispatchers] == [("tp_btf", "sys_enter")]
        assert {p.attach[0] for p in engine.plan.programs} == {"sct_x86_enter",
                                                                 "sct_i386_enter"}
        proc = subprocess.Popen([helper, "unlink", f"{work}/x64", "i386unlink", f"{work}/x32"],
                                stdout=subprocess.PIPE)
        assert proc.wait() == 0
        got = ours(engine, proc.pid)
    assert [(e.abi, e.nr, e.name, e.values) for e in got] == [
        ("x86_64", X86_64_UNLINK, "unlink", (f"{work}/x64".encode(),)),
        ("i386", I386_UNLINK, "unlink", (f"{work}/x32".encode(),)),
    ]
    i386 = got[1]
    assert i386.comm == b"helper" and i386.signature[0].compat and i386.signature[0].width == 4
    assert LogFormat("%abi %sid %sname %params")(i386) == f'i386 10 unlink "{work}/x32"'


def test_kill_rule_kills_an_i386_unlink(helper, work):
    text = rule("kill", "unlink", f'PARAMS[1] == "{work}/k"', action="KILL")
    (work / "k").touch()
    with SystemwideEngine(load_rules(text)) as engine:
        proc = subprocess.Popen([helper, "i386unlink", f"{work}/k", "uid"],
                                stdout=subprocess.PIPE)
        stdout, _ = proc.communicate()
        got = ours(engine, proc.pid)
    assert proc.returncode == -9 and b"uid" not in stdout
    assert [(e.abi, e.rule, e.action) for e in got] == [("i386", "kill", "KILL")]


def test_after_rule_sees_the_i386_entry_and_return_value(helper, work):
    text = rule("failed", "unlink", f'PARAMS[1] startswith "{work}/" && RETVAL == -2',
                when="after")
    with SystemwideEngine(load_rules(text)) as engine:
        proc = subprocess.Popen([helper, "i386unlink", f"{work}/missing"],
                                stdout=subprocess.PIPE)
        assert proc.wait() == 0
        got = ours(engine, proc.pid)
    assert [(e.abi, e.nr, e.values, e.retval, e.when) for e in got] == [
        ("i386", I386_UNLINK, (f"{work}/missing".encode(),), -2, "after")]


def test_tracepoints_and_no_dispatcher_when_no_watched_call_exists_on_i386():
    """memfd_secret has no i386 number: its rule runs on syscalls:sys_enter_memfd_secret."""
    with SystemwideEngine(load_rules(rule("secret", "memfd_secret"))) as engine:
        assert engine.plan.dispatchers == ()
        assert [(p.syscall.abi, p.attach) for p in engine.plan.programs] == [
            ("x86_64", ("syscalls", "sys_enter_memfd_secret"))]
        ctypes.CDLL(None, use_errno=True).syscall(MEMFD_SECRET, 0)
        got = ours(engine, os.getpid())
    assert [(e.abi, e.nr, e.rule) for e in got] == [("x86_64", MEMFD_SECRET, "secret")]


def test_a_rule_on_an_i386_only_call_runs_on_i386():
    with SystemwideEngine(load_rules(rule("sc", "socketcall", "PARAMS[1] == 3"))) as engine:
        assert [(p.syscall.abi, p.syscall.nr) for p in engine.plan.programs] == [("i386", 102)]


def test_without_compat_the_cheap_tracepoints_run_and_i386_calls_are_not_seen(helper, work):
    text = rule("rm", "unlink", f'PARAMS[1] startswith "{work}/"')
    (work / "x64").touch()
    (work / "x32").touch()
    with SystemwideEngine(load_rules(text), compat=False) as engine:
        assert engine.plan.dispatchers == ()
        assert {p.attach for p in engine.plan.programs} == {
            ("syscalls", "sys_enter_unlink"), ("syscalls", "sys_enter_unlinkat")}
        proc = subprocess.Popen([helper, "unlink", f"{work}/x64", "i386unlink", f"{work}/x32"],
                                stdout=subprocess.PIPE)
        assert proc.wait() == 0
        got = ours(engine, proc.pid)
    assert [(e.abi, e.nr) for e in got] == [("x86_64", X86_64_UNLINK)]
    with pytest.raises(RuleError, match="socketcall exists on i386 only"):
        SystemwideEngine(load_rules(rule("sc", "socketcall")), compat=False)


def test_i386_lengths_over_two_registers_are_matched_and_logged_whole(helper, work):
    """ftruncate64 via int $0x80 passes its length as (low, high) registers: the kernel
    program joins them, so the rule on ftruncate's length sees 2**32 + 5, not 5."""
    text = rule("huge", "ftruncate", "PARAMS[2] == 0x100000005") + rule(
        "low", "ftruncate", "PARAMS[2] == 5")
    (work / "f").touch()
    with SystemwideEngine(load_rules(text)) as engine:
        proc = subprocess.Popen([helper, "i386ftruncate", f"{work}/f", str(2**32 + 5)],
                                stdout=subprocess.PIPE)
        proc.communicate()
        got = ours(engine, proc.pid)
    assert proc.returncode == 0
    assert [(e.abi, e.name, e.rule, e.args[1]) for e in got] == [
        ("i386", "ftruncate64", "huge", 2**32 + 5)]
    assert LogFormat("%sname %params")(got[0]).endswith(f", {2**32 + 5}")
