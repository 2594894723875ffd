"""CallView's per-call-number shortcuts give what the table's own definitions give."""

import pytest

from syscalltrack.engines.sctrace.context import CallShape, CallView
from syscalltrack.ptrace import Syscall
from syscalltrack.syscalls import table

# Registers with garbage in the upper halves, sign bits set, values wider than the type.
REGISTERS = [
    (0xFFFFFFFFFFFFFF9C, 0x1_0000_0001, 0xFFFF_FFFF_8000_0000, 0x7FFF_FFFF, 0x1_FFFF, 1 << 63),
    (0xDEAD_BEEF_0000_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 0, 0x8000, 0xFFFF_0000_7FFF_FFFF, 42),
]


@pytest.mark.parametrize("raw", REGISTERS)
def test_arguments_are_normalised_exactly_as_arg_normalise_does(raw):
    checked = 0
    for sc in table():
        registers = raw if sc.abi != "i386" else tuple(r & 0xFFFFFFFF for r in raw)
        call = Syscall(1, 1, sc.abi, 0, sc.nr, registers, 0, 0, "seccomp", None, None)
        view = CallView(call, CallShape(sc, sc.args, None))
        values = sc.arguments(registers)  # i386: two registers may make one argument
        expected = tuple(a.normalise(r) for a, r in zip(sc.args, values, strict=False))
        assert view.args == expected, sc
        checked += len(sc.args)
    assert checked > 1000  # both ABIs, every argument kind
