"""SparkStreamingSubmitOperator with ``kafka_config_id`` against the authenticated broker: one spark-submit each.

The SCRAM ingest (through dag.test) is also the streaming acceptance run of the
secrets: the process list is polled during the run (spark-submit, the driver JVM,
the Python worker), the private spec file's mode is read while it exists, and the
task's output, which carries spark-submit's ``--verbose`` listing and the driver's
INFO log, XCom, the rendered fields and the run's Spark event log are searched for
every secret of the run (the connection's, the spec's, ``conf``'s of every
recognised kind, the control key).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from pathlib import Path

import pytest

from airflow_spark_streaming.exceptions import KafkaAuthenticationError
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from tests.integration.kafka_auth.conftest import produce
from tests.support.streaming_helpers import read_delta

pytestmark = pytest.mark.kafka

# spark-submit's start-up (~15 s) plus the refusal within the connection's bounded timeouts.
REFUSAL_BOUND_SECONDS = 90


@pytest.fixture
def spark_local(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))


def _spec(topic: str, tmp_path: Path) -> dict:
    return {
        "query_name": f"alice_ingest_{tmp_path.name[-12:]}_{secrets.token_hex(4)}",  # spark-submit's --name
        "checkpoint_location": str(tmp_path / "ckpt"),
        "source": {"format": "kafka", "options": {"subscribe": topic, "startingOffsets": "earliest",
                                                   "maxOffsetsPerTrigger": 25, "groupIdPrefix": "alice.spark"}},
        "transform_sql": "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value, partition, offset "
                         "FROM source",
        "sink": {"format": "delta", "path": str(tmp_path / "table")},
        "trigger": {"available_now": True},
    }  # fmt: skip


class SpecFileModes(dict):
    """The mode of each private spec file a command line of the run names (``--spec-file``), while it exists."""

    def __call__(self, line: str) -> None:
        parts = line.split()
        if "--spec-file" in parts and parts.index("--spec-file") + 1 < len(parts):
            path = parts[parts.index("--spec-file") + 1]
            try:
                self.setdefault(path, os.stat(path).st_mode & 0o777)
            except FileNotFoundError:
                self.setdefault(path, None)


def test_scram_ingest_through_the_operator_keeps_every_secret_private(
    auth_broker, auth_topic, kafka_connection, spark_local, airflow_db, monkeypatch, tmp_path, caplog, capfd
):
    """The streaming acceptance run of the secrets (issue 23), through dag.test: the connection's SASL password
    (and the JAAS config made of it), a Schema Registry user info in the connection (ignored for Spark) and in the
    spec's options, the control key, and ``conf`` with a credential of every recognised kind (an ABFS account key,
    a GCS private key, ...). None reaches a command line, the task log, XCom, the rendered fields or Spark's event
    log: Spark itself redacts every one of those settings (its default pattern misses most); the stream still
    reads every record."""
    from airflow.dag_processing.dagbag import DagBag

    from airflow_spark_streaming.kafka.options import jaas_quote
    from airflow_spark_streaming.utils.redaction import SPARK_REDACTED
    from tests.dags import secrets_sealed_dags as dags
    from tests.support.sealed_run import (
        ProcessListWatch,
        event_log,
        event_log_settings,
        leaked_kinds,
        stored_by_airflow,
    )
    from tests.support.secret_kinds import SPARK_CONF_NAMES, needles, random_value, secret_settings

    config = auth_broker.client_config("alice", "SASL_PLAINTEXT", "SCRAM-SHA-512")
    password = config["sasl.password"]
    topic = auth_topic("alice", partitions=2)
    produce(config, topic, 60, partitions=2)
    registry = {key: f"lag-hook:{random_value('connection-user-info')}" for key in dags.KAFKA_CLIENT_ONLY_KEYS}
    kafka_connection(dags.KAFKA_CONN_ID, {**config, **registry})
    control_key = random_value("control-key") * 2
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT",
                       json.dumps({"conn_type": "generic", "password": control_key}))  # fmt: skip
    conf = secret_settings(SPARK_CONF_NAMES, "submit-conf-")
    source_options = {"kafka.schema.registry.basic.auth.user.info": f"spec:{random_value('spec-user-info')}"}
    monkeypatch.setenv(dags.SPARK_CONF_ENV, json.dumps(event_log_settings(conf, tmp_path / "events")))
    monkeypatch.setenv(dags.SOURCE_OPTIONS_ENV, json.dumps(source_options))
    sealed = {
        **needles(conf, registry, source_options),
        password: "sasl.password", jaas_quote(password)[1:-1]: "sasl.password as JAAS quotes it",
        control_key: "control key",
    }  # fmt: skip
    query_name = f"alice_ingest_{tmp_path.name[-12:]}_{secrets.token_hex(4)}"
    dag = DagBag(dag_folder="tests/dags/secrets_sealed_dags.py").dags["secrets_sealed_ingest"]

    caplog.set_level(logging.INFO)
    spec_modes = SpecFileModes()
    with ProcessListWatch({**sealed, "LoginModule": "a JAAS config"}, query_name, on_run_line=spec_modes) as watch:
        run = dag.test(run_conf={"topic": topic, "query_name": query_name, "root": str(tmp_path)})
    log = caplog.text + "".join(capfd.readouterr())
    assert run.state == "success", log[-3000:]
    result = run.get_task_instance("ingest").xcom_pull(task_ids="ingest")

    rows = read_delta(tmp_path / "table")
    assert sorted((r["key"], r["value"], r["partition"], r["offset"]) for r in rows) == sorted(
        (f"key-{i}", f"value-{i}", i % 2, i // 2) for i in range(60)
    )
    assert (result["batches_committed"], result["rows_processed"]) == (3, 60)  # 60 records at 25 a trigger
    assert result["committed_sources"] == [{topic: {"0": 30, "1": 30}}]
    # The control key of this run reached the runner (only in its private spec): it signed its lease.
    leases = [json.loads(p.read_text()) for p in (tmp_path / "ckpt" / "_leases").iterdir() if p.name.isdigit()]
    assert leases and all("mac" in record.get("_auth", {}) for record in leases), leases
    # argv: the run was seen, and no secret (nor the JAAS config) was on any command line.
    assert any("SparkSubmit" in line and "--spec-file" in line for line in watch.lines), watch.lines
    assert watch.leaks == set(), f"on a command line: {sorted(watch.leaks)}"
    # The spec file that carried the options was private while it existed, and is gone.
    assert spec_modes and all(mode in (0o600, None) for mode in spec_modes.values()), spec_modes
    assert 0o600 in spec_modes.values()
    assert not any(Path(path).exists() for path in spec_modes)
    # The task log holds spark-submit's and the driver's INFO output, the redacted options, no secret.
    assert "Kafka options of the source, from its connection" in log and '"kafka.sasl.jaas.config": "***"' in log
    assert " INFO " in log and "sasl.jaas.config = [hidden]" in log
    assert "--properties-file" in log  # conf's credentials reached spark-submit in the private file
    assert leaked_kinds(sealed, log) == []
    # spark-submit --verbose lists every setting as Spark redacts it (not as Airflow's masker would).
    shown_by_spark = [name for name in SPARK_CONF_NAMES if f"{name}={SPARK_REDACTED}" in log]
    assert shown_by_spark == list(SPARK_CONF_NAMES), sorted(set(SPARK_CONF_NAMES) - set(shown_by_spark))
    # Spark's event log: no secret anywhere, and each secret setting recorded as redacted, Hadoop's too.
    events, environment = event_log(tmp_path / "events")
    assert "SparkListenerSQLExecutionStart" in events  # the stream's plans are there to search
    assert leaked_kinds(sealed, events) == []
    recorded = {**environment["Spark Properties"], **environment["Hadoop Properties"]}
    for name in ("spark.hadoop.fs.azure.account.key.lake.dfs.core.windows.net",
                 "fs.azure.account.key.lake.dfs.core.windows.net", "spark.hadoop.fs.gs.auth.service.account.private.key",
                 "fs.gs.auth.service.account.private.key", *SPARK_CONF_NAMES):  # fmt: skip
        assert recorded.get(name) == SPARK_REDACTED, name
    assert recorded["spark.master"] == "local[2]"  # plain settings stay readable
    # XCom and the rendered template fields, as Airflow stored them.
    stored = stored_by_airflow(run)
    assert {"ingest:xcom:return_value", "ingest:rendered"} <= set(stored)
    assert {where: leaked_kinds(sealed, text) for where, text in stored.items() if leaked_kinds(sealed, text)} == {}


def test_wrong_password_fails_the_task_with_a_named_error_in_bounded_time(
    auth_broker, auth_topic, kafka_connection, spark_local, tmp_path, capfd
):
    wrong = "wrong-" + secrets.token_hex(6)
    config = {**auth_broker.client_config("alice", "SASL_PLAINTEXT", "SCRAM-SHA-512"), "sasl.password": wrong}
    operator = SparkStreamingSubmitOperator(
        task_id="ingest", spec=_spec(auth_topic("alice"), tmp_path),
        kafka_config_id=kafka_connection("kafka_wrong_password", config), conf={"spark.ui.enabled": "false"},
    )  # fmt: skip

    started = time.monotonic()
    with pytest.raises(KafkaAuthenticationError) as refused:
        operator.execute({})
    elapsed = time.monotonic() - started
    print(f"\nwrong password through the operator: {elapsed:.1f}s -> {str(refused.value)[:300]}")

    assert elapsed < REFUSAL_BOUND_SECONDS
    assert "'kafka_wrong_password'" in str(refused.value)
    assert wrong not in str(refused.value) and wrong not in "".join(capfd.readouterr())
