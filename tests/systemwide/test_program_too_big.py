"""A rule set whose program the kernel will not load is refused with the rules' positions.

Filters of a few hundred string tests on one call generate more than the verifier takes:
PROG_LOAD fails with ENOMEM (E2BIG, ENOSPC). That was a bare BpfError with no rule named
(found by review: 600 `~=` tests, 19,972 instructions); it is a RuleError at each rule's
filter. Driven here with a load that fails as the kernel does, without spending the
verifier's time on a real 20,000-instruction program.
"""

import errno

import pytest

from syscalltrack.bpf.sys import BpfError, Cmd
from syscalltrack.engines.systemwide import SystemwideEngine
from syscalltrack.rules import RuleError, load_rules

RULES = """\
rule
{
syscall_name = unlink
rule_name = many
filter_expression {PARAMS[1] ~= "a" || PARAMS[1] ~= "b"}
action
{
type = LOG
}
when = before
}
"""


@pytest.mark.parametrize("err", [errno.ENOMEM, errno.E2BIG])
def test_a_program_too_big_for_the_kernel_names_its_rules(monkeypatch, err):
    engine = SystemwideEngine(load_rules(RULES, filename="big.conf"))

    def refuse(*args, **kwargs):
        raise BpfError(err, Cmd.PROG_LOAD, "BPF program is too large")

    monkeypatch.setattr(engine, "_load", refuse)
    with pytest.raises(RuleError) as caught:
        engine.load()
    text = str(caught.value)
    assert text.startswith("big.conf:5:20: error: rule 'many': the kernel refused the "
                           "program for x86_64:unlink (before)"), text
    assert errno.errorcode[err] in text and "use fewer string tests" in text
    assert not engine.loaded  # nothing stays behind


def test_other_load_errors_stay_what_they_are(monkeypatch):
    engine = SystemwideEngine(load_rules(RULES, filename="big.conf"))

    def refuse(*args, **kwargs):
        raise BpfError(errno.EACCES, Cmd.PROG_LOAD, "R1 invalid mem access")

    monkeypatch.setattr(engine, "_load", refuse)
    with pytest.raises(BpfError, match="EACCES"):
        engine.load()
