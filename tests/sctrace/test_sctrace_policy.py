"""Which calls stop in sctrace and which fail inside the kernel's seccomp filter."""

import errno

from sctrace_support import rule

from syscalltrack.engines.sctrace import RuleConsumer, build_policy
from syscalltrack.ptrace import RET_TRACE, Tracer, ret_errno
from syscalltrack.rules import load_rules
from syscalltrack.syscalls import CONSTANTS

AT_REMOVEDIR = CONSTANTS["AT_REMOVEDIR"]
FAIL_UNLINK = rule("unlink", "type = FAIL\nerror_code = -EPERM")


def test_fail_on_the_syscall_alone_is_compiled_into_the_filter():
    policy = build_policy(load_rules(FAIL_UNLINK))
    by_call = {(r.abi, r.nr): r for r in policy.errno_rules}
    assert by_call[("x86_64", 87)].conditions == ()
    assert by_call[("x86_64", 87)].errno == errno.EPERM
    assert ("i386", 10) in by_call
    filt = policy.compile()
    assert filt.run(87) == ret_errno(errno.EPERM)
    assert filt.run(263, args=(-100, 0x1000, 0, 0, 0, 0)) == ret_errno(errno.EPERM)
    # unlinkat with AT_REMOVEDIR is rmdir, not unlink: it stops (other rules may want it)
    assert filt.run(263, args=(-100, 0x1000, AT_REMOVEDIR, 0, 0, 0)) == RET_TRACE


def test_integer_filters_compile_exactly():
    rules = rule("openat", "type = FAIL\nerror_code = -EACCES",
                 filter_="PARAMS[3] & O_CREAT && PARAMS[1] == AT_FDCWD")
    filt = build_policy(load_rules(rules)).compile()
    o_creat = CONSTANTS["O_CREAT"]
    at_fdcwd_upper_garbage = 0xDEADBEEF_FFFFFF9C  # an int dirfd: the kernel reads the low half
    assert filt.run(257, args=(at_fdcwd_upper_garbage, 1, o_creat, 0, 0, 0)) == \
        ret_errno(errno.EACCES)
    assert filt.run(257, args=(3, 1, o_creat, 0, 0, 0)) == RET_TRACE
    assert filt.run(257, args=(-100 & (2**64 - 1), 1, 0, 0, 0, 0)) == RET_TRACE


def test_rules_needing_the_tracer_are_not_compiled():
    string_filter = rule("unlink", "type = FAIL\nerror_code = -1", filter_='PARAMS[1] == "/x"')
    log_first = rule("unlink", "type = LOG") + FAIL_UNLINK
    with_after = FAIL_UNLINK + rule("unlink", "type = LOG", "after", when="after")
    for text in (string_filter, log_first, with_after):
        compiled = {r.nr for r in build_policy(load_rules(text)).errno_rules}
        assert not compiled & {87, 263, 10, 301}, text


def test_i386_multiplexers_are_refused_only_when_rules_enforce():
    enforcing = build_policy(load_rules(FAIL_UNLINK))
    refused = {(r.abi, r.nr, r.errno) for r in enforcing.errno_rules if r.abi == "i386"}
    assert {("i386", 102, errno.ENOSYS), ("i386", 117, errno.ENOSYS)} <= refused  # socketcall, ipc
    logging = build_policy(load_rules(rule("unlink", "type = LOG")))
    # (only the userfaultfd refusals that keep sctrace's reads from hanging, see
    # test_userfaultfd.py)
    assert {r.nr for r in logging.errno_rules} == {323, 374, 16, 54, 514}  # (514: x32 ioctl)


def test_unnamed_calls_never_stop(tmp_path, helper):
    stops = []

    class Counting(RuleConsumer):
        def on_entry(self, call):
            stops.append(call.nr)
            return super().on_entry(call)

    ruleset = load_rules(FAIL_UNLINK + rule("openat", "type = LOG", "log"))
    consumer = Counting(ruleset, emit=lambda e: None, notice=lambda m: None)
    victim = tmp_path / "victim"
    victim.touch()
    with Tracer(consumer) as tracer:
        tracer.spawn([helper, "getppid", "1000", "unlink", str(victim), "open", str(victim)],
                     seccomp_policy=build_policy(ruleset))
        assert tracer.run() == 0
    assert victim.exists()  # failed in the kernel
    assert 87 not in stops and 110 not in stops  # neither unlink nor getppid stopped
    assert 257 in stops  # openat has a LOG rule: it stops
