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


@pytest.mark.parametrize(
    ("module", "state_file", "home_env", "folder"),
    [
        ("kafka", "broker.json", "KAFKA_LOCAL_HOME", "kafka-local"),
        ("s3", "server.json", "S3_LOCAL_HOME", "s3-local"),
        ("spark_cluster", "cluster.json", "SPARK_LOCAL_CLUSTER_HOME", "spark-cluster"),
        ("spark_connect", "server.json", "SPARK_CONNECT_LOCAL_HOME", "spark-connect"),
        ("yarn", "cluster.json", "YARN_LOCAL_HOME", "yarn-local"),
    ],
)
def test_every_service_keeps_its_home_and_state_file(module, state_file, home_env, folder, tmp_path, monkeypatch):
    import importlib

    service = importlib.import_module(f"devstack.{module}")
    monkeypatch.delenv(home_env, raising=False)
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path / "cache"))
    assert service.default_home() == tmp_path / "cache" / folder
    monkeypatch.setenv(home_env, str(tmp_path / "elsewhere"))
    assert service.default_home() == tmp_path / "elsewhere"
    assert service.SERVICE.state_path(tmp_path) == tmp_path / state_file
    assert service.read_state(tmp_path) is None and not service.stop(tmp_path)


def test_the_connect_server_loads_delta_and_kafka_and_listens_on_loopback_only(tmp_path):
    from airflow_spark_streaming.spark.jvm import DELTA_SPARK_PACKAGE, KAFKA_SQL_PACKAGE
    from devstack import spark_connect

    settings = spark_connect.server_properties(tmp_path, 15555, {"spark.hadoop.fs.s3a.secret.key": "k"})
    assert (settings["spark.connect.grpc.binding.address"], settings["spark.connect.grpc.binding.port"]) == (
        "127.0.0.1", "15555",
    )  # fmt: skip
    packages = settings.get("spark.jars.packages", "") + settings.get("spark.jars", "")
    assert DELTA_SPARK_PACKAGE in packages or "delta-spark" in packages
    assert KAFKA_SQL_PACKAGE in packages or "spark-sql-kafka" in packages
    assert settings["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert settings["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert settings["spark.hadoop.fs.s3a.secret.key"] == "k"  # into the 0600 properties file, not argv
    assert f"-Dlog4j2.configurationFile={spark_connect.LOG4J2_CONFIG}" in settings["spark.driver.extraJavaOptions"]


def test_the_connect_servers_logging_quiets_requests_and_tasks_but_keeps_streaming_and_kafka():
    from devstack import spark_connect

    lines = spark_connect.LOG4J2_CONFIG.read_text().splitlines()
    entries = dict(line.split(" = ", 1) for line in lines if " = " in line and not line.startswith("#"))
    levels = {entries[key]: entries[key[: -len(".name")] + ".level"] for key in entries if key.startswith("logger.")
              and key.endswith(".name")}  # fmt: skip
    assert entries["rootLogger.level"] == "info"  # streaming, Kafka's config dumps, Delta
    for noisy in ("org.apache.spark.sql.connect", "org.sparkproject.connect.grpc", "org.apache.spark.scheduler",
                  "org.apache.spark.executor", "org.apache.spark.storage"):  # fmt: skip
        assert levels[noisy] == "warn"
    assert levels["org.apache.spark.sql.connect.planner"] == "info"
    assert not any(name.startswith(("org.apache.spark.sql.execution.streaming", "org.apache.kafka")) for name in levels)


def _sleeper(tmp_path):
    import sys

    from devstack.process import spawn

    return spawn([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "sleeper.log")


def test_a_recorded_service_is_read_stopped_and_forgotten(tmp_path, capsys):
    from devstack import s3
    from devstack.process import pid_alive

    process = _sleeper(tmp_path)
    try:
        (tmp_path / "credentials.json").write_text("{}")
        s3.SERVICE.write_state(s3.S3Server(home=str(tmp_path), port=1, pid=process.pid, access_key_id="AKIA"))
        assert s3.read_state(tmp_path) == s3.S3Server(home=str(tmp_path), port=1, pid=process.pid,
                                                      access_key_id="AKIA")  # fmt: skip
        assert s3.main(["status", "--home", str(tmp_path)]) == 0
        assert s3.main(["stop", "--home", str(tmp_path)]) == 0
        assert capsys.readouterr().out.splitlines() == ["s3-local: running on http://127.0.0.1:1", "s3-local: stopped"]
        process.wait(timeout=10)
        assert not pid_alive(process.pid)
        # The state file and the dead key's credentials are gone; the server's log stays.
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sleeper.log"]
    finally:
        process.kill()


def test_a_record_whose_process_died_counts_as_nothing_running(tmp_path, capsys):
    from devstack import spark_cluster

    process = _sleeper(tmp_path)
    cluster = spark_cluster.SparkCluster(str(tmp_path), 1, 2, master_pid=process.pid, worker_pid=process.pid)
    spark_cluster.SERVICE.write_state(cluster)
    process.kill()
    process.wait(timeout=10)
    assert spark_cluster.read_state(tmp_path) is None
    assert spark_cluster.main(["status", "--home", str(tmp_path)]) == 3
    assert capsys.readouterr().out == "spark-cluster: not running\n"


def test_a_state_file_with_passwords_is_private(tmp_path):
    import stat

    from devstack import kafka

    kafka.SERVICE.write_state(kafka.KafkaBroker(home=str(tmp_path), port=1, controller_port=2, pid=1,
                                                passwords={"admin": "secret"}))  # fmt: skip
    assert stat.S_IMODE((tmp_path / "broker.json").stat().st_mode) == 0o600


def test_the_demo_prints_its_own_lines_and_logs_connection_lookups(tmp_path):
    """Airflow logs an INFO line to stdout per ``aws`` connection lookup; the demo keeps them in its log."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    connection = {"conn_type": "aws", "login": "AKIAEXAMPLEKEY", "password": "example-secret",
                  "extra": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}}  # fmt: skip
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from airflow_spark_streaming.hooks.storage import StorageHook\n"
        "from devstack.demo import output_to\n"
        "with output_to(Path(sys.argv[1])) as (out, err):\n"
        "    StorageHook('lake_s3').credentials()\n"
        "    os.write(2, b'%6|librdkafka|a note on stderr\\n')\n"
        "    print('the demo line', file=out)\n"
        "print('after the demo')\n"
    )
    env = {**os.environ, "AIRFLOW_CONN_LAKE_S3": json.dumps(connection), "PYTHONPATH": str(REPO_ROOT)}
    log = tmp_path / "demo.log"
    done = subprocess.run([sys.executable, "-c", script, str(log)], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "the demo line\nafter the demo\n" and done.stderr == ""
    logged = log.read_text()
    assert "credentials retrieved from login and password" in logged and "a note on stderr" in logged
