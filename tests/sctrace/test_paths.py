"""Paths as the kernel will use them: a classic rule's PARAMS through a real dirfd, and
PATH[n] through symlinked directories and `..` (review findings: both were ways around
a FAIL rule)."""

import os

from sctrace_support import rule, sctrace

PYTHON_UNLINK_AT = ("import os, sys; d = os.open(sys.argv[1], os.O_RDONLY); "
                    "os.unlink(sys.argv[2], dir_fd=d); print('deleted')")


def deny(filter_: str) -> str:
    return rule("unlink", "type = FAIL\nerror_code = -1", "deny", filter_)


def test_rm_r_cannot_delete_a_file_a_params_rule_protects(tmp_path):
    """`rm -r` unlinks `passwd` relative to the directory it opened: the article's
    prevent_delete rule (on PARAMS[1], not PATH) must still see /.../etc/passwd."""
    etc = tmp_path / "etc"
    (etc / "sub").mkdir(parents=True)
    (etc / "passwd").write_text("root\n")
    (etc / "other").touch()
    run = sctrace(tmp_path, deny(f'PARAMS[1] == "{etc}/passwd"'), "rm", "-rf", str(etc))
    assert (etc / "passwd").exists()
    assert not (etc / "other").exists() and not (etc / "sub").exists()
    assert "Operation not permitted" in run.err


def test_params_of_a_classic_rule_show_the_path_joined_to_the_dirfd(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").touch()
    rules = rule("unlink", "type = LOG\nlog_format {%sname %params}", "log")
    run = sctrace(tmp_path, rules, "python3", "-c", PYTHON_UNLINK_AT, str(tmp_path / "d"), "f")
    assert run.out == "deleted\n"
    assert run.log == [f'unlinkat "{tmp_path}/d/f"']


def test_path_follows_symlinked_directories(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "passwd").touch()
    os.symlink(real, tmp_path / "link")
    (tmp_path / "deep").mkdir()
    rules = deny(f'PATH[1] == "{real}/passwd"')
    for path in ("link/passwd", "deep/../link/passwd", f"{tmp_path}/link/./passwd"):
        run = sctrace(tmp_path, rules, "rm", "-f", path, cwd=tmp_path)
        assert (real / "passwd").exists(), path
        assert "Operation not permitted" in run.err, path


def test_path_keeps_the_last_component_a_symlink_names(tmp_path):
    """unlink removes the symlink itself, not its target: PATH names the link."""
    (tmp_path / "target").touch()
    os.symlink(tmp_path / "target", tmp_path / "alias")
    rules = deny(f'PATH[1] == "{tmp_path}/target"')
    run = sctrace(tmp_path, rules, "rm", "-f", "alias", cwd=tmp_path)
    assert run.code == 0 and not (tmp_path / "alias").is_symlink()
    assert (tmp_path / "target").exists()


def test_path_through_a_dirfd_and_a_missing_directory(tmp_path):
    """A real dirfd resolves as the kernel does; a directory that does not exist (the
    call fails with ENOENT) still gives a normalised absolute path."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").touch()
    rules = rule("unlinkat", "type = LOG\nlog_format {%path}", "log")
    run = sctrace(tmp_path, rules, "python3", "-c", PYTHON_UNLINK_AT, str(tmp_path / "d"), "f")
    assert run.log == [f'"{tmp_path}/d/f"']
    run = sctrace(tmp_path, rules, "rm", "-f", "nowhere/../x/./y", cwd=tmp_path)
    assert run.log == [f'"{tmp_path}/x/y"']
