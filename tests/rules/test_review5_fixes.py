"""Defects found in session 5's review, each with the input that showed it."""

import os

import pytest

from syscalltrack.rules import RuleError, check_rules, load_rules


def rule(filt: str, name: str = "r", syscall: str = "openat") -> str:
    return (f"rule\n{{\n    syscall_name = {syscall}\n    rule_name = {name}\n"
            f"    filter_expression {{{filt}}}\n    action {{ type = LOG }}\n}}\n")


def test_a_rule_name_holding_nul_is_checked_not_crashed_on():
    (checked,) = check_rules(rule("PARAMS[3] == 1", name="\0odd"))
    assert checked.name == "\0odd"


def test_a_filter_is_located_at_its_first_operand_not_at_a_middle_operator():
    """The parser balances a chain, so its root operator sits mid-way: diagnostics about
    the whole filter point where its text begins."""
    text = rule(" || ".join(f"PARAMS[3] == {i}" for i in range(1, 41)))
    (rule_,) = load_rules(text).rules
    pos = rule_.pos_of("filter_expression")
    assert (pos.line, pos.col) == (5, text.splitlines()[4].index("PARAMS") + 1)
    text = rule("PID in (1, 2) || PID == 3")
    pos = load_rules(text).rules[0].pos_of("filter_expression")
    assert (pos.line, pos.col) == (5, text.splitlines()[4].index("PID") + 1)


@pytest.mark.skipif(not os.access("/sys/kernel/btf/vmlinux", os.R_OK),
                    reason="the code generator reads this kernel's BTF")
def test_a_filter_too_long_for_the_kernels_jumps_is_refused_with_its_position():
    from syscalltrack.engines.systemwide import codegen

    chain = " || ".join(f'PARAMS[2] == "/tmp/some/dir/file{i}"' for i in range(1800))
    text = rule(chain)
    with pytest.raises(RuleError) as exc:
        codegen.generate(load_rules(text))
    (diag,) = exc.value.diagnostics
    assert (diag.line, diag.col) == (5, text.splitlines()[4].index("PARAMS") + 1)
    assert "too long for the kernel's jumps" in diag.message
    assert "use sctrace" in diag.message


@pytest.mark.skipif(not os.access("/sys/kernel/btf/vmlinux", os.R_OK),
                    reason="the code generator reads this kernel's BTF")
def test_too_many_rules_on_one_call_are_refused_as_such_once():
    from syscalltrack.engines.systemwide import codegen

    text = "".join(rule(f'PARAMS[1] == "/tmp/some/dir/file{i}"', name=f"r{i}",
                        syscall="unlink") for i in range(2500))
    with pytest.raises(RuleError) as exc:
        codegen.generate(load_rules(text))
    (diag,) = exc.value.diagnostics  # once, though unlink has an i386 program too
    assert diag.message.startswith("rule 'r0': the 2500 rules on unlink compile to ")
    assert "instructions together, too long for the kernel's jumps (32767)" in diag.message
