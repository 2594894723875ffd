"""Computations done in a forked child come back, and so do their failures."""

import errno
import os

import pytest

from syscalltrack.bpf.isolate import ChildError, in_child


def test_the_answer_comes_back_and_the_work_happened_elsewhere():
    assert in_child(os.getpid) != os.getpid()
    assert in_child(lambda: {"offsets": (1, 2)}) == {"offsets": (1, 2)}


def test_an_oserror_is_raised_as_itself():
    def refuse():
        raise PermissionError(errno.EPERM, "refused")

    with pytest.raises(PermissionError, match="refused"):
        in_child(refuse)


def test_other_failures_carry_the_childs_traceback():
    with pytest.raises(ChildError, match="ZeroDivisionError"):
        in_child(lambda: 1 // 0)
