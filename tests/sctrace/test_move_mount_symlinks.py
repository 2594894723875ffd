"""move_mount under sctrace: its names are PATH arguments.

A final symlink of its from name is followed with MOVE_MOUNT_F_SYMLINKS and of its to
name with MOVE_MOUNT_T_SYMLINKS, so a rule on the mount cannot be gone around through a
symlink to it; and the from PATH an after rule tests is where the mount was, worked out
at entry, not where the call moved it.
"""

import shutil
import subprocess
import sys

import pytest
from sctrace_support import SCTRACE

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None,
                                reason="no unshare(1) to make a mount namespace with")

MOVE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, F_EMPTY_PATH = -100, 0x04
src, dst, flags = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3])
if flags & F_EMPTY_PATH:  # the new mount API's way: a descriptor of the mount, no name
    fd = libc.syscall(428, AT_FDCWD, src, 0)  # open_tree
    failed = libc.syscall(429, fd, b"", AT_FDCWD, dst, flags)  # move_mount
else:
    failed = libc.syscall(429, AT_FDCWD, src, AT_FDCWD, dst, flags)  # move_mount
print("moved" if failed == 0 else os.strerror(ctypes.get_errno()), flush=True)
"""

RULE = """rule
{{
syscall_name = move_mount
rule_name = {name}
filter_expression {{PATH[{index}] == "{path}"}}
action {{
type = {action}
}}
when = {when}
}}
"""


def _move(tmp_path, rules, src, dst, flags):
    """Mount a tmpfs on tmp/a in a private mount namespace, then move_mount src to dst
    under sctrace with `rules`; what the call said, and sctrace's log lines."""
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir(exist_ok=True)
    for link, target in (("to_a", "a"), ("to_c", "c")):
        if not (tmp_path / link).is_symlink():
            (tmp_path / link).symlink_to(tmp_path / target)
    rules_file, log = tmp_path / "r.rules", tmp_path / "log"
    rules_file.write_text(rules)
    script = 'mount -t tmpfs none "$1" && shift && exec "$@"'
    run = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         str(tmp_path / "a"), *SCTRACE, "-c", str(rules_file), "-o", str(log), "--",
         sys.executable, "-c", MOVE, str(tmp_path / src), str(tmp_path / dst), str(flags)],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip(), log.read_text().splitlines()


FAIL = "FAIL\nerror_code = -EPERM"


def _keep(tmp_path, index, target):
    return RULE.format(name="keep", index=index, path=tmp_path / target, action=FAIL,
                       when="before")


@pytest.mark.parametrize("src, dst, flags, index, target", [
    ("to_a", "b", 0x01, 2, "a"),  # MOVE_MOUNT_F_SYMLINKS: the from name's link is followed
    ("a", "to_c", 0x10, 4, "c"),  # MOVE_MOUNT_T_SYMLINKS: the to name's link is followed
])
def test_a_symlink_followed_by_the_call_is_followed_by_path(tmp_path, src, dst, flags, index,
                                                            target):
    other = RULE.format(name="other", index=index, path=tmp_path / "elsewhere",
                        action=FAIL, when="before")
    assert _move(tmp_path, other, src, dst, flags)[0] == "moved"  # (the call works here)
    assert _move(tmp_path, _keep(tmp_path, index, target), src, dst, flags)[0] == \
        "Operation not permitted"  # the rule's EPERM: the mount stays


@pytest.mark.parametrize("src, dst, index, target, error", [
    ("to_a", "b", 2, "a", "Invalid argument"),  # the link itself is no mount
    ("a", "to_c", 4, "c", "Invalid argument"),  # nor a place to mount on
])
def test_without_the_flag_the_link_itself_is_named(tmp_path, src, dst, index, target, error):
    assert _move(tmp_path, _keep(tmp_path, index, target), src, dst, 0)[0] == error


def test_an_after_rule_sees_where_the_mount_was(tmp_path):
    rules = RULE.format(name="moved_a", index=2, path=tmp_path / "a", action="LOG",
                        when="after")
    said, lines = _move(tmp_path, rules, "a", "b", 0x04)  # open_tree, then F_EMPTY_PATH
    assert said == "moved"
    assert len(lines) == 1 and "moved_a" in lines[0] and "move_mount" in lines[0], lines
