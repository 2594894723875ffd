"""The daemon's start-up checks leave no parsed kernel BTF in the daemon.

tp_btf's probe loads a program against the kernel's BTF; parsed in the daemon itself,
that BTF (~25 MB of Python objects) stayed for good: an idle daemon took 70 MB instead
of 45. Every kernel fact is worked out in a child (bpf.isolate), the start-up checks too.
"""

import os
import subprocess
import sys

import pytest

CHECK = """
from syscalltrack.bpf import btf
from syscalltrack.daemon import server
server.preflight(compat=True)
print(btf.vmlinux.cache_info().currsize)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the preflight refuses non-root first")
def test_the_preflight_parses_no_btf_in_the_daemon():
    run = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0"]
