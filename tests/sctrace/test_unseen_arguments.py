"""Old i386 calls that do not pass all their family's arguments in registers: `mmap` (90)
and `select` (82) pass a pointer to a struct of them, `umount` (22) has no flags,
`waitpid` (7) no rusage.  A rule reading such an argument cannot judge those calls: an
enforcing one has them refused (ENOSYS) rather than let through unjudged, any other
passes them by and says so once.  sctrace used to stop with an IndexError at start-up
for the enforcing ones, and at the call for the others."""

import errno
from pathlib import Path

import pytest
from sctrace_support import rule, sctrace

from syscalltrack.engines.sctrace.policy import build_policy
from syscalltrack.rules import load_rules

HERE = Path(__file__).parent
NO_ANON_EXEC = rule("mmap", "type = FAIL\nerror_code = -EPERM", "no_anon_exec",
                    "(PARAMS[3] & PROT_EXEC) && (PARAMS[4] & MAP_ANONYMOUS)")


@pytest.fixture(scope="module")
def program(c_program) -> str:
    return c_program(HERE / "old_i386_calls.c")


def test_an_enforcing_rule_refuses_the_calls_it_cannot_judge(tmp_path, program):
    run = sctrace(tmp_path, NO_ANON_EXEC, program, "oldmmap", "mmapx", "mmapr")
    assert run.code == 0, run.err
    assert run.out.splitlines() == ["oldmmap ENOSYS", "mmapx EPERM", "mmapr ok"]


def test_a_logging_rule_passes_them_by_and_says_so_once(tmp_path, program):
    rules = rule("wait4", "type = LOG", "with_rusage", "PARAMS[4] != 0", when="after")
    run = sctrace(tmp_path, rules, program, "waitpid", "waitpid", "wait4")
    assert run.code == 0, run.err
    assert run.out.splitlines() == ["waitpid ok", "waitpid ok", "wait4 ok"]
    assert len(run.log) == 1 and "with_rusage" in run.log[0] and "wait4" in run.log[0]
    assert run.notices == ["sctrace: rule 'with_rusage' reads arguments that i386 waitpid (7) "
                           "does not pass in its registers: it does not judge that call"]


@pytest.mark.parametrize("call, action, filter_, refused", [
    ("umount2", "type = FAIL\nerror_code = -EPERM", "PARAMS[2] & 1", ("i386", 22)),
    ("select", "type = KILL", "PARAMS[1] > 64", ("i386", 82)),
    ("rt_sigprocmask", "type = FAIL\nerror_code = -EPERM", "PARAMS[4] != 8", ("i386", 126)),
    ("mmap", "type = REWRITE\nparam = 3\nvalue = 1", None, ("i386", 90)),
])
def test_the_filter_refuses_exactly_those_calls(call, action, filter_, refused):
    policy = build_policy(load_rules(rule(call, action, "r", filter_)))
    refusals = {(r.abi, r.nr) for r in policy.errno_rules
                if r.errno == errno.ENOSYS and not r.conditions}
    assert refused in refusals
    family = {("i386" if abi == "i386" else "x86_64", nr)
              for abi, nrs in policy.trace.items() for nr in nrs}
    assert not (refusals & family) - {refused}  # the family's other calls are judged
    policy.compile()  # and the filter builds


@pytest.mark.parametrize("call, filter_", [
    ("wait4", "PARAMS[3] != 0"),  # options: i386 waitpid has it too
    ("sigsuspend", "PARAMS[1] != 0"),  # a rule on the i386 name, judged on every row
    ("mmap", "PARAMS[2] > 4096"),  # len: old mmap (90) is refused, mmap2 (192) judged
])
def test_rows_that_pass_what_the_rule_reads_are_judged_not_refused(call, filter_):
    policy = build_policy(load_rules(rule(call, "type = FAIL\nerror_code = -EPERM", "r",
                                          filter_)))
    refusals = {(r.abi, r.nr) for r in policy.errno_rules
                if r.errno == errno.ENOSYS and not r.conditions}
    family = {(abi, nr) for abi, nrs in policy.trace.items() for nr in nrs}
    assert refusals & family <= {("i386", 90)}
