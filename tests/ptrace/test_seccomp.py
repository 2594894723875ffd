"""The seccomp compiler, checked against its own Python semantics (no kernel needed)."""

import errno
import itertools

import pytest

from syscalltrack.ptrace.seccomp import (
    JA,
    JEQ,
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    RET_TRACE,
    ArgCondition,
    ErrnoRule,
    Jump,
    Label,
    Policy,
    Stmt,
    assemble,
    ret_errno,
)
from syscalltrack.ptrace.sys import AUDIT_ARCH_I386, X32_SYSCALL_BIT

EDGES = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, 0x1FFFFFFFF,
         0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFF00000000, 0xFFFFFFFFFFFFFF9C,
         0xFFFFFFFFFFFFFFFF, 0x123456789, 0xFFFFFF9C]


def test_only_named_calls_trace_and_the_rest_is_allowed():
    f = Policy(trace={"x86_64": {87, 263}}).compile()
    assert f.run(87) == RET_TRACE
    assert f.run(263) == RET_TRACE
    assert f.run(39) == RET_ALLOW
    assert f.run(87, arch=AUDIT_ARCH_I386) == RET_ALLOW


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">=", "&"])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bits", [64, 32])
def test_argument_compares_match_python_semantics_on_both_halves(op, signed, bits):
    for value in EDGES:
        cond = ArgCondition(2, op, value, signed=signed, bits=bits)
        f = Policy(errno_rules=[ErrnoRule("x86_64", 87, (cond,), errno.EPERM)]).compile()
        for arg in EDGES:
            args = (0, 0, arg, 0, 0, 0)
            want = ret_errno(errno.EPERM) if cond.matches(args) else RET_ALLOW
            assert f.run(87, args=args) == want, (op, signed, bits, hex(value), hex(arg))


@pytest.mark.parametrize("op", ["==", "!=", "<", ">=", "&"])
@pytest.mark.parametrize("bits", [64, 32])
@pytest.mark.parametrize("mask", [0x200, 0x3, 0xFFFFFFFF00000000, 0x80000000FFFF0000])
def test_masked_compares_match_python_semantics(op, bits, mask):
    for value in EDGES:
        cond = ArgCondition(1, op, value, signed=True, bits=bits, mask=mask)
        f = Policy(errno_rules=[ErrnoRule("x86_64", 87, (cond,), errno.EPERM)]).compile()
        for arg in EDGES:
            args = (0, arg, 0, 0, 0, 0)
            want = ret_errno(errno.EPERM) if cond.matches(args) else RET_ALLOW
            assert f.run(87, args=args) == want, (op, bits, hex(mask), hex(value), hex(arg))


def test_signed_compare_orders_negative_below_positive():
    minus_100 = -100 & 0xFFFFFFFFFFFFFFFF
    assert ArgCondition(0, "<", 0, signed=True).matches((minus_100,) * 6)
    assert not ArgCondition(0, "<", 0).matches((minus_100,) * 6)


def test_rules_are_first_match_then_trace_for_that_number():
    rules = [
        ErrnoRule("x86_64", 263, (ArgCondition(2, "&", 0x200),), errno.EACCES),  # AT_REMOVEDIR
        ErrnoRule("x86_64", 263, (ArgCondition(0, "==", -100 & 0xFFFFFFFF, bits=32),),
                  errno.EPERM),
    ]
    f = Policy(trace={"x86_64": {263}}, errno_rules=rules).compile()
    assert f.run(263, args=(0xFFFFFF9C, 0, 0x200, 0, 0, 0)) == ret_errno(errno.EACCES)
    assert f.run(263, args=(0xFFFFFFFFFFFFFF9C, 0, 0, 0, 0, 0)) == ret_errno(errno.EPERM)
    assert f.run(263, args=(3, 0, 0, 0, 0, 0)) == RET_TRACE


def test_errno_zero_is_fake_success():
    f = Policy(errno_rules=[ErrnoRule("x86_64", 87, (), 0)]).compile()
    assert f.run(87) == RET_ERRNO


def test_foreign_abis_route_by_arch_and_x32_bit():
    p = Policy(trace={"i386": {10}, "x32": {87}},
               otherwise={"i386": RET_KILL_PROCESS})
    f = p.compile()
    assert f.run(10, arch=AUDIT_ARCH_I386) == RET_TRACE
    assert f.run(11, arch=AUDIT_ARCH_I386) == RET_KILL_PROCESS
    assert f.run(87 | X32_SYSCALL_BIT) == RET_TRACE
    assert f.run(86 | X32_SYSCALL_BIT) == RET_ALLOW
    assert f.run(87) == RET_ALLOW  # x86_64 unlink is not named
    assert f.run(-1) == RET_ALLOW  # not a syscall number at all: the kernel says ENOSYS
    assert f.run(0, arch=0xC00000B7) == RET_KILL_PROCESS  # unknown arch


def test_everything_foreign_can_go_to_the_tracer():
    f = Policy(trace={"x86_64": {87}}, otherwise={"i386": RET_TRACE, "x32": RET_TRACE}).compile()
    assert all(f.run(nr, arch=AUDIT_ARCH_I386) == RET_TRACE for nr in (0, 10, 400))
    assert f.run(1 | X32_SYSCALL_BIT) == RET_TRACE
    assert f.run(1) == RET_ALLOW


def test_many_numbers_use_a_search_that_fits_and_agrees_with_decide():
    traced = set(range(0, 460, 2))
    rules = [ErrnoRule("x86_64", nr, (ArgCondition(0, ">", nr),), nr % 100)
             for nr in range(1, 460, 3)]
    p = Policy(trace={"x86_64": traced, "i386": set(range(0, 400, 5))}, errno_rules=rules)
    f = p.compile()
    # Each number costs its compare plus its own code; the search adds little.
    assert len(f) <= 2 * len(traced) + 9 * len(rules) + 2 * 80 + 150
    for nr, arg in itertools.product(range(0, 470), (0, 500)):
        args = (arg, 0, 0, 0, 0, 0)
        assert f.run(nr, args=args) == p.decide("x86_64", nr, args)
        assert f.run(nr, arch=AUDIT_ARCH_I386, args=args) == p.decide("i386", nr, args)


def test_far_branches_get_trampolines():
    filler = [Stmt(0x00, i) for i in range(300)]
    insns = assemble([Jump(JEQ, 1, "far", None), *filler, Label("far"), Stmt(0x06, 7)])
    assert insns[0][:3] == (JEQ, 0, 1)
    assert insns[1][0] == JA and insns[1][3] == 300


def test_dump_is_readable():
    text = Policy(trace={"x86_64": {87}},
                  errno_rules=[ErrnoRule("x86_64", 263, (ArgCondition(1, "==", 5),),
                                         errno.EPERM)]).compile().dump()
    assert "ld [4]        ; arch" in text
    assert "args[1].hi" in text
    assert "ERRNO(EPERM)" in text
    assert "TRACE" in text


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        ArgCondition(6, "==", 0)
    with pytest.raises(ValueError):
        ArgCondition(0, "=~", 0)
    with pytest.raises(ValueError):
        ErrnoRule("arm64", 1, (), 1)
    with pytest.raises(ValueError):
        Policy(trace={"mips": {1}})
