"""The local stack fails fast and clearly on a busy port or a missing Java, and starts nothing."""

from __future__ import annotations

import socket

import pytest

from airflow_spark_streaming.exceptions import JavaNotFoundError, SparkStreamingError
from devstack import kafka
from devstack.errors import PortInUseError
from devstack.process import port_is_free, wait_for


def test_busy_port_names_the_port_and_the_fix(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(PortInUseError, match=rf"Port {port} on 127.0.0.1 is already in use.*KAFKA_LOCAL_PORT"):
            kafka.start(tmp_path, port=port)
    assert not (tmp_path / "broker.json").exists()
    assert kafka.main(["status", "--home", str(tmp_path)]) == 3


def test_missing_java_is_reported_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(JavaNotFoundError, match="JAVA_HOME"):
        kafka.start(tmp_path / "home", port=0)
    assert not (tmp_path / "home" / "broker.json").exists()


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        assert kafka.main(["start", "--home", str(tmp_path), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"Port {port}" in err and "Traceback" not in err


def test_wait_for_gives_up_instead_of_hanging():
    with pytest.raises(SparkStreamingError, match="Timed out after 0s waiting for nothing"):
        wait_for(lambda: False, timeout=0.3, what="nothing", interval=0.05)


def test_port_is_free_sees_a_listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_is_free("127.0.0.1", sock.getsockname()[1])


def test_cluster_id_never_starts_with_a_dash(monkeypatch):
    # 0xF8 encodes to "-" first in URL-safe base64; Kafka's storage tool would read it as an option.
    import uuid

    drawn = iter([uuid.UUID(bytes=b"\xf8" + b"\x01" * 15), uuid.UUID(bytes=b"\x10" * 16)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(drawn))
    cluster_id = kafka.new_cluster_id()
    assert cluster_id == "EBAQEBAQEBAQEBAQEBAQEA"
    assert len(cluster_id) == 22


@pytest.fixture
def taken_port():
    """A port another socket holds: a listener started on it fails with 'Address already in use'."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        yield squatter.getsockname()[1]


def _server_on_a_picked_port(tmp_path, port: int | None = None):
    """One start of a real listener on ``port``, or on one picked free now, as the local services start theirs."""
    import sys

    from devstack.process import check_running, free_port, log_tail, spawn, terminated_on_failure

    port = port or free_port()
    log = tmp_path / f"server-{port}.log"
    serve = f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)"
    process = spawn([sys.executable, "-c", serve], log)

    def ready() -> bool:
        check_running(process, "The test server", lambda: log_tail(log))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    with terminated_on_failure([process]):
        wait_for(ready, timeout=20, what="the test server", interval=0.05)
    return process, port


def test_a_start_whose_picked_port_was_taken_first_starts_again_on_another(tmp_path, taken_port):
    from devstack.process import retry_port_race, terminate

    attempts: list[int] = []

    def start_once():
        attempts.append(1)
        return _server_on_a_picked_port(tmp_path, taken_port if len(attempts) == 1 else None)

    process, port = retry_port_race(start_once)
    try:
        assert len(attempts) == 2 and port != taken_port and not port_is_free("127.0.0.1", port)
        assert "Address already in use" in (tmp_path / f"server-{taken_port}.log").read_text()
    finally:
        terminate(process.pid)


def test_a_port_race_on_every_try_and_other_failures_are_raised(tmp_path, taken_port):
    from devstack.errors import LocalStackError
    from devstack.process import retry_port_race

    calls: list[int] = []

    def always_taken():
        calls.append(1)
        return _server_on_a_picked_port(tmp_path, taken_port)

    with pytest.raises(LocalStackError, match="Address already in use"):
        retry_port_race(always_taken)
    assert len(calls) == 3

    def broken():
        calls.append(1)
        raise LocalStackError("The test server exited with code 1 while starting: no such class")

    calls.clear()
    with pytest.raises(LocalStackError, match="no such class"):
        retry_port_race(broken)
    assert len(calls) == 1  # not a port race: no second try
