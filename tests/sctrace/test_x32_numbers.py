"""x32 calls (this kernel refuses them; others run them) are judged by the rules of the
call they are: the calls with an x32 form have their own numbers (execve is 520, not
59), which sctrace used to find no row for, letting them through any rule."""

import errno

from syscalltrack.engines.sctrace.engine import RuleConsumer
from syscalltrack.engines.sctrace.policy import build_policy
from syscalltrack.ptrace import Action, Syscall
from syscalltrack.ptrace.sys import AUDIT_ARCH_X86_64
from syscalltrack.rules import load_rules
from syscalltrack.syscalls import table

RULES = """rule
{
syscall_name = execve
rule_name = no_exec
action {
type = FAIL
error_code = -EACCES
}
when = before
}
"""


def x32_call(nr: int) -> Syscall:
    return Syscall(1, 1, "x32", AUDIT_ARCH_X86_64, nr, (0,) * 6, 0, 0, "seccomp", None, None)


def test_the_x32_forms_have_their_own_numbers():
    assert table().by_x32_nr(520).name == "execve"
    assert table().by_x32_nr(545).name == "execveat"
    assert table().by_x32_nr(514).name == "ioctl"
    assert table().by_x32_nr(2).name == "open"  # (a call without an x32 form)


def test_an_x32_execve_is_failed_by_an_execve_rule():
    consumer = RuleConsumer(load_rules(RULES), emit=lambda event: None,
                            notice=lambda message: None)
    decision = consumer.on_entry(x32_call(520))
    assert decision is not None and decision.action is Action.FAIL
    assert decision.retval == -errno.EACCES
    assert consumer.on_entry(x32_call(1)) is None  # write: no rule


def test_the_refusals_use_x32_numbers_too():
    """The userfaultfd ioctl is refused on x32 by x32's ioctl number (514), not 16."""
    policy = build_policy(load_rules(RULES))
    ioctls = {(r.abi, r.nr) for r in policy.errno_rules if r.conditions
              and r.conditions[0].value == 0xAA00}
    assert ioctls == {("x86_64", 16), ("i386", 54), ("x32", 514)}
