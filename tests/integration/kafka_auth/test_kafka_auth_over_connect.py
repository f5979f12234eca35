"""A SCRAM-authenticated Kafka ingest run on the shared Spark Connect server keeps the connection's secrets private.

The options a ``kafka`` connection fills in travel to the server inside the query's plan. They must
not reach the server's log, the plans it records (its event log: every SQL execution's physical
plan and plan info), the task log, the process list or the result.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from tests.integration.kafka_auth.conftest import produce
from tests.support.streaming_helpers import read_delta

pytestmark = pytest.mark.kafka


def test_scram_ingest_over_connect_keeps_the_password_out_of_the_servers_log_and_plans(
    auth_broker, auth_topic, kafka_connection, spark_connect_server, spark_connect_conn, tmp_path, caplog, capfd
):
    from airflow_spark_streaming.kafka.options import jaas_quote
    from tests.support.sealed_run import ProcessListWatch

    config = auth_broker.client_config("alice", "SASL_PLAINTEXT", "SCRAM-SHA-512")
    password = config["sasl.password"]
    topic = auth_topic("alice", partitions=2)
    produce(config, topic, 60, partitions=2)
    kafka_connection("kafka_alice_connect", config)
    conn_id = spark_connect_conn()
    sealed = {password: "sasl.password", jaas_quote(password)[1:-1]: "sasl.password as JAAS quotes it"}
    spec = {
        "query_name": f"alice_connect_{tmp_path.name[-12:]}",
        "checkpoint_location": str(tmp_path / "ckpt"),
        "source": {"format": "kafka", "kafka_config_id": "kafka_alice_connect",
                   "options": {"subscribe": topic, "startingOffsets": "earliest", "maxOffsetsPerTrigger": 25,
                               "groupIdPrefix": "alice.spark"}},
        "transform_sql": "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value, partition, offset "
                         "FROM source",
        "sink": {"format": "delta", "path": str(tmp_path / "table")},
        "trigger": {"available_now": True},
    }  # fmt: skip
    server_home = Path(spark_connect_server.home)
    before = {p: p.stat().st_size for p in (server_home / "events").rglob("*") if p.is_file()}

    caplog.set_level(logging.INFO)
    with ProcessListWatch({**sealed, "LoginModule": "a JAAS config"}, "SparkConnectServer") as watch:
        result = SparkStreamingSubmitOperator(task_id="ingest", spec=spec, spark_conn_id=conn_id).execute({})
    log = caplog.text + "".join(capfd.readouterr())

    assert sorted((r["key"], r["partition"], r["offset"]) for r in read_delta(tmp_path / "table")) == sorted(
        (f"key-{i}", i % 2, i // 2) for i in range(60)
    )
    assert (result["batches_committed"], result["rows_processed"]) == (3, 60)
    assert '"kafka.sasl.jaas.config": "***"' in log
    # The server's own record of the run: its log, and the plans in its event log written since.
    server_log = (server_home / "server.log").read_text(errors="replace")
    # What makes searching the server's log meaningful is there: this query's streaming lines (its start and
    # logical plan) and the Kafka clients' config dumps, where a JAAS config would show.
    assert f"Starting {spec['query_name']} [id = " in server_log
    assert "sasl.jaas.config = [hidden]" in server_log
    events = "".join(p.read_text(errors="replace")[before.get(p, 0):]
                     for p in (server_home / "events").rglob("*") if p.is_file())  # fmt: skip
    assert "KafkaMicroBatchStream" in events or "kafka" in events.lower()  # the plans of this run are there
    if "kafka.sasl.jaas.config" in events:  # where a plan shows the options, Spark redacted the JAAS config
        assert "*********(redacted)" in events
    for where, text in {"server log": server_log, "event log": events, "task log": log, "result": str(result)}.items():
        assert [kind for needle, kind in sealed.items() if needle in text] == [], where
    assert watch.leaks == set(), f"on a command line: {sorted(watch.leaks)}"
