"""sctrace --spin: how long to poll for the next stop changes nothing but speed."""

import pytest
from sctrace_support import rule, sctrace


@pytest.mark.parametrize("spin", ["0", "50", "1000"])
def test_sctrace_logs_the_same_whatever_it_spins(tmp_path, spin):
    script = ("import os, sys\nfor i in range(200):\n"
              "    open(sys.argv[1], 'w').close()\n    os.unlink(sys.argv[1])\n")
    victim = tmp_path / "v"
    run = sctrace(tmp_path, rule("unlink", "type = LOG\nlog_format {%params = %retval}",
                                 when="after"),
                  "python3", "-c", script, str(victim), options=("--spin", spin))
    assert run.code == 0, run.err
    assert run.log == [f'"{victim}" = 0'] * 200


def test_sctrace_refuses_a_negative_spin(tmp_path):
    run = sctrace(tmp_path, None, "true", options=("--spin", "-1"))
    assert run.code == 2
    assert "0 to 1000000" in run.err + "".join(run.notices)
