"""A diagnostic is one line of printable text whatever the rule file holds: rule-file text
it quotes (macro arguments, rule names, a bad escape, the file name) has its control
characters and undecodable bytes escaped.  `ipaddr("\\x1b[31m...\\n/etc/shadow:1:1: ...")`
used to print a terminal escape and forge a second error line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syscalltrack.rules import RuleError, load_rules
from syscalltrack.rules.errors import printable
from syscalltrack.rules.printer import quote

SCT = [sys.executable, "-m", "syscalltrack.cli.sct"]
FORGED = b"\x1b[31mRED\x1b[0m\n/etc/shadow:1:1: error: fake"


def connect_rule(filter_: str, name: str = "r") -> str:
    return (f"rule {{\nsyscall_name = connect\nrule_name = {name}\nfilter_expression "
            f"{{{filter_}}}\naction {{ type = LOG }}\n}}\n")


def one_printable_line(error: RuleError) -> None:
    for diag in error.diagnostics:
        assert diag.message.isprintable()
        assert str(diag).isprintable()
    assert len(str(error).splitlines()) == len(error.diagnostics)


def refused(text: str, filename: str = "f.rules") -> RuleError:
    with pytest.raises(RuleError) as exc:
        load_rules(text, filename)
    one_printable_line(exc.value)
    return exc.value


def test_a_forged_error_line_stays_inside_its_message():
    error = refused(connect_rule(f"PARAMS[2].sin_addr == ipaddr({quote(FORGED)})"))
    (diag,) = error.diagnostics
    assert str(diag).startswith("f.rules:4:49: error: invalid IPv4 address '\\x1b[31mRED")
    assert "\\n/etc/shadow:1:1: error: fake' in ipaddr(" in str(diag)


@pytest.mark.parametrize("func", ["usernametoid", "groupnametoid", "ipaddr"])
@given(name=st.binary(min_size=1, max_size=12))
def test_macro_arguments_are_escaped(func, name):
    literal = quote(b"\0" + name)
    text = connect_rule(f"UID == {func}({literal})")
    error = refused(text)
    assert "\\x00" in error.diagnostics[0].message


def test_nul_in_a_user_name():
    error = refused(connect_rule('UID == usernametoid("ro\\x00ot")'))
    assert error.diagnostics[0].message == \
        "unknown user 'ro\\x00ot' in usernametoid(\"ro\\x00ot\")"


@given(st.text(st.characters(blacklist_characters="\n#"), min_size=1, max_size=20))
def test_rule_names_in_messages_are_escaped(name):
    text = f"rule {{\nrule_name = x{name}\naction {{ type = LOG }}\n}}\n"
    error = refused(text)
    assert error.diagnostics[0].message.startswith(f"rule '{printable(('x' + name).strip())}'")


def test_an_unknown_escape_of_a_control_character():
    error = refused(connect_rule('COMM == "\\\x1b"'))
    assert error.diagnostics[0].message == "unknown escape '\\\\x1b' in string"


def test_file_names_are_escaped():
    error = refused(connect_rule("NOPE"), "a\nb\x1b.rules")
    assert str(error).startswith("a\\nb\\x1b.rules:4:20: error: unknown constant 'NOPE'")


def test_non_utf8_bytes_show_as_hex():
    assert printable("r\udcffo\u202e\x7f") == "r\\xffo\\u202e\\x7f"
    assert printable("jürgen \\x41") == "jürgen \\x41"


def test_sct_check_prints_one_line(tmp_path):
    path = tmp_path / "forged.rules"
    path.write_text(connect_rule(f"PARAMS[2].sin_addr == ipaddr({quote(FORGED)})"))
    done = subprocess.run([*SCT, "check", str(path)], capture_output=True, text=True)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and done.stderr.rstrip("\n").isprintable()
    assert "\x1b" not in done.stderr
