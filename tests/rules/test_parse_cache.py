"""The parsed-file cache: a rule file parsed before comes back without lark, equal to a
fresh parse; errors are never cached; an unsafe or corrupt cache is not trusted."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from syscalltrack.rules import RuleError, source
from syscalltrack.rules.parser import parse as lark_parse

RULES = """rule
{
syscall_name = connect
rule_name = c
filter_expression {PARAMS[2].port == 443 && COMM ~= "curl"}
action
{
type = LOG
log_format {%comm %params}
}
}
"""
CHECK = ("import sys\n"
         "from syscalltrack.rules import load_rules\n"
         "rules = load_rules(sys.stdin.read(), 'f.rules')\n"
         "print('lark' in sys.modules, rules.text() == sys.argv[1])\n")


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    source.cache_dir.cache_clear()
    yield home
    source.cache_dir.cache_clear()


def run_check(text: str, expected: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK, expected], input=text, text=True,
                          capture_output=True, check=True, env=os.environ.copy())
    return done.stdout.strip()


def test_a_file_parsed_before_comes_back_without_lark(cache_home):
    expected = lark_parse(RULES, "f.rules")
    text = source.parse(RULES, "f.rules")
    assert text == expected and [p.name for p in (cache_home / "syscalltrack").iterdir()
                                 if p.name.startswith("rules-ast-")]
    from syscalltrack.rules import load_rules
    canonical = load_rules(RULES, "f.rules").text()
    assert run_check(RULES, canonical) == "False True"  # lark never imported
    assert run_check(RULES.replace("443", "444"), canonical.replace("443", "444")) \
        == "True True"  # a new text: parsed by lark


def test_errors_are_never_cached(cache_home):
    bad = RULES.replace("rule_name = c\n", "rule_name = c\ncolour = blue\n")
    for _ in range(2):
        with pytest.raises(RuleError, match="colour"):
            source.parse(bad, "f.rules")
    assert not [p for p in (cache_home / "syscalltrack").iterdir()
                if p.name.startswith("rules-ast-")]


def test_a_cache_others_may_write_is_not_used(cache_home):
    directory = cache_home / "syscalltrack"
    directory.mkdir(parents=True, mode=0o700)
    directory.chmod(0o777)
    assert source.cache_dir() is None
    assert source.parse(RULES, "f.rules") == lark_parse(RULES, "f.rules")
    assert not list(directory.iterdir())


def test_a_corrupt_entry_is_parsed_again(cache_home):
    source.parse(RULES, "f.rules")
    (entry,) = (cache_home / "syscalltrack").glob("rules-ast-*")
    entry.write_bytes(b"not a pickle")
    assert source.parse(RULES, "f.rules") == lark_parse(RULES, "f.rules")
