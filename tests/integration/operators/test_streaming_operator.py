"""SparkStreamingSubmitOperator: bounded runs through real spark-submit, judged by the checkpoint."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.exceptions import StreamingRunIncompleteError
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from tests.support.sealed_run import ProcessListWatch, leaked_kinds
from tests.support.secret_kinds import needles, secret_settings
from tests.support.streaming_helpers import kafka_to_delta_spec, produce_keyed, read_delta

pytestmark = pytest.mark.kafka

SECRET = "s3cr3t-Value-42"
#: The Kafka client's credential options (SASL JAAS with its password, TLS key and store passwords, the PEM key)
#: and the Schema Registry's user info, as a spec's source options carry them.
KAFKA_SPEC_SECRET_OPTIONS = (
    "kafka.sasl.jaas.config", "kafka.ssl.keystore.password", "kafka.ssl.truststore.password",
    "kafka.ssl.keystore.key", "kafka.schema.registry.basic.auth.user.info",
)  # fmt: skip


@pytest.fixture
def spark_local(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))


def test_bounded_kafka_to_delta_reports_batches_and_rows(
    kafka_broker, kafka_topic, spark_local, spark_connect_conn, tmp_path, mocker, capfd
):
    import airflow.providers.apache.spark.hooks.spark_submit as spark_submit

    topic = kafka_topic(partitions=4)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 400, partitions=4)
    # Every Kafka credential option in the spec: a PLAINTEXT broker ignores them, so the run reads as usual.
    kafka_secrets = secret_settings(KAFKA_SPEC_SECRET_OPTIONS, "spec-option-")
    spec = kafka_to_delta_spec(
        kafka_broker.bootstrap_servers, topic, tmp_path / "table", tmp_path / "ckpt", maxOffsetsPerTrigger=150,
        **{"kafka.ssl.key.password": SECRET}, **kafka_secrets,
    )  # fmt: skip
    popen = mocker.patch.object(spark_submit.subprocess, "Popen", wraps=spark_submit.subprocess.Popen)
    operator = SparkStreamingSubmitOperator(
        task_id="ingest", spec=spec, conf={"spark.hadoop.fs.s3a.secret.key": SECRET, "spark.ui.enabled": "false"}
    )
    sealed = {SECRET: "kafka.ssl.key.password", **needles(kafka_secrets)}

    with ProcessListWatch(sealed, spec["query_name"]) as watch:
        first = operator.execute({})

    assert (first["batches_committed"], first["first_batch"], first["last_batch"]) == (3, 0, 2)
    assert first["rows_processed"] == 400 and first["progress_events"] == 3
    assert len(read_delta(tmp_path / "table")) == 400
    # The secret reached neither the command line, nor the log, nor XCom.
    command = " ".join(str(part) for part in popen.call_args.args[0])
    assert "--spec-file" in command and "--properties-file" in command and SECRET not in command
    assert watch.runs_seen > 0 and watch.leaks == set(), f"on a command line: {sorted(watch.leaks)}"
    log = "".join(capfd.readouterr())
    assert "Stream spec:" in log and '"kafka.ssl.key.password": "***"' in log
    assert leaked_kinds(sealed, log + json.dumps(first)) == []

    # The incremental run reads the checkpoint the spark-submit run left; its own transport is not the subject here,
    # so it runs on the shared Spark Connect server (one spark-submit less).
    produce_keyed(kafka_broker.bootstrap_servers, topic, 100, partitions=4)
    second = SparkStreamingSubmitOperator(task_id="ingest", spec=spec, spark_conn_id=spark_connect_conn()).execute({})
    assert second["spark_transport"] == "connect"
    assert (second["batches_committed"], second["first_batch"], second["rows_processed"]) == (1, 3, 100)
    assert len(read_delta(tmp_path / "table")) == 500
    assert second["committed_sources"] == [{topic: {"0": 125, "1": 125, "2": 125, "3": 125}}]


def test_a_clean_exit_with_an_uncommitted_batch_fails_the_task(spark_local, tmp_path):
    from pathlib import Path

    app = Path(__file__).parents[2] / "apps" / "stop_mid_batch.py"
    operator = SparkStreamingSubmitOperator(
        task_id="user_app", application=str(app), checkpoint=str(tmp_path / "ckpt"),
        application_args=[str(tmp_path / "ckpt")], conf={"spark.ui.enabled": "false"},
    )  # fmt: skip
    with pytest.raises(StreamingRunIncompleteError, match=r"batch \d+ in .* is planned and not committed"):
        operator.execute({})
