"""With a window of 64 bytes, a literal of 63 or 64 bytes is not compared word by word:
a string cut at the window could look equal to it (`==` matched a longer string) or too
short for it (`startswith` said no instead of undecided)."""

import os

import pytest
from systemwide_support import Bench, rule

from syscalltrack.engines.systemwide import codegen

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf() loads")


@pytest.fixture(autouse=True)
def small_records(monkeypatch):
    """Bench leaves record_string at 256, more than a 64-byte window allows."""
    generate = codegen.generate
    monkeypatch.setattr(codegen, "generate",
                        lambda ruleset, **kw: generate(ruleset, record_string=64, **kw))


def test_a_string_cut_at_the_window_is_not_equal_to_a_literal_as_long():
    lit = "a" * 63
    text = rule("eq", "unlink", f'PARAMS[1] == "{lit}"') + rule(
        "in", "unlink", f'PARAMS[1] in ("{lit}", "x")')
    with Bench(text, window=64) as bench:
        out = bench.run("unlinkat", [-100, lit.encode() + b"bbbb", 0])
        assert out.rule is None or out.undecided
        assert bench.run("unlinkat", [-100, b"a" * 62, 0]).rule is None


def test_startswith_a_literal_as_long_as_the_window_is_undecided_on_a_cut_string():
    text = rule("prefix", "unlink", f'PARAMS[1] startswith "{"a" * 64}"')
    with Bench(text, window=64) as bench:
        out = bench.run("unlinkat", [-100, b"a" * 80, 0])
        assert (out.rule, out.undecided) == (0, True)
        assert bench.run("unlinkat", [-100, b"b" * 80, 0]).rule is None
