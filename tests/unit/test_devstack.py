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
