"""openat2 below its dirfd: PATH[n] is the file the kernel opens.

With RESOLVE_IN_ROOT the dirfd is the root of the walk: `/x/victim` from a dirfd on
/tmp/d is /tmp/d/x/victim, and `..` and absolute symlinks stay below it (RESOLVE_BENEATH
refuses, EXDEV, what IN_ROOT would clamp; sctrace resolves it as IN_ROOT). sctrace
resolved such names from the caller's root, so `openat2(/tmp/d, "/x/victim", IN_ROOT)`
went around a rule on /tmp/d/x/victim.
"""

import subprocess
from pathlib import Path

import pytest
from sctrace_support import rule, sctrace

HERE = Path(__file__).resolve().parent
IN_ROOT, BENEATH = "0x10", "0x08"


@pytest.fixture(scope="module")
def openat2_open(c_program) -> str:
    return c_program(HERE / "openat2_open.c")


@pytest.fixture
def jail(tmp_path) -> Path:
    """tmp_path/jail with x/victim, an absolute symlink `up -> /x` and `loop -> ..`."""
    root = tmp_path / "jail"
    (root / "x").mkdir(parents=True)
    (root / "x" / "victim").write_text("keep\n")
    (root / "up").symlink_to("/x")
    return root


def _keep(victim: Path, call: str = "open") -> str:
    """A FAIL rule on `call`'s path (open's first argument, openat2's second)."""
    index = 2 if call == "openat2" else 1
    return rule(call, "type = FAIL\nerror_code = -EACCES", "keep",
                filter_=f'PATH[{index}] == "{victim}"')


@pytest.mark.parametrize("name", ["/x/victim", "x/victim", "up/victim", "/../x/victim",
                                  "x/../../x/victim"])
@pytest.mark.parametrize("resolve", [IN_ROOT, BENEATH])
@pytest.mark.parametrize("call", ["open", "openat2"])
def test_names_below_the_dirfd_meet_the_rule(tmp_path, openat2_open, jail, name, resolve,
                                             call):
    victim = jail / "x" / "victim"
    run = sctrace(tmp_path, _keep(victim, call), openat2_open, str(jail), name, resolve)
    bare = subprocess.run([openat2_open, str(jail), name, resolve], capture_output=True,
                          text=True, input="")
    victim.write_text("keep\n")  # (the bare run truncated it when the kernel allowed it)
    # Where the kernel opens the victim, the rule fails the call. BENEATH refuses what
    # IN_ROOT clamps (EXDEV); sctrace resolves it as IN_ROOT, and the rule answers first.
    if bare.stdout == "openat2: OK\n" or (resolve == BENEATH
                                          and bare.stdout == "openat2: EXDEV\n"):
        assert run.out == "openat2: EACCES\n", (run, bare)
    else:
        assert run.out == bare.stdout, (run, bare)
    assert victim.read_text() == "keep\n"


def test_a_file_of_the_same_name_outside_the_jail_is_not_the_rules(tmp_path, openat2_open,
                                                                    jail):
    """`/x/victim` below another dirfd is another file: opened, and truncated."""
    other = tmp_path / "other"
    (other / "x").mkdir(parents=True)
    (other / "x" / "victim").write_text("not kept\n")
    run = sctrace(tmp_path, _keep(jail / "x" / "victim"), openat2_open, str(other),
                  "/x/victim", IN_ROOT)
    assert run.out == "openat2: OK\n"
    assert (other / "x" / "victim").read_text() == ""
