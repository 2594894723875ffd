"""The tracer against real processes: each test is one scenario of the sctrace engine."""

import errno
import os
import shutil
import signal
import threading

import pytest
from ptrace_support import our_open_files, status_field, trace, wait_until

from syscalltrack.ptrace.events import Decision
from syscalltrack.ptrace.memory import MemoryAccessError
from syscalltrack.ptrace.seccomp import RET_TRACE, ArgCondition, ErrnoRule, Policy, ret_errno
from syscalltrack.ptrace.sys import AUDIT_ARCH_I386
from syscalltrack.ptrace.tracer import SpawnError, Tracer

NR_OPENAT, NR_UNLINK, NR_UNLINKAT, NR_GETPPID, NR_SETUID = 257, 87, 263, 110, 105
I386_UNLINK = 10
UNLINKS = Policy(trace={"x86_64": {NR_UNLINK}})


def touch(path, text="x"):
    path.write_text(text)
    return str(path)


def test_filter_stops_only_for_named_calls(helper, tmp_path):
    a, b = touch(tmp_path / "a"), touch(tmp_path / "b")
    r = trace([helper, "unlink", a, "unlinkat", b, "getppid", "1000"], UNLINKS,
              probe=lambda c: c.read_string(0))
    assert r.code == 0
    assert [(c.nr, c.abi, c.stage) for c in r.calls] == [(NR_UNLINK, "x86_64", "seccomp")]
    assert r.probed == [a.encode()]
    assert r.out[:2] == [f"unlink {a} = 0 0", f"unlinkat {b} = 0 0"]


def test_in_filter_errno_fails_calls_without_any_stop(helper, tmp_path):
    a, b = touch(tmp_path / "a"), touch(tmp_path / "b")
    at_fdcwd = ArgCondition(0, "==", -100 & 0xFFFFFFFF, signed=True, bits=32)
    policy = Policy(errno_rules=[ErrnoRule("x86_64", NR_UNLINK, (), errno.EPERM),
                                 ErrnoRule("x86_64", NR_UNLINKAT, (at_fdcwd,), errno.EACCES)])
    r = trace([helper, "unlink", a, "unlinkat", b], policy)
    assert r.calls == []
    assert r.out == [f"unlink {a} = -1 {errno.EPERM}", f"unlinkat {b} = -1 {errno.EACCES}"]
    assert os.path.exists(a) and os.path.exists(b)


def test_fail_at_a_stop_returns_the_errno_and_skips_the_call(helper, tmp_path):
    a = touch(tmp_path / "a")
    r = trace([helper, "unlink", a], UNLINKS,
              decide=lambda c: Decision.fail(errno.EACCES, want_exit=True))
    assert r.out == [f"unlink {a} = -1 {errno.EACCES}"]
    assert os.path.exists(a)
    assert [r for _, r in r.exits] == [-errno.EACCES]


def test_fail_with_zero_pretends_success(helper, tmp_path):
    a = touch(tmp_path / "a")
    r = trace([helper, "unlink", a], UNLINKS, decide=lambda c: Decision.fail(0))
    assert r.out == [f"unlink {a} = 0 0"]
    assert os.path.exists(a)


def test_exit_is_reported_only_when_asked(helper, tmp_path):
    a, b = touch(tmp_path / "a"), touch(tmp_path / "b")
    r = trace([helper, "unlink", a, "unlink", b, "unlink", a], UNLINKS,
              decide=lambda c: Decision.proceed(want_exit=c.args[0] != 0 and
                                                c.read_string(0).endswith(b"/b")))
    assert len(r.calls) == 3
    assert [(c is r.calls[1], rv) for c, rv in r.exits] == [(True, 0)]


def test_kill_ends_the_process_before_the_call(helper, tmp_path):
    a = touch(tmp_path / "a")
    r = trace([helper, "unlink", a], UNLINKS, decide=lambda c: Decision.kill())
    assert r.code == 128 + signal.SIGKILL
    assert os.path.exists(a)
    assert r.out == []


def test_suspend_leaves_the_process_stopped_untraced_before_the_call(helper, tmp_path):
    a = touch(tmp_path / "a")
    seen = {}
    r, w = os.pipe()
    with Tracer() as tracer:
        tracer.consumer.on_entry = lambda c: Decision.suspend()
        pid = tracer.spawn([helper, "unlink", a], seccomp_policy=UNLINKS, stdout=w)
        os.close(w)

        def look_then_resume():
            try:
                wait_until(lambda: status_field(pid, "State")[0] == "T", what="stopped state")
                seen.update(tracer=status_field(pid, "TracerPid"), exists=os.path.exists(a))
            finally:
                os.kill(pid, signal.SIGCONT)

        watcher = threading.Thread(target=look_then_resume)
        watcher.start()
        code = tracer.run()  # returns once the suspended process has exited
        watcher.join()
    try:
        assert tracer.suspended == [pid]
        assert seen == {"tracer": "0", "exists": True}  # untraced, and the call has not run
        # Resumed with no tracer, the call our filter traces fails with ENOSYS (documented).
        assert code == 0
        assert os.read(r, 4096).decode().splitlines() == [f"unlink {a} = -1 {errno.ENOSYS}"]
    finally:
        os.close(r)


def test_rewrite_a_path_argument_opens_another_file(helper, tmp_path):
    a, b = touch(tmp_path / "a", "from A"), touch(tmp_path / "b", "from B")

    def decide(call):
        if call.read_string(1) == a.encode():
            return Decision.proceed(rewrite={1: b.encode()}, want_exit=True)
        return None

    policy = Policy(trace={"x86_64": {NR_OPENAT}})
    r = trace([helper, "open", a], policy, decide=decide)
    assert r.out[0] == "content from B"
    assert r.out[1].startswith(f"open {a} = 3 ")


def test_rewrite_an_integer_argument(helper, tmp_path):
    touch(tmp_path / "rel")
    policy = Policy(trace={"x86_64": {NR_UNLINKAT}})
    r = trace([helper, "unlinkat", "rel"], policy, cwd=str(tmp_path),
              decide=lambda c: Decision.proceed(rewrite={0: 9999}))
    assert r.out == [f"unlinkat rel = -1 {errno.EBADF}"]


def test_i386_int80_calls_reach_the_tracer_with_their_own_numbers(helper, tmp_path):
    a = touch(tmp_path / "a")
    policy = Policy(trace={"x86_64": {NR_UNLINK}, "i386": {I386_UNLINK}})
    r = trace([helper, "i386unlink", a], policy,
              decide=lambda c: Decision.fail(errno.EPERM),
              probe=lambda c: c.read_string(0))
    assert [(c.abi, c.arch, c.nr) for c in r.calls] == [("i386", AUDIT_ARCH_I386, I386_UNLINK)]
    assert r.probed == [a.encode()]
    assert r.out == [f"i386unlink {a} = -1 {errno.EPERM}"]
    assert os.path.exists(a)


def test_every_foreign_abi_call_can_be_routed_or_refused(helper, tmp_path):
    a = touch(tmp_path / "a")
    routed = Policy(trace={"x86_64": {NR_UNLINK}}, otherwise={"i386": RET_TRACE})
    r = trace([helper, "i386unlink", a], routed, decide=lambda c: Decision.fail(1))
    assert [(c.abi, c.nr) for c in r.calls] == [("i386", I386_UNLINK)]
    refused = Policy(otherwise={"i386": ret_errno(errno.ENOSYS)})
    r = trace([helper, "i386unlink", a], refused)
    assert r.calls == [] and r.out == [f"i386unlink {a} = -1 {errno.ENOSYS}"]


def test_threads_are_followed(helper, tmp_path):
    for i in range(4):
        touch(tmp_path / f"t.{i}")
    r = trace([helper, "threads", "4", str(tmp_path / "t")], UNLINKS)
    assert r.code == 0
    assert len(r.calls) == 4
    assert len({c.tid for c in r.calls}) == 4
    assert len({c.pid for c in r.calls}) == 1
    assert not any(os.path.exists(tmp_path / f"t.{i}") for i in range(4))
    assert [e.kind for e in r.events].count("clone") == 4


def _open_comm_files() -> list[str]:
    return our_open_files(lambda target: target.startswith("/proc/")
                          and target.endswith("/comm"))


def test_each_thread_name_is_read_and_its_file_closed_when_it_goes(helper, tmp_path):
    for i in range(4):
        touch(tmp_path / f"t.{i}")
    before = _open_comm_files()
    r = trace([helper, "threads", "4", str(tmp_path / "t")], UNLINKS,
              probe=lambda c: (c.tid, c.comm()))
    assert len(r.probed) == 4 and {name for _, name in r.probed} == {"helper"}
    assert _open_comm_files() == before


def test_fork_children_are_followed_and_keep_the_filter(helper, tmp_path):
    a = touch(tmp_path / "a")
    r = trace([helper, "fork", a], UNLINKS,
              decide=lambda c: Decision.fail(errno.EROFS))
    assert len(r.calls) == 1
    forks = [e for e in r.events if e.kind in ("fork", "clone")]
    assert [c.pid for c in r.calls] == [forks[0].child]
    assert f"child-unlink {a} = -1 {errno.EROFS}" in r.out


def test_vfork_and_exec_are_followed(helper, tmp_path):
    a = touch(tmp_path / "a")
    # The vfork child execs the helper again, which unlinks a.
    r = trace([helper, "vforkexec", helper, "x"], UNLINKS)
    assert "vfork" in [e.kind for e in r.events]
    assert [e.kind for e in r.events].count("exec") == 2
    r = trace(["/bin/sh", "-c", f"{helper} unlink {a}"], UNLINKS,
              probe=lambda c: c.read_string(0))
    assert r.probed == [a.encode()]


def test_credentials_are_read_at_each_call(helper, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing uid to 65534 needs root")
    a, b = touch(tmp_path / "a"), touch(tmp_path / "b")
    os.chmod(tmp_path, 0o777)
    r = trace([helper, "unlink", a, "setuid", "65534", "unlink", b], UNLINKS,
              probe=lambda c: c.credentials())
    assert [(p.uid, p.euid, p.fsuid) for p in r.probed] == [(0, 0, 0),
                                                             (65534, 65534, 65534)]

    r = trace([helper, "unlink", "x"], UNLINKS, probe=lambda c: (c.comm(), c.ppid()))
    assert r.probed == [("helper", os.getpid())]


def test_process_helpers_see_cwd_and_fds(helper, tmp_path):
    touch(tmp_path / "rel")
    r = trace([helper, "unlinkat", "rel"], Policy(trace={"x86_64": {NR_UNLINKAT}}),
              cwd=str(tmp_path), probe=lambda c: (c.cwd(), c.fd_path(0)))
    assert r.probed[0][0] == str(tmp_path)
    assert r.probed[0][1]


def test_strings_at_a_mapping_end_are_read_and_bad_pointers_raise(helper, tmp_path):
    a = touch(tmp_path / "a")
    errors = []

    def probe(call):
        try:
            return call.read_string(call.abi == "x86_64" and call.nr == NR_OPENAT)
        except MemoryAccessError as exc:
            errors.append(exc)
            return None

    policy = Policy(trace={"x86_64": {NR_OPENAT, NR_UNLINK}})
    r = trace([helper, "edgeopen", a, "badunlink"], policy, probe=probe)
    assert r.probed[-2:] == [a.encode(), None]
    assert errors[0].address == 0x10


def test_exec_failure_is_reported_with_its_errno(tmp_path):
    with Tracer() as tracer, pytest.raises(SpawnError) as info:
        tracer.spawn([str(tmp_path / "missing")], seccomp_policy=UNLINKS)
    assert info.value.errno == errno.ENOENT
    assert "missing" in str(info.value)
    with Tracer() as tracer, pytest.raises(SpawnError) as info:
        tracer.spawn(["no-such-command-for-sure"])
    assert info.value.errno == errno.ENOENT
    (tmp_path / "noexec").write_text("data")
    with Tracer() as tracer, pytest.raises(SpawnError) as info:
        tracer.spawn([str(tmp_path / "noexec")], seccomp_policy=UNLINKS)
    assert info.value.errno == errno.EACCES


def test_without_a_policy_every_call_stops(helper, tmp_path):
    a = touch(tmp_path / "a")
    r = trace([helper, "unlink", a], None)
    nrs = [c.nr for c in r.calls]
    assert nrs[0] == 59  # execve is the first call seen
    assert NR_UNLINK in nrs
    assert all(c.stage == "entry" for c in r.calls)


def test_memory_is_read_from_the_address_space_after_exec(helper, tmp_path):
    # The vfork child reads its execve path through the parent's address space (shared
    # until exec); after exec the same tracee's reads must see the new program's.
    # Without ASLR both programs keep their argv at the top of the same stack
    # addresses, so reading the old address space would find the parent's strings.
    a = touch(tmp_path / "a")
    policy = Policy(trace={"x86_64": {59, NR_UNLINK}})
    unlink = shutil.which("unlink")  # coreutils: unlink(argv[1]), the string on the stack
    r = trace(["setarch", "-R", helper, "vforkexec", unlink, a], policy,
              probe=lambda c: c.read_string(0))
    assert r.code == 0
    assert r.probed[-2:] == [unlink.encode(), a.encode()]
    assert not os.path.exists(a)
