"""A kernel whose BTF lacks the raw syscall tracepoints' typedefs: the tp_btf programs
(the default, watching i386 calls too) are refused with the reason and the way out,
and --no-compat still works."""

import dataclasses
import os

import pytest
from systemwide_support import rule

from syscalltrack.bpf import features
from syscalltrack.bpf.features import Probe
from syscalltrack.daemon import server
from syscalltrack.engines.systemwide import codegen, layout
from syscalltrack.rules import load_rules

pytestmark = pytest.mark.skipif(not os.access("/sys/kernel/btf/vmlinux", os.R_OK),
                                reason="the code generator reads this kernel's BTF")
RULES = rule("passwd", "unlink", 'PARAMS[1] == "/etc/passwd"')


def test_without_btf_trace_typedefs_the_default_is_refused_and_no_compat_works(monkeypatch):
    bare = dataclasses.replace(layout.kernel(), tracepoints={})
    monkeypatch.setattr(codegen, "kernel", lambda: bare)
    plan = codegen.generate(load_rules(RULES), compat=False)
    assert {p.attach[0] for p in plan.programs} == {"syscalls"}
    with pytest.raises(OSError, match=r"BTF has no btf_trace_sys_enter.*--no-compat"):
        codegen.generate(load_rules(RULES))


@pytest.mark.skipif(os.geteuid() != 0, reason="the preflight refuses non-root first")
def test_the_daemon_preflight_names_a_refused_tp_btf_only_when_it_needs_it(monkeypatch):
    real = features.have_attach

    def no_tp_btf(name):
        return Probe(False, "tp_btf refused (test)") if name == "tp_btf" else real(name)
    monkeypatch.setattr(features, "have_attach", no_tp_btf)
    with pytest.raises(server.StartupError, match=r"tp_btf refused \(test\).*--no-compat"):
        server.preflight(compat=True)
    server.preflight(compat=False)
