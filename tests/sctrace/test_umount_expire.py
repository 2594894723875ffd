"""An MNT_EXPIRE umount2 under sctrace expires its mount as it does untraced.

The first such call marks the mount and fails with EAGAIN, the second unmounts it if
nothing touched the mount in between. Working out PATH by opening the mount (the call
follows a final symlink) touched it: with `%path` shown, the second call failed too.
"""

import shutil
import subprocess
import sys

import pytest
from sctrace_support import SCTRACE

EXPIRE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for attempt in range(3):
    failed = libc.umount2(sys.argv[1].encode(), 4)  # MNT_EXPIRE
    print("EAGAIN" if failed and ctypes.get_errno() == 11 else failed or "unmounted", flush=True)
    if not failed:
        break
"""


@pytest.mark.skipif(shutil.which("unshare") is None,
                    reason="no unshare(1) to make a mount namespace with")
def test_an_expiring_umount_shown_with_its_path_expires(tmp_path):
    mnt = tmp_path / "m"
    mnt.mkdir()
    log = tmp_path / "log"
    script = 'mount -t tmpfs none "$1" && shift && exec "$@"'
    run = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(mnt),
         *SCTRACE, "-e", "trace=umount2", "--format", "%path = %retval", "-o", str(log),
         "--", sys.executable, "-c", EXPIRE, str(mnt)],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["EAGAIN", "unmounted"]
    assert log.read_text().splitlines() == [f'"{mnt}" = -11', f'"{mnt}" = 0']
