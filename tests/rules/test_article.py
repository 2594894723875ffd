"""The article's three rules, exactly as printed there, and its first-match scenario."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from syscalltrack.rules import ActionType, When, check_rules, load_rules, parse, rules_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "article.rules"
# shared/ lies beside the checkout (in CI too, beside the fresh clone).
ARTICLE = Path(__file__).resolve().parents[3] / "shared" / "seed" / "syscalltrack-article.txt"


def article_blocks(text: str) -> list[str]:
    """The rule blocks of the article: from a line `rule` followed by `{` to the matching `}`."""
    lines = text.split("\n")
    blocks, i = [], 0
    while i < len(lines):
        if lines[i] == "rule" and i + 1 < len(lines) and lines[i + 1] == "{":
            depth, j = 0, i
            while True:
                depth += lines[j].count("{") - lines[j].count("}")
                if depth == 0 and j > i:
                    break
                j += 1
            blocks.append("\n".join(lines[i:j + 1]) + "\n")
            i = j + 1
        else:
            i += 1
    return blocks


def test_example_file_is_the_articles_blocks_in_order():
    blocks = article_blocks(EXAMPLE.read_text())
    assert [check_rules(b)[0].name for b in blocks] == [
        "unlink_rule1", "prevent_delete", "ptrace_rule1"]
    if ARTICLE.exists():
        assert blocks == article_blocks(ARTICLE.read_text())


@pytest.mark.skipif(not ARTICLE.exists(), reason="the article is not on this machine")
@pytest.mark.parametrize("index", range(3))
def test_each_article_block_parses_byte_for_byte(index):
    block = article_blocks(ARTICLE.read_text())[index]
    (rule,) = check_rules(block, "try.conf")
    assert check_rules(rules_text([rule])) == (rule,)


def test_article_rules_mean_what_the_article_says():
    unlink_log, prevent, ptrace_log = load_rules(EXAMPLE)
    assert (unlink_log.syscall, unlink_log.when, unlink_log.action.type) == (
        "unlink", When.BEFORE, ActionType.LOG)
    assert unlink_log.action.log_format == "%comm : %params delete by %euid --> %suid"
    assert prevent.action.type is ActionType.FAIL
    assert prevent.action.error_code.value == -1  # -EPERM, "operation not permitted"
    assert ptrace_log.syscall == "ptrace"
    assert ptrace_log.action.log_format == "%comm : %params issued ptrace by %euid --> %suid"


def test_printed_rules_parse_back_equal():
    rules = load_rules(EXAMPLE).rules
    text = rules_text(rules)
    assert check_rules(text) == rules
    assert rules_text(check_rules(text)) == text
    assert parse(EXAMPLE.read_text()).rules == rules


def test_when_defaults_to_before():
    (rule,) = check_rules("rule {\nsyscall_name = unlink\nrule_name = r\naction { type = LOG }\n}")
    assert rule.when is When.BEFORE


@dataclass
class Call:
    """A context for the article's `rm -f /etc/passwd` as root."""

    filename: bytes
    uid: int = 0
    euid: int = 0
    suid: int = 0
    gid: int = 0
    egid: int = 0
    sgid: int = 0
    pid: int = 876
    ppid: int = 1
    tid: int = 876
    comm: bytes = b"rm"
    cwd: bytes | None = b"/tmp"
    retval: int | None = None

    def arg(self, index):
        raise AssertionError("unlink has no integer argument")

    def string(self, index):
        return self.filename

    def path(self, index):
        return self.filename if self.filename.startswith(b"/") else self.cwd + b"/" + self.filename

    def path_last(self, index):
        return self.filename.rpartition(b"/")[2]


def _blocks_in(order: list[str]) -> str:
    by_name = {check_rules(b)[0].name: b for b in article_blocks(EXAMPLE.read_text())}
    return "\n".join(by_name[name] for name in order)


@pytest.mark.parametrize("syscall", ["unlink", "unlinkat"])
def test_prevent_delete_first_fails_the_call(syscall):
    rules = load_rules(_blocks_in(["prevent_delete", "unlink_rule1"]))
    match = rules.first_match(syscall, "before", lambda variant: Call(b"/etc/passwd"))
    assert match.rule.rule.name == "prevent_delete"
    assert match.rule.rule.action.type is ActionType.FAIL


@pytest.mark.parametrize("syscall", ["unlink", "unlinkat"])
def test_unlink_rule1_first_only_logs(syscall):
    rules = load_rules(_blocks_in(["unlink_rule1", "prevent_delete"]))
    match = rules.first_match(syscall, "before", lambda variant: Call(b"/etc/passwd"))
    assert match.rule.rule.name == "unlink_rule1"
    assert match.rule.rule.action.type is ActionType.LOG


def test_prevent_delete_lets_other_files_and_users_through():
    rules = load_rules(_blocks_in(["prevent_delete"]))
    assert rules.first_match("unlink", "before", lambda v: Call(b"./dummy")) is None
    assert rules.first_match("unlink", "before", lambda v: Call(b"/etc/passwd", uid=500)) is None
