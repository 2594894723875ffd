"""The system-wide bytecode reads unary `+` as the Python evaluator does: it leaves its
operand as it is (code generation used to recurse until RecursionError on it)."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from systemwide_support import Bench, rule
from test_differential import reference

from syscalltrack.rules import When

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf() loads")

FILTERS = ("+PARAMS[2] == 15", "PARAMS[2] == +15", "-+PARAMS[2] == -15",
           "+(PARAMS[1] + PARAMS[2]) == +20", "+(UID == UID) == 1", "PARAMS[2] in (+9, +15)",
           "+PARAMS[2]", "~+PARAMS[2] == -16")


@settings(max_examples=40, deadline=None)
@given(st.integers(-(1 << 63), (1 << 63) - 1), st.sampled_from([15, 9, 0, -15, 1 << 32 | 15]),
       st.sampled_from(["x86_64", "i386"]))
def test_kernel_and_python_agree_on_plus(pid, sig, abi):
    text = "".join(rule(f"r{i}", "kill", f) for i, f in enumerate(FILTERS))
    with Bench(text) as bench:
        kernel = bench.run("kill", [pid, sig], abi=abi)
        assert not kernel.undecided
        assert kernel.rule == reference(bench, "kill", When.BEFORE, [pid, sig], abi=abi)


def test_plus_matches_what_it_should():
    with Bench(rule("plus", "kill", "+PARAMS[2] == 15")) as bench:
        assert bench.run("kill", [1, 15]).rule == 0
        assert bench.run("kill", [1, -15]).rule is None
