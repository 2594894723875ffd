"""A REWRITE of open's flags or mode meets openat2, which keeps them in memory.

A rule on `open` also sees `openat2`, whose flags and mode lie in a `struct open_how`,
not in registers. sctrace crashed on such a rewrite (TypeError, found by review) and
its command was killed; it now fails the call with EFAULT and says why.
"""

from pathlib import Path

import pytest
from sctrace_support import sctrace

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def openat2_open(c_program) -> str:
    return c_program(HERE / "openat2_open.c")


def test_a_rewrite_of_flags_in_open_how_fails_the_call_and_says_why(tmp_path, openat2_open):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    rules = ("rule\n{\nsyscall_name = open\nrule_name = readonly\n"
             f'filter_expression {{PARAMS[1] == "{victim}"}}\n'
             "action {\ntype = REWRITE\nparam = 2\nvalue = O_RDONLY\n}\n}\n")
    run = sctrace(tmp_path, rules, openat2_open, "/", str(victim), "0")
    assert (run.code, run.out) == (0, "openat2: EFAULT\n")
    assert victim.read_text() == "keep\n"
    assert len(run.notices) == 1 and "cannot rewrite PARAMS[2]" in run.notices[0] \
        and "open_how.flags" in run.notices[0], run.notices
