"""`==`, `!=`, `startswith` and `in` against short literals are compiled to a length
test and word compares (no automaton): the kernel agrees with Python on every length
around the word size and the 64-byte limit, on a byte changed anywhere, on strings one
byte short or long, and on bytes with the high bit set. Literals past the limit take
the automaton; both give the same answers."""

import os

import pytest
from systemwide_support import Bench, rule

from syscalltrack.engines.systemwide import codegen

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf() loads")

LENGTHS = (0, 1, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 80)


def literal(data: bytes) -> str:
    return '"' + "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else f"\\x{b:02x}"
                         for b in data) + '"'


def sample(n: int) -> bytes:
    """n bytes that differ word to word, some with the high bit set."""
    return bytes((37 * i + 65) % 256 or 1 for i in range(n))


def candidates(lit: bytes) -> list[bytes]:
    out = [lit, lit[:-1], lit + b"x", lit + b"\xff" * 9, b"", b"/", b"x" * 200]
    for i in range(0, len(lit), 3):  # one byte changed, at every third position
        out.append(lit[:i] + bytes([lit[i] ^ 0x80 or 1]) + lit[i + 1:])
    return out


@pytest.mark.parametrize("n", LENGTHS)
def test_equal_prefix_and_not_equal_agree_with_python(n):
    lit = sample(n)
    text = (rule("eq", "unlink", f"PARAMS[1] == {literal(lit)}")
            + rule("prefix", "unlink", f"PARAMS[1] startswith {literal(lit)}")
            + rule("ne", "unlink", f"PARAMS[1] != {literal(lit)}"))
    with Bench(text) as bench:
        for s in candidates(lit):
            expected = 0 if s == lit else 1 if s.startswith(lit) else 2
            out = bench.run("unlinkat", [-100, s, 0])
            assert (out.rule, out.undecided) == (expected, False), (n, s)


def test_in_agrees_with_python_and_the_automaton_takes_over_past_the_limits():
    items = [sample(3), sample(8), sample(20), b"/etc/passwd"]
    text = rule("in", "unlink", f"PARAMS[1] in ({', '.join(map(literal, items))})")
    with Bench(text) as bench:
        for s in [x for item in items for x in candidates(item)]:
            out = bench.run("unlinkat", [-100, s, 0])
            assert (out.rule, out.undecided) == (0 if s in items else None, False), s
    # How each test is compiled: words for short literals, the automaton beyond.
    long = sample(codegen.DIRECT_MAX + 1)
    many = [sample(i + 1) for i in range(codegen.DIRECT_ITEMS + 1)]
    for filt, automaton in ((f"PARAMS[1] == {literal(sample(codegen.DIRECT_MAX))}", False),
                            (f"PARAMS[1] == {literal(long)}", True),
                            (f"PARAMS[1] in ({', '.join(map(literal, many))})", True),
                            ('PARAMS[1] endswith "x"', True)):
        with Bench(rule("r", "unlink", filt)) as bench:
            assert bool(bench.plan.dfa_tables) == automaton, filt
