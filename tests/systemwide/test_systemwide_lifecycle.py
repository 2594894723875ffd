"""Nothing of ours stays in the kernel after the engine stops, however it stops; rule sets
the kernel cannot run are refused whole, with the reason and "use sctrace"."""

import gc
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest
from systemwide_support import rule

from syscalltrack.bpf.sys import BpfError, Cmd, fd_by_id
from syscalltrack.engines.systemwide import SystemwideEngine
from syscalltrack.events.render import Renderer
from syscalltrack.rules import RuleError, load_rules

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf() and tracefs")
ARTICLE = Path(__file__).resolve().parents[2] / "examples" / "article.rules"
PROG_GET_FD_BY_ID, MAP_GET_FD_BY_ID = Cmd.PROG_GET_FD_BY_ID, Cmd.MAP_GET_FD_BY_ID
TEXT = (rule("before", "unlink", 'PARAMS[1] glob "/tmp/*"')
        + rule("after", "unlink", "RETVAL < 0", when="after"))


def alive(kind: Cmd, ident: int) -> bool:
    try:
        fd_by_id(kind, ident).close()
    except BpfError:
        return False
    return True


def gone(ids: dict[str, list[int]], wait: float = 3.0) -> bool:
    """All programs and maps freed (the kernel frees them after an RCU grace period)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not any(alive(PROG_GET_FD_BY_ID, i) for i in ids["programs"]) and \
                not any(alive(MAP_GET_FD_BY_ID, i) for i in ids["maps"]):
            return True
        time.sleep(0.05)
    return False


def test_clean_close_frees_everything():
    with SystemwideEngine(load_rules(TEXT)) as engine:
        ids = engine.ids()
        # unlink and unlinkat, enter and exit, for x86_64 and i386; the two i386
        # dispatchers and the exit cleaner
        assert len(ids["programs"]) == 11 and all(alive(PROG_GET_FD_BY_ID, i)
                                                 for i in ids["programs"])
    assert gone(ids)


def test_exception_inside_the_with_block_frees_everything():
    with pytest.raises(ZeroDivisionError), SystemwideEngine(load_rules(TEXT)) as engine:
        ids = engine.ids()
        1 / 0  # noqa: B018
    assert gone(ids)


def test_failed_load_leaves_nothing(monkeypatch):
    """A program that fails to attach: the ones already attached are detached again."""
    from syscalltrack.engines.systemwide import engine as engine_mod

    calls = []

    def flaky(real):
        def attach(prog, *where):
            calls.append(prog.id)
            if len(calls) == 3:
                raise OSError("attach refused (test)")
            return real(prog, *where)
        return attach
    for name in ("attach_tracepoint", "attach_tracing"):
        monkeypatch.setattr(engine_mod, name, flaky(getattr(engine_mod, name)))
    engine = SystemwideEngine(load_rules(TEXT + rule("p", "ptrace")))
    with pytest.raises(OSError, match="test"):
        engine.load()
    assert gone({"programs": calls, "maps": []})
    assert not engine.loaded


def test_kill_9_of_the_engine_process_frees_everything():
    code = ("import sys, time\n"
            "from syscalltrack.engines.systemwide import SystemwideEngine\n"
            "from syscalltrack.rules import load_rules\n"
            "e = SystemwideEngine(load_rules(sys.stdin.read())).load()\n"
            "ids = e.ids()\n"
            "print(' '.join(map(str, ids['programs'])), '|', ' '.join(map(str, ids['maps'])),"
            " flush=True)\n"
            "time.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    child.stdin.write(TEXT)
    child.stdin.close()
    progs, maps = child.stdout.readline().split("|")
    ids = {"programs": [int(i) for i in progs.split()], "maps": [int(i) for i in maps.split()]}
    assert all(alive(PROG_GET_FD_BY_ID, i) for i in ids["programs"])
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert gone(ids)


def test_fail_is_refused_with_the_missing_capability():
    with pytest.raises(RuleError) as err:
        SystemwideEngine(load_rules(ARTICLE))
    (diag,) = err.value.diagnostics
    text = str(diag)
    assert text.startswith(f"{ARTICLE}:19:")
    assert "rule 'prevent_delete': FAIL cannot run system-wide" in text
    assert "kprobe_override_return: " in text and "fmod_ret: " in text and "lsm: " in text
    assert "use sctrace" in text
    print(text)


@pytest.mark.parametrize(("filt", "why"), [
    ('PATH[1] == "/etc/passwd"', "PATH[1] needs the path made absolute"),
    ('CWD == "/etc"', "CWD needs the caller's working directory"),
    ("PARAMS[1] == COMM", "compares two strings that are both read at run time"),
])
def test_filters_the_kernel_cannot_evaluate_are_refused_with_position(filt, why):
    text = rule("r", "unlink", filt)
    with pytest.raises(RuleError) as err:
        SystemwideEngine(load_rules(text, filename="x.rules"))
    (diag,) = err.value.diagnostics
    assert str(diag).startswith("x.rules:4:")
    assert f"rule 'r': {why}" in str(diag) and str(diag).endswith("use sctrace")


def test_write_buffer_filters_are_refused():
    with pytest.raises(RuleError, match="PARAMS\\[2\\] is a buffer"):
        SystemwideEngine(load_rules(rule("w", "write", 'PARAMS[2] == "x"')))


def test_a_closed_engine_and_its_views_are_freed_without_the_collector(tmp_path):
    """The daemon collects young objects rarely: a replaced rule set must go by reference
    counting alone, views and what renderers compiled for them included."""
    text = rule("mine", "unlink", f'PARAMS[1] startswith "{tmp_path}/"')
    engine = SystemwideEngine(load_rules(text)).load()
    (tmp_path / "f").touch()
    os.unlink(tmp_path / "f")
    batch = engine.poll_records(5.0)
    assert batch.rows and Renderer().lines(batch)[0].startswith("syscall: ")
    views = weakref.ref(batch.views)
    view = weakref.ref(next(iter(batch.views.values())))
    engine.close()
    gc.disable()
    try:
        del engine, batch
        assert views() is None and view() is None
    finally:
        gc.enable()
