"""The feature probe answers by trying; on the project's machines the truth is in
docs kernel-notes.md. Where a capability may legitimately differ between kernels the
test checks consistency with an independent fact instead of a fixed answer."""

import os

import pytest

from syscalltrack.bpf import features
from syscalltrack.bpf.link import KPROBE_PMU

pytestmark = pytest.mark.usefixtures("root")


@pytest.fixture(scope="module")
def found() -> features.Features:
    return features.probe()


def test_what_the_engine_needs_is_there(found):
    for probe in (found.program_types["tracepoint"], found.program_types["raw_tracepoint"],
                  found.map_types["ringbuf"], found.map_types["hash"],
                  found.helpers["probe_read_user_str"], found.helpers["ringbuf_output"],
                  found.helpers["send_signal"], found.attach["syscall_tracepoint"],
                  found.attach["raw_tracepoint"]):
        assert probe, probe.reason


def test_kprobe_override_follows_the_kprobe_pmu(found):
    override = found.syscall_override["kprobe_override_return"]
    if not os.path.exists(KPROBE_PMU):
        assert not override
        assert not found.attach["kprobe"]
        assert f"no kprobe PMU at {KPROBE_PMU}" in override.reason


def test_refusals_carry_errno_and_meaning(found):
    for group in (found.program_types, found.attach, found.syscall_override, found.helpers):
        for name, probe in group.items():
            assert probe.supported or probe.reason, name
    if not found.program_types["fmod_ret"]:
        assert not found.syscall_override["fmod_ret"]
        assert found.syscall_override["fmod_ret"].reason.startswith("load a fmod_ret program")


def test_unknown_helper_for_a_type_is_no(found):
    """override_return exists only for kprobes (and only with CONFIG_BPF_KPROBE_OVERRIDE)."""
    probe = features.have_helper("override_return", "tracepoint")
    assert not probe
    assert "cannot use helper" in probe.reason


def test_render_lists_every_probe(found):
    text = found.render()
    assert "ways to change a syscall's result:" in text
    assert text.count("\n") >= len(found.program_types) + len(found.helpers)
    assert features.probe() is found  # cached


def test_sct_probe_as_non_root_says_it_needs_root_instead_of_blaming_the_kernel():
    """As another user every load fails with EPERM: probing would report a kernel that
    allows nothing. The answer is a request to run it as root, status 1."""
    import subprocess
    import sys

    done = subprocess.run(
        # Imports first: the interpreter lives under /root (0700), closed to nobody.
        [sys.executable, "-c", "import os, sys; from syscalltrack.cli.sct import main; "
         "os.setgroups([]); os.setresgid(65534, 65534, 65534); "
         "os.setresuid(65534, 65534, 65534); sys.exit(main(['probe']))"],
        capture_output=True, text=True)
    assert done.returncode == 1, done
    assert done.stderr.startswith("sct probe: run it as root"), done.stderr
    assert "as uid 65534" in done.stderr and done.stdout == ""
