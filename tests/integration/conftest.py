"""Real components for integration tests: Kafka broker, SparkSession, Spark standalone cluster, Spark Connect
server, Airflow DB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from airflow_spark_streaming.spark.jvm import resolve_jvm_dependencies
from devstack.java import check_java
from tests.support.folder_markers import mark_folder


def pytest_collection_modifyitems(items):
    mark_folder(items, Path(__file__).parent, pytest.mark.integration)
    for item in items:  # the Connect layer runs alone with -m connect
        if "spark_connect_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.connect)


@pytest.fixture(scope="session")
def java_major() -> int:
    return check_java()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory, java_major):
    """A real single-node KRaft broker on a free 127.0.0.1 port, for the whole session."""
    from devstack import kafka

    broker = kafka.start(tmp_path_factory.mktemp("kafka"), port=0)
    yield broker
    kafka.stop(Path(broker.home))


@pytest.fixture
def kafka_topic(kafka_broker):
    """Make topics with a given partition count; names are unique per test."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})

    def create(partitions: int = 1, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        futures[name].result(timeout=30)
        return name

    return create


@pytest.fixture
def kafka_conn(kafka_broker, monkeypatch):
    def make(conn_id: str = "kafka_default", **extra) -> str:
        config = {"bootstrap.servers": kafka_broker.bootstrap_servers, **extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": config}))
        return conn_id

    return make


@pytest.fixture(scope="session")
def jvm_dependencies():
    return resolve_jvm_dependencies(delta=True, kafka=True)


@pytest.fixture(scope="session", autouse=True)
def spark_class_archive(jvm_dependencies):
    """Every spark-submit of the session maps Spark's classes from one class-data archive (AppCDS), a third
    less time per start-up. Built on first use into the project's cache (tests/support/jvm_startup.py)."""
    from airflow_spark_streaming.spark.jvm import cache_dir, spark_home
    from tests.support.jvm_startup import class_archive, submit_opts_with

    home = spark_home()
    if home is None or os.environ.get("ASS_TEST_NO_CLASS_ARCHIVE"):
        yield None
        return
    archive = class_archive(home, cache_dir(), jars=jvm_dependencies.jars, conf=jvm_dependencies.conf, env=os.environ)
    if archive is None:
        yield None
        return
    before = os.environ.get("SPARK_SUBMIT_OPTS")
    os.environ["SPARK_SUBMIT_OPTS"] = submit_opts_with(archive, before)
    yield archive
    if before is None:
        os.environ.pop("SPARK_SUBMIT_OPTS", None)
    else:
        os.environ["SPARK_SUBMIT_OPTS"] = before


@pytest.fixture(scope="session")
def spark(java_major, jvm_dependencies, tmp_path_factory):
    """One local[2] SparkSession with Delta, UI off and few shuffle partitions."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("airflow-spark-streaming-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("warehouse")))
        .config("spark.sql.streaming.noDataProgressEventInterval", "1000")
    )
    for key, value in jvm_dependencies.session_conf().items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory, java_major):
    """A real Spark standalone Master and Worker on 127.0.0.1."""
    from devstack import spark_cluster

    cluster = spark_cluster.start(tmp_path_factory.mktemp("spark-cluster"), cores=2, memory="3g")
    yield cluster
    spark_cluster.stop(Path(cluster.home))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One local S3 server (moto) on a free 127.0.0.1 port; it accepts only its own access key."""
    from devstack import s3

    server = s3.start(tmp_path_factory.mktemp("s3"), port=0)
    yield server
    s3.stop(Path(server.home))


def _server_s3_conf(s3_server) -> dict[str, str]:
    """The S3A settings (keys included) a Spark server gets at its start to reach ``s3_server``."""
    from airflow_spark_streaming.hooks.storage import StorageHook

    name = "AIRFLOW_CONN_CONNECT_SERVER_S3"
    os.environ[name] = s3_server.connection_uri()
    try:
        conf = StorageHook("connect_server_s3").spark_conf()
    finally:
        del os.environ[name]
    return {**conf.settings, **conf.secret_settings}


@pytest.fixture(scope="session")
def spark_connect_server(tmp_path_factory, java_major, s3_server):
    """A real Spark Connect server (Delta, Kafka, S3A to ``s3_server``) on a free 127.0.0.1 port, started once
    for the session. Its S3 keys are its own start-up settings (a 0600 properties file): tasks send none."""
    from devstack import spark_connect

    home = tmp_path_factory.mktemp("spark-connect")
    # The event log records every plan the server ran: the secrets tests search it.
    (home / "events").mkdir()
    server = spark_connect.start(home, port=0, conf={"spark.eventLog.enabled": "true",
                                                     "spark.eventLog.dir": (home / "events").as_uri(),
                                                     "spark.eventLog.compress": "false",
                                                     **_server_s3_conf(s3_server)})  # fmt: skip
    yield server
    spark_connect.stop(Path(server.home))


@pytest.fixture
def spark_connect_conn(spark_connect_server, monkeypatch):
    """A ``spark_connect`` connection to the shared server; returns its id."""

    def make(conn_id: str = "spark_connect_local", port: int | None = None) -> str:
        connection = {"conn_type": "spark_connect", "host": "127.0.0.1", "port": port or spark_connect_server.port}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        return conn_id

    return make


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated metadata database in the test Airflow home (SQLite)."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return os.environ["AIRFLOW_HOME"]


from tests.support.checkpoint_fixtures import checkpoint_copy, file_source_checkpoint  # noqa: E402, F401
from tests.support.delta_fixtures import small_files_table, table_copy  # noqa: E402, F401
