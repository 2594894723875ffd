"""The syslog sink against a private datagram socket standing in for /dev/log."""

import os
import socket

import pytest

from syscalltrack.sinks.syslog import SyslogSink


@pytest.fixture
def devlog(tmp_path):
    path = str(tmp_path / "log")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    yield path, server
    server.close()


def test_lines_arrive_with_priority_and_ident(devlog):
    path, server = devlog
    with SyslogSink(path, facility="local3") as sink:
        sink.write('"rm" : "./dummy" delete by 0 --> 0')
    expected = f'<157>syscalltrack[{os.getpid()}]: "rm" : "./dummy" delete by 0 --> 0'
    assert server.recv(4096).decode() == expected  # 157 = local3 (19) * 8 + notice (5)


def test_missing_socket_warns_once_and_counts(tmp_path):
    warnings = []
    sink = SyslogSink(str(tmp_path / "absent"), warn=warnings.append)
    sink.write("a")
    sink.write("b")
    assert sink.failed == 2
    assert len(warnings) == 1
    assert "no syslog at" in warnings[0]


def test_reconnects_when_syslog_comes_back(tmp_path):
    path = str(tmp_path / "log")
    warnings = []
    sink = SyslogSink(path, warn=warnings.append, retry_interval=0)
    sink.write("lost")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    try:
        sink.write("kept")
        assert server.recv(4096).endswith(b": kept")
        assert (sink.sent, sink.failed) == (1, 1)
    finally:
        sink.close()
        server.close()


def test_unknown_facility_is_refused():
    with pytest.raises(ValueError, match="unknown syslog facility 'local9'"):
        SyslogSink(facility="local9")


def test_absent_syslog_is_retried_at_most_once_per_interval(tmp_path):
    path = str(tmp_path / "log")
    sink = SyslogSink(path, warn=lambda _msg: None, retry_interval=3600)
    sink.write("lost")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    try:
        sink.write("also lost: no new attempt before the interval")
        assert (sink.sent, sink.failed) == (0, 2)
    finally:
        server.close()
