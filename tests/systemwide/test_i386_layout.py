"""The kernel programs read i386 fanotify_mark's split mask, its dfd and pathname, and the
16-bit ids of sys_setuid16 and the like, where the kernel reads them."""

import os

import pytest
from systemwide_support import Bench, rule
from test_differential import reference

from syscalltrack.rules import When

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf() loads")


def test_fanotify_mark_on_i386():
    text = (rule("path", "fanotify_mark", 'PARAMS[4] == AT_FDCWD && PARAMS[5] == "/etc"')
            + rule("mask", "fanotify_mark", "PARAMS[3] == 0x100000002"))
    with Bench(text) as bench:
        for args, expected in (([3, 1, 0, 0, -100 & 0xFFFFFFFF, b"/etc"], 0),
                               ([3, 1, 2, 1, 5, b"/etc"], 1),
                               ([3, 1, 2, 0, 5, b"/etc"], None)):
            out = bench.run("fanotify_mark", args, abi="i386")
            assert (out.rule, out.undecided) == (expected, False)
            assert reference(bench, "fanotify_mark", When.BEFORE, args, abi="i386") == expected


def test_setuid16_of_0x10000_is_root():
    with Bench(rule("root", "setuid", "PARAMS[1] == 0")) as bench:
        assert bench.run("setuid", [0x10000], abi="i386").rule == 0
        assert bench.run("setuid32", [0x10000], abi="i386").rule is None
        assert bench.run("setuid", [0x10000]).rule is None
