"""linkat's AT_SYMLINK_FOLLOW follows a final symlink of its old name only: its new name
is never followed (a link there already makes the call fail with EEXIST), so PATH[4]
is the new name as written, the symlink itself."""

import subprocess
import sys

from sctrace_support import SCTRACE

LINK = r"""
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_SYMLINK_FOLLOW = -100, 0x400
failed = libc.linkat(AT_FDCWD, sys.argv[1].encode(), AT_FDCWD, sys.argv[2].encode(),
                     AT_SYMLINK_FOLLOW)
print(errno.errorcode[ctypes.get_errno()] if failed else "linked")
"""


def test_the_new_name_of_a_following_linkat_is_not_followed(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "target").write_text("y")
    (tmp_path / "taken").symlink_to(tmp_path / "target")
    rules, log = tmp_path / "r.rules", tmp_path / "log"
    rules.write_text(f"""rule
{{
syscall_name = linkat
rule_name = onto_taken
filter_expression {{PATH[4] == "{tmp_path / 'taken'}"}}
action {{
type = LOG
}}
when = after
}}
""")
    run = subprocess.run([*SCTRACE, "-c", str(rules), "-o", str(log), "--", sys.executable,
                          "-c", LINK, str(tmp_path / "file"), str(tmp_path / "taken")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "EEXIST"
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "onto_taken" in lines[0], lines
