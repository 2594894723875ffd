"""The article's scenario through sctrace, with real commands on the real kernel."""

import shutil
from pathlib import Path

import pytest
from sctrace_support import rule, sctrace

ARTICLE_RULES = Path(__file__).parents[2] / "examples" / "article.rules"
UNLINK_RULE1 = ARTICLE_RULES.read_text().split("\n\n")[0] + "\n"

LOG_RULE = rule("unlink", "type=LOG\nlog_format {%comm : %params delete by %euid --> %suid}",
                "unlink_rule1")


def prevent_delete(path: Path) -> str:
    return rule("unlink", "type = FAIL\nerror_code = -1", "prevent_delete",
                f'PARAMS[1]=="{path}" && UID == 0')


def test_unlink_rule1_logs_the_articles_line(tmp_path):
    (tmp_path / "dummy").touch()
    run = sctrace(tmp_path, UNLINK_RULE1, "rm", "./dummy", cwd=tmp_path)
    assert run.code == 0
    assert run.log == ['"rm" : "./dummy" delete by 0 --> 0']
    assert not (tmp_path / "dummy").exists()


def test_prevent_delete_keeps_the_file(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/sh\n")
    run = sctrace(tmp_path, prevent_delete(passwd), "rm", "-f", str(passwd))
    assert passwd.exists()
    assert run.code == 1
    assert "Operation not permitted" in run.err
    assert run.log == []


def test_prevent_delete_does_not_touch_other_files(tmp_path):
    other = tmp_path / "other"
    other.touch()
    run = sctrace(tmp_path, prevent_delete(tmp_path / "passwd"), "rm", "-f", str(other))
    assert run.code == 0
    assert not other.exists()


def test_first_match_fail_before_log_fails_without_logging(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.touch()
    run = sctrace(tmp_path, prevent_delete(passwd) + LOG_RULE, "rm", "-f", str(passwd))
    assert passwd.exists()
    assert run.log == []


def test_first_match_log_before_fail_logs_and_deletes(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.touch()
    run = sctrace(tmp_path, LOG_RULE + prevent_delete(passwd), "rm", "-f", str(passwd))
    assert not passwd.exists()
    assert run.log == [f'"rm" : "{passwd}" delete by 0 --> 0']


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_ptrace_rule_logs_the_ptrace_calls_of_strace(tmp_path):
    ptrace_rule = ARTICLE_RULES.read_text().split("\n\n")[2]
    run = sctrace(tmp_path, ptrace_rule, "strace", "-o", "/dev/null", "/bin/ls", cwd=tmp_path)
    assert run.log, "no ptrace call was logged"
    for line in run.log:
        assert line.startswith('"strace" : ') and line.endswith(" issued ptrace by 0 --> 0")
        assert len(line.split(" : ")[1].split(" issued")[0].split(", ")) == 4  # 4 arguments
