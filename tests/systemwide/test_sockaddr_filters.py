"""Socket address fields compiled to bytecode agree with the Python evaluator, for each
family and for absent addresses, run in the kernel with BPF_PROG_TEST_RUN."""

from __future__ import annotations

import os

import pytest
from systemwide_support import Bench, rule

from syscalltrack.engines.systemwide import SystemwideEngine
from syscalltrack.events import Event, SockAddr
from syscalltrack.rules import RuleError, load_rules
from syscalltrack.rules.compile import compile_filter
from syscalltrack.syscalls import X86_64, table

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf()")

CONNECT = table().by_name("connect", X86_64)
ADDRESSES = {
    "inet": bytes([2, 0, 0x01, 0xBB, 127, 0, 0, 1]) + bytes(8),  # 127.0.0.1:443
    "inet6": bytes([10, 0, 0, 80]) + bytes(4) + bytes(15) + b"\x01" + bytes(4),  # [::1]:80
    "unix": b"\x01\x00/run/x.sock\x00",
    "short inet": bytes([2, 0, 0x01]),  # addrlen 3: the port is cut
    "null": None,
}
FILTERS = [
    "PARAMS[2].port == 443", "443 == PARAMS[2].port", "PARAMS[2].port != 443",
    "PARAMS[2].port < 1024", "PARAMS[2].port >= 80", "PARAMS[2].port in (80, 443)",
    "PARAMS[2].port", "!PARAMS[2].port", "PARAMS[2].family == AF_INET6",
    "PARAMS[2].family != AF_UNIX", "PARAMS[2].sin_port == htons(80)",
    'PARAMS[2].sin_addr == ipaddr("127.0.0.1") && PARAMS[2].sin_port == htons(443)',
    'PARAMS[2].sin_addr != ipaddr("10.0.0.1")',
]


def python_says(filter_: str, raw: bytes | None) -> bool:
    bound = load_rules(rule("r", "connect", filter_)).rules[0]
    address = None if raw is None else SockAddr.decode(raw)
    event = Event(X86_64, CONNECT.nr, "connect", CONNECT.args, (3, 0x1000, 16),
                  (3, address, len(raw or b"")), 1, 1, 1, 0, 0, 0, 0, 0, 0, b"c", 0)
    return compile_filter(bound.filter, CONNECT.args).evaluate(event)


@pytest.mark.parametrize("filter_", FILTERS)
@pytest.mark.parametrize("abi", ["x86_64", "i386"])
def test_kernel_and_python_agree_on_socket_address_fields(filter_, abi):
    with Bench(rule("r", "connect", filter_)) as bench:
        for name, raw in ADDRESSES.items():
            # the Bench passes bytes by pointer; their length goes in addrlen
            outcome = bench.run("connect", [3, raw, len(raw) if raw else 0], abi=abi)
            assert not outcome.undecided, name
            assert (outcome.rule == 0) == python_says(filter_, raw), (name, filter_)


@pytest.mark.parametrize(("filter_", "why"), [
    ('PARAMS[2].addr == "127.0.0.1"', "compares socket addresses as numbers only"),
    ("PARAMS[2].port == PARAMS[3]", "compares a socket address field with something read"),
])
def test_what_the_kernel_cannot_compare_is_refused_with_position(filter_, why):
    with pytest.raises(RuleError) as err:
        SystemwideEngine(load_rules(rule("r", "connect", filter_), filename="x.rules"))
    (diag,) = err.value.diagnostics
    assert str(diag).startswith("x.rules:4:") and why in str(diag)
