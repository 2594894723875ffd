"""A PATH filter rules a literal out by the name's last component before resolving it.

`rm -r` of a tree under a rule on one file resolves nothing for the files whose
name cannot be it; a call that follows a final symlink (open), or a name ending in
`/`, `.` or `..`, is still resolved, as is every name that could match.
"""

import pytest

from syscalltrack.engines.sctrace.context import CallShape, CallView
from syscalltrack.ptrace import Syscall
from syscalltrack.rules import check_rules, compile_filter
from syscalltrack.syscalls import table, variants_of

O_RDONLY, O_NOFOLLOW = 0, 0o400000


class Memory:
    def __init__(self, name: bytes):
        self.name = name

    def read_string(self, addr, limit):
        return self.name, False


class Task:
    """The caller's /proc view: every directory is under /real."""

    def __init__(self):
        self.resolved = 0

    def real_directory(self, link, head, jail=False):
        self.resolved += 1
        return b"/real/" + head.lstrip(b"/")

    def real_file(self, link, path, jail=False):
        self.resolved += 1
        return b"/real/target"

    def root(self):
        return b"/"


def view(syscall: str, name: bytes, *registers: int) -> tuple[CallView, Task]:
    sc = table().by_name(syscall)
    task = Task()
    path_register = 0 if syscall in ("unlink", "open") else 1
    raw = [0] * 6
    raw[path_register] = 0x1000
    for i, value in enumerate(registers, start=path_register + 1):
        raw[i] = value
    call = Syscall(1, 1, "x86_64", 0, sc.nr, tuple(raw), 0, 0, "seccomp", Memory(name), task)
    return CallView(call, CallShape(sc, sc.args, None)), task


def compiled(expr: str, syscall: str):
    (rule,) = check_rules(f"rule\n{{\nsyscall_name = {syscall}\nrule_name = r\n"
                          f"filter_expression {{{expr}}}\naction {{ type = LOG }}\n}}\n")
    return compile_filter(rule.filter, table().lookup(syscall).args)


@pytest.mark.parametrize("expr, expected", [
    ('PATH[1] == "/etc/keep"', False),
    ('PATH[1] != "/etc/keep"', True),
    ('PATH[1] in ("/etc/keep", "/etc/other")', False),
    ('!(PATH[1] in ("/etc/keep"))', True),
])
def test_a_name_that_cannot_match_is_not_resolved(expr, expected):
    call, task = view("unlink", b"d/victim")
    assert compiled(expr, "unlink").evaluate(call) is expected
    assert task.resolved == 0


@pytest.mark.parametrize("expr, expected", [
    ('PATH[1] == "/real/d/victim"', True),
    ('PATH[1] == "/elsewhere/victim"', False),  # same last component: resolved to tell
    ('PATH[1] in ("/x/keep", "/real/d/victim")', True),
    ('PATH[1] startswith "/real/"', True),  # not a literal equality: always resolved
])
def test_a_name_that_may_match_is_resolved(expr, expected):
    call, task = view("unlink", b"d/victim")
    assert compiled(expr, "unlink").evaluate(call) is expected
    assert task.resolved == 1


@pytest.mark.parametrize("name", [b"d/", b"d/.", b"d/..", b""])
def test_a_name_ending_in_a_directory_is_resolved(name):
    call, task = view("unlink", name)
    compiled('PATH[1] == "/etc/keep"', "unlink").evaluate(call)
    assert task.resolved == 1


def test_a_call_following_a_final_symlink_is_resolved_whatever_its_name():
    # open("link") acts on what the link leads to: its last component says nothing.
    call, task = view("open", b"/tmp/link", O_RDONLY)
    assert compiled('PATH[1] == "/real/target"', "open").evaluate(call) is True
    assert task.resolved == 1
    call, task = view("open", b"/tmp/link", O_NOFOLLOW)  # acts on the link itself
    assert compiled('PATH[1] == "/real/target"', "open").evaluate(call) is False
    assert task.resolved == 0


def test_a_modern_variant_names_its_last_component_too():
    # An unlink rule on unlinkat(AT_FDCWD, "d/victim", 0): the classic view's PATH[1].
    (rule,) = check_rules('rule\n{\nsyscall_name = unlink\nrule_name = r\n'
                          'filter_expression {PATH[1] == "/etc/keep"}\n'
                          'action { type = LOG }\n}\n')
    variant = next(v for v in variants_of("unlink") if v.modern == "unlinkat")
    sc = table().by_name("unlinkat")
    task = Task()
    call = Syscall(1, 1, "x86_64", 0, sc.nr, (-100 & (1 << 64) - 1, 0x1000, 0, 0, 0, 0), 0, 0,
                   "seccomp", Memory(b"d/victim"), task)
    classic = table().by_name("unlink")
    view_ = CallView(call, CallShape(sc, classic.args, variant))
    assert compile_filter(rule.filter, classic.args).evaluate(view_) is False
    assert task.resolved == 0
