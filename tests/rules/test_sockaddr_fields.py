"""Socket address fields in filters: `PARAMS[2].port`, `.addr`, `.family`, `.sin_port`,
`.sin_addr` -- parsed, printed, type-checked, and evaluated with absent-field semantics."""

from __future__ import annotations

import pytest

from syscalltrack.events import Event, SockAddr
from syscalltrack.rules import RuleError, load_rules
from syscalltrack.rules.compile import compile_filter
from syscalltrack.syscalls import X86_64, table

CONNECT = table().by_name("connect", X86_64)
INET = SockAddr.decode(bytes([2, 0, 0x01, 0xBB, 127, 0, 0, 1]) + bytes(8))  # 127.0.0.1:443
INET6 = SockAddr.decode(bytes([10, 0, 0, 80]) + bytes(4) + bytes(15) + b"\x01" + bytes(4))
UNIX = SockAddr.decode(b"\x01\x00/run/x.sock\x00")


def connect_rule(filter_: str, syscall: str = "connect") -> str:
    return (f"rule\n{{\nsyscall_name = {syscall}\nrule_name = c\n"
            f"filter_expression {{{filter_}}}\naction {{\ntype = LOG\n}}\n}}\n")


def matches(filter_: str, address: SockAddr | None) -> bool:
    rule = load_rules(connect_rule(filter_)).rules[0]
    event = Event(X86_64, CONNECT.nr, "connect", CONNECT.args, (3, 0x1000, 16),
                  (3, address, 16), 1, 1, 1, 0, 0, 0, 0, 0, 0, b"c", 0)
    return compile_filter(rule.filter, CONNECT.args).evaluate(event)


@pytest.mark.parametrize(("filter_", "inet", "inet6", "unix", "null"), [
    ("PARAMS[2].port == 443", True, False, False, False),
    ("443 == PARAMS[2].port", True, False, False, False),
    ("PARAMS[2].port != 443", False, True, True, True),  # != is !(==): true when absent
    ("PARAMS[2].port < 1024", True, True, False, False),
    ("PARAMS[2].port in (80, 443)", True, True, False, False),
    ("PARAMS[2].port", True, True, False, False),
    ("!PARAMS[2].port", False, False, True, True),
    ("PARAMS[2].family == AF_INET6", False, True, False, False),
    ('PARAMS[2].addr == "127.0.0.1"', True, False, False, False),
    ('PARAMS[2].addr == "::1"', False, True, False, False),
    ('PARAMS[2].addr startswith "/run/"', False, False, True, False),
    ('PARAMS[2].addr != "127.0.0.1"', False, True, True, True),
    ('PARAMS[2].sin_addr == ipaddr("127.0.0.1") && PARAMS[2].sin_port == htons(443)',
     True, False, False, False),
    ("PARAMS[2].sin_port == htons(80)", False, True, False, False),
])
def test_fields_evaluate_with_absent_semantics(filter_, inet, inet6, unix, null):
    got = [matches(filter_, a) for a in (INET, INET6, UNIX, None)]
    assert got == [inet, inet6, unix, null]


def test_fields_print_and_parse_back():
    text = connect_rule('PARAMS[2].port in (80, 443) && !(PARAMS[2].addr startswith "10.")')
    rules = load_rules(text)
    assert "PARAMS[2].port in (80, 443) && !(PARAMS[2].addr startswith \"10.\")" in rules.text()
    assert load_rules(rules.text()).rules == rules.rules


def test_a_field_filter_is_read_from_memory_not_from_registers():
    rule = load_rules(connect_rule("PARAMS[2].port == 22")).rules[0]
    compiled = compile_filter(rule.filter, CONNECT.args)
    assert not compiled.integer_only and compiled.strings == {1}


@pytest.mark.parametrize(("filter_", "syscall", "message"), [
    ("PARAMS[1].port == 1", "connect",
     "5:20: error: PARAMS[1].port: only socket address arguments have fields, and argument "
     "1 of connect is int fd"),
    ("PARAMS[1].port == 1", "unlink", "argument 1 of unlink is const char *pathname"),
    ("PARAMS[2].prot == 1", "connect",
     "a socket address has no field 'prot'; its fields are family, port, addr, sin_port, "
     "sin_addr"),
    ("PARAMS[2].port + 1 == 2", "connect", "PARAMS[2].port can only be compared, not used "
                                           "in '+'"),
    ("-PARAMS[2].port == 1", "connect", "PARAMS[2].port can only be compared"),
    ("PARAMS[2].addr == 5", "connect", "cannot compare string PARAMS[2].addr with integer 5"),
    ("PATH[2].port == 1", "connect", "PATH[2].port: only socket address arguments"),
    ("PARAMS[2].port == 1", "accept", "PARAMS[2].port: accept fills this address in during "
                                      "the call"),
])
def test_fields_are_type_checked_with_positions(filter_, syscall, message):
    with pytest.raises(RuleError) as caught:
        load_rules(connect_rule(filter_, syscall))
    assert message in str(caught.value)
