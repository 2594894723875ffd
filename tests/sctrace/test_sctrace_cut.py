"""sctrace reads strings up to 4096 bytes; a longer one is flagged as cut."""

import json
import sys

from sctrace_support import rule, sctrace

from syscalltrack.events import Cut, from_json

PYTHON = sys.executable


def test_a_path_longer_than_sctrace_reads_is_flagged_as_cut(tmp_path):
    long = f"{tmp_path}/" + "x" * 5000  # the kernel refuses it (ENAMETOOLONG) after the rule
    short = f"{tmp_path}/absent"
    code = ("import os, sys\nfor p in sys.argv[1:]:\n"
            "    try:\n        os.unlink(p)\n    except OSError as e:\n        print(e.errno)\n")
    rules = rule("unlink", "type = LOG", filter_=f'PARAMS[1] startswith "{tmp_path}/"')
    run = sctrace(tmp_path, rules, PYTHON, "-c", code, long, short, options=["--json"])
    assert run.out == "36\n2\n"
    cut, whole = (json.loads(line)["args"][0] for line in run.log)
    assert cut["value"] == long[:4096] and cut["cut"] is True
    assert whole["value"] == short and "cut" not in whole
    assert from_json(run.log[0]).values[0].__class__ is Cut
