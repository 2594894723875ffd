"""Every action, path resolution, process trees and foreign ABIs, through the sctrace command."""

import json
import os
import re
import socket
import subprocess
import sys

from sctrace_support import SCTRACE, rule, sctrace, wait_until

PYTHON = sys.executable


def fail_path(path, code="-1", syscall="unlink", filt=None):
    return rule(syscall, f"type = FAIL\nerror_code = {code}", "deny",
                filt or f'PATH[1] == "{path}"')


def test_relative_path_after_cd_is_caught_by_path(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").touch()
    run = sctrace(tmp_path, fail_path(etc / "passwd"), "sh", "-c", f"cd {etc} && rm -f ./passwd")
    assert (etc / "passwd").exists()
    assert "Operation not permitted" in run.err


def test_dirfd_relative_path_is_resolved(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").touch()
    code = (f"import os\nfd = os.open({str(etc)!r}, os.O_RDONLY)\n"
            "try:\n    os.unlink('passwd', dir_fd=fd)\n"
            "except PermissionError:\n    print('denied')\n")
    run = sctrace(tmp_path, fail_path(etc / "passwd"), PYTHON, "-c", code, cwd="/")
    assert run.out == "denied\n"
    assert (etc / "passwd").exists()


def test_dot_dot_and_double_slashes_are_normalised(tmp_path):
    (tmp_path / "sub").mkdir()
    victim = tmp_path / "victim"
    victim.touch()
    sneaky = f"{tmp_path}/sub/..//victim"
    run = sctrace(tmp_path, fail_path(victim), "rm", "-f", sneaky)
    assert victim.exists()
    assert run.code == 1


def test_fake_success_leaves_the_file(tmp_path):
    victim = tmp_path / "victim"
    victim.touch()
    run = sctrace(tmp_path, fail_path(victim, code="0"), "rm", str(victim))
    assert run.code == 0  # rm believes it
    assert victim.exists()


def test_errno_names_and_positive_results(tmp_path, helper):
    victim = tmp_path / "victim"
    victim.touch()
    run = sctrace(tmp_path, fail_path(victim, code="-EACCES"), helper, "unlink", str(victim))
    assert run.out == f"unlink {victim} = -1 13\n"
    run = sctrace(tmp_path, fail_path(victim, code="5"), helper, "unlink", str(victim))
    assert run.out == f"unlink {victim} = 5 0\n"
    assert victim.exists()


def test_log_after_shows_the_return_value(tmp_path, helper):
    rules = rule("unlink", "type = LOG\nlog_format {%sname %params -> %retval}", when="after")
    run = sctrace(tmp_path, rules, helper, "unlink", str(tmp_path / "absent"), "unlinkat",
                  str(tmp_path / "absent"))
    assert run.log == [f'unlink "{tmp_path}/absent" -> -2', f'unlinkat "{tmp_path}/absent" -> -2']


def test_kill_stops_the_command_before_the_call(tmp_path):
    victim = tmp_path / "victim"
    victim.touch()
    run = sctrace(tmp_path, rule("unlink", "type = KILL"), "rm", str(victim))
    assert run.code == 128 + 9
    assert victim.exists()
    assert any("killed pid" in n for n in run.notices)


def proc_status(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return f.read()


def test_suspend_leaves_the_process_stopped_and_untraced(tmp_path, helper):
    victim = tmp_path / "victim"
    victim.touch()
    script = (f"import subprocess, sys\n"
              f"p = subprocess.Popen([{helper!r}, 'unlink', {str(victim)!r}])\n"
              f"print(p.pid, flush=True)\n"
              f"sys.stdin.read()\n")
    rules = rule("unlink", "type = SUSPEND")
    rule_file = tmp_path / "s.rules"
    rule_file.write_text(rules)
    proc = subprocess.Popen([*SCTRACE, "-c", str(rule_file), "--", PYTHON, "-c", script],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    child = int(proc.stdout.readline())
    try:
        notice = proc.stderr.readline()
        assert f"suspended pid {child}" in notice and f"gdb -p {child}" in notice
        wait_until(lambda: "State:\tT (stopped)" in proc_status(child), what="SIGSTOP")
        assert "TracerPid:\t0" in proc_status(child)
        assert victim.exists()
    finally:
        os.kill(child, 9)
        proc.stdin.close()
        proc.wait(timeout=60)


def test_rewrite_redirects_an_open(tmp_path, helper):
    hosts, test_hosts = tmp_path / "hosts", tmp_path / "test-hosts"
    hosts.write_text("real\n")
    test_hosts.write_text("redirected\n")
    rules = rule("open", f'type = REWRITE\nparam = 1\nvalue = "{test_hosts}"',
                 filter_=f'PARAMS[1] == "{hosts}"')
    run = sctrace(tmp_path, rules, helper, "open", str(hosts))
    assert run.out.splitlines()[0] == "content redirected"
    run = sctrace(tmp_path, rules, "cat", str(hosts))
    assert run.out == "redirected\n"


def test_integer_rewrite(tmp_path, helper):
    rules = rule("unlinkat", "type = REWRITE\nparam = 1\nvalue = 12345")
    run = sctrace(tmp_path, rules, helper, "unlinkat", "relative-name")
    assert run.out == "unlinkat relative-name = -1 9\n"  # EBADF: dirfd 12345 is not open


def test_threads_and_forks_are_followed(tmp_path, helper):
    rules = rule("unlink", "type = LOG\nlog_format {%pid %tid %params}")
    run = sctrace(tmp_path, rules, helper, "threads", "4", str(tmp_path / "t"),
                  "fork", str(tmp_path / "f"))
    assert len(run.log) == 5
    tids = {line.split()[1] for line in run.log}
    pids = {line.split()[0] for line in run.log}
    assert len(tids) == 5 and len(pids) == 2


def test_vfork_exec_is_followed(tmp_path, helper):
    rules = rule("execve", "type = LOG\nlog_format {%comm %params}")
    run = sctrace(tmp_path, rules, helper, "vforkexec", "/bin/true")
    assert any(line.startswith('"helper" "/bin/true", ["/bin/true"]') for line in run.log), run.log


def test_uids_are_read_at_the_call(tmp_path, helper):
    rules = rule("unlink", "type = LOG\nlog_format {%uid %euid %params}",
                 filter_="UID == 65534")
    run = sctrace(tmp_path, rules, helper, "unlink", str(tmp_path / "a"), "setuid", "65534",
                  "unlink", str(tmp_path / "b"))
    assert run.log == [f'65534 65534 "{tmp_path}/b"']


def test_i386_calls_cannot_go_around_a_rule(tmp_path, helper):
    victim = tmp_path / "victim"
    victim.touch()
    rules = fail_path(victim, filt=f'PARAMS[1] == "{victim}"') + rule(
        "unlink", "type = LOG\nlog_format {%abi %sid %sname %params}", "log")
    run = sctrace(tmp_path, rules, helper, "i386unlink", str(victim))
    assert run.out == f"i386unlink {victim} = -1 1\n"
    assert victim.exists()
    other = tmp_path / "other"
    other.touch()
    run = sctrace(tmp_path, rules, helper, "i386unlink", str(other))
    assert run.log == [f'i386 10 unlink "{other}"']


def test_i386_values_over_two_registers_are_whole(tmp_path, helper):
    """i386 ftruncate64 passes the length as two 32-bit registers: a rule on ftruncate's
    length sees all 64 bits, so the high half cannot slip a length past it, and the log
    prints the length the kernel uses."""
    victim = tmp_path / "victim"
    victim.write_text("data\n")
    rules = (rule("ftruncate", "type = FAIL\nerror_code = EFBIG", "big",
                  "PARAMS[2] > 0x100000000")
             + rule("ftruncate", "type = LOG\nlog_format {%abi %sname %params}", "log"))
    run = sctrace(tmp_path, rules, helper, "i386ftruncate", str(victim), str(2**32 + 5))
    assert run.out == f"size 5\ni386ftruncate {victim} = -1 27\n"  # EFBIG, untouched
    assert run.log == []
    run = sctrace(tmp_path, rules, helper, "i386ftruncate", str(victim), str(2**32))
    assert run.out == f"size {2**32}\ni386ftruncate {victim} = 0 0\n"  # sparse
    assert run.log == [f"i386 ftruncate64 3, {2**32}"]


def test_unreadable_memory_prints_an_address(tmp_path, helper):
    rules = rule("unlink", "type = LOG\nlog_format {%params}")
    run = sctrace(tmp_path, rules, helper, "badunlink")
    assert run.log == ["0x10"]
    assert run.out == "badunlink  = -1 14\n"


def test_plain_mode_shows_selected_calls_with_results(tmp_path, helper):
    run = sctrace(tmp_path, None, helper, "unlink", str(tmp_path / "x"),
                  options=["-e", "trace=unlink"])
    assert len(run.log) == 1
    assert re.fullmatch(rf'syscall: \d+\[helper\]: 87_unlink\("{tmp_path}/x"\) = -2', run.log[0])


def test_strace_habit_f_is_accepted(tmp_path, helper):
    """`-f`/`-ff` change nothing: the whole tree is always followed."""
    for flag in ("-f", "-ff"):
        run = sctrace(tmp_path, None, helper, "fork", str(tmp_path / "x"),
                      options=[flag, "-e", "trace=unlink"])
        assert run.code == 0 and len(run.log) == 1 and "[helper]: 87_unlink(" in run.log[0]


def test_group_selection_and_json(tmp_path, helper):
    run = sctrace(tmp_path, None, helper, "unlink", str(tmp_path / "x"),
                  options=["-e", "trace=%file", "--json"])
    events = [json.loads(line) for line in run.log]
    names = {e["sname"] for e in events}
    assert "unlink" in names and "execve" in names
    assert "mmap" not in names  # not a %file call


def test_exit_status_is_the_commands(tmp_path):
    assert sctrace(tmp_path, None, "sh", "-c", "exit 7", options=["-e", "trace=unlink"]).code == 7
    killed = sctrace(tmp_path, None, "sh", "-c", "kill -TERM $$", options=["-e", "trace=unlink"])
    assert killed.code == 128 + 15


def test_unknown_command_is_reported(tmp_path):
    run = sctrace(tmp_path, None, "no-such-command-xyz", options=["-e", "trace=unlink"])
    assert run.code == 127
    assert "cannot run 'no-such-command-xyz'" in " ".join(run.notices)


def test_cwd_and_path_are_captured_when_a_format_shows_them(tmp_path):
    (tmp_path / "dummy").touch()
    rules = rule("unlink", "type = LOG\nlog_format {%cwd %path %params}")
    run = sctrace(tmp_path, rules, "rm", "./dummy", cwd=tmp_path)
    assert run.log == [f'"{tmp_path}" "{tmp_path}/dummy" "./dummy"']
    run = sctrace(tmp_path, rule("unlink", "type = LOG"), "rm", "-f", "./dummy",
                  options=["--json"], cwd=tmp_path)
    (event,) = [json.loads(line) for line in run.log]
    assert event["cwd"] == str(tmp_path)


def test_socket_addresses_print_as_addresses(tmp_path):
    """Who connects where: connect's and bind's addresses decoded, an abstract unix
    socket's name as @name, as the system-wide engine prints them."""
    script = ("import socket\n"
              "s = socket.create_server(('127.0.0.1', 0))\n"
              "print(s.getsockname()[1])\n"
              "socket.create_connection(s.getsockname()).close()\n"
              "u = socket.socket(socket.AF_UNIX)\n"
              "u.bind(b'\\0sct-abstract')\n")
    rules = (rule("connect", "type = LOG", "conn", when="after")
             + rule("bind", "type = LOG", "bnd"))
    run = sctrace(tmp_path, rules, sys.executable, "-c", script,
                  options=["--format", "%ruleid %params %retval"])
    port = int(run.out)
    assert run.log == ["bnd 3, {AF_INET, 127.0.0.1:0}, 16 ?",
                       f"conn 4, {{AF_INET, 127.0.0.1:{port}}}, 16 0",
                       'bnd 4, {AF_UNIX, "@sct-abstract"}, 15 ?']


def test_fail_connect_by_port_and_log_by_address(tmp_path):
    """Socket address fields in filters: the connect to one port fails with EPERM, the
    other goes ahead and is logged by its address."""
    server_script = ("import socket, sys\n"
                     "a = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
                     "b = socket.create_server(('127.0.0.1', 0))\n"
                     "for s in (a, b):\n"
                     "    try:\n"
                     "        socket.create_connection(s.getsockname()).close()\n"
                     "        print('connected', s.getsockname()[1])\n"
                     "    except PermissionError:\n"
                     "        print('refused', s.getsockname()[1])\n")
    with socket.socket() as finder:  # a free port for the denied server
        finder.bind(("127.0.0.1", 0))
        denied = finder.getsockname()[1]
    rules = (rule("connect", "type = FAIL\nerror_code = -EPERM", "deny",
                  f"PARAMS[2].port == {denied}")
             + rule("connect", "type = LOG", "seen", 'PARAMS[2].addr == "127.0.0.1"',
                    when="after"))
    run = sctrace(tmp_path, rules, sys.executable, "-c", server_script, str(denied),
                  options=["--format", "%ruleid %params %retval"])
    lines = run.out.split("\n")
    assert lines[0] == f"refused {denied}"
    other = int(lines[1].split()[1])
    assert lines[1] == f"connected {other}"
    # The before list failed the first call; the after list still sees it return -EPERM.
    assert [line.split(", ", 1)[1] for line in run.log] == [
        f"{{AF_INET, 127.0.0.1:{denied}}}, 16 -1", f"{{AF_INET, 127.0.0.1:{other}}}, 16 0"]


def test_an_address_the_call_fills_in_is_read_at_its_exit(tmp_path):
    """accept4's peer address: decoded after the call, when the kernel has written it;
    before the call it is only a pointer (its memory holds nothing yet)."""
    script = ("import socket, threading\n"
              "s = socket.create_server(('127.0.0.1', 0))\n"
              "t = threading.Thread(target=lambda: socket.create_connection("
              "s.getsockname()).close())\n"
              "t.start()\n"
              "c, peer = s.accept()\n"
              "t.join()\n"
              "print(peer[1])\n")
    rules = (rule("accept4", "type = LOG", "before")
             + rule("accept4", "type = LOG", "after", when="after"))
    run = sctrace(tmp_path, rules, sys.executable, "-c", script,
                  options=["--format", "%ruleid %params"])
    port = int(run.out)
    before, after = run.log
    assert re.fullmatch(r"before 3, \d+, \d+, 524288", before)
    assert after.startswith(f"after 3, {{AF_INET, 127.0.0.1:{port}}}, ")
