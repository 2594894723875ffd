"""move_mount follows a final symlink of its from path with MOVE_MOUNT_F_SYMLINKS and
of its to path with MOVE_MOUNT_T_SYMLINKS: PATH[2] and PATH[4] are then where the links
lead, so a rule on the mount cannot be gone around through a symlink to it."""

import shutil
import subprocess
import sys

import pytest
from sctrace_support import SCTRACE

MOVE = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
src, dst, flags = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3])
failed = libc.syscall(429, AT_FDCWD, src, AT_FDCWD, dst, flags)  # move_mount
print("moved" if failed == 0 else f"errno {ctypes.get_errno()}", flush=True)
"""

RULES = """rule
{{
syscall_name = move_mount
rule_name = keep_{name}
filter_expression {{PATH[{index}] == "{path}"}}
action {{
type = FAIL
error_code = -EPERM
}}
when = before
}}
"""


def _move(tmp_path, rules, src, dst, flags):
    """Mount a tmpfs on tmp/a in a private mount namespace, then move_mount src to dst
    under sctrace with `rules`; what the call said, and sctrace's log."""
    rules_file, log = tmp_path / "r.rules", tmp_path / "log"
    rules_file.write_text(rules)
    script = 'mount -t tmpfs none "$1" && shift && exec "$@"'
    run = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         str(tmp_path / "a"), *SCTRACE, "-c", str(rules_file), "-o", str(log), "--",
         sys.executable, "-c", MOVE, str(src), str(dst), str(flags)],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip(), log.read_text()


@pytest.mark.skipif(shutil.which("unshare") is None,
                    reason="no unshare(1) to make a mount namespace with")
@pytest.mark.parametrize("flags, index, followed", [(0x01, 2, True), (0x00, 2, False),
                                                    (0x10, 4, True), (0x00, 4, False)])
def test_a_symlink_to_the_mount_is_followed_as_the_flags_say(tmp_path, flags, index,
                                                             followed):
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    (tmp_path / "to_a").symlink_to(tmp_path / "a")
    (tmp_path / "to_c").symlink_to(tmp_path / "c")
    if index == 2:  # the rule keeps the mount where it is; the call names it by a link
        rules = RULES.format(name="mount", index=2, path=tmp_path / "a")
        src, dst = tmp_path / "to_a", tmp_path / "b"
    else:  # the rule keeps anything from being mounted on c; the call names c by a link
        rules = RULES.format(name="c", index=4, path=tmp_path / "c")
        src, dst = tmp_path / "a", tmp_path / "to_c"
    said, log = _move(tmp_path, rules, src, dst, flags)
    if followed:
        assert said == "errno 1"  # EPERM: the rule's, the mount stays
    else:
        # Not followed, the kernel acts on the link itself: not the rule's path, and
        # the link is no mount (EINVAL) or no directory to mount on (ENOTDIR).
        assert said in ("errno 22", "errno 20"), said
    assert log == ""
