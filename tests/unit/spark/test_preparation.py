"""prepare_submission: the one spark-submit preparation of the stream operator and the Delta engine."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.exceptions import SparkSubmissionError
from airflow_spark_streaming.spark import jvm
from airflow_spark_streaming.spark.submission.preparation import prepare_submission
from airflow_spark_streaming.utils.redaction import (
    SPARK_DEFAULT_REDACTION_REGEX,
    SPARK_SECRET_NAME_REGEX,
    SPARK_SECRET_TEXT_REGEX,
)

S3_CONN = {"conn_type": "aws", "login": "AKIDEXAMPLE", "password": "s3cr3t-prep", "extra": {"region_name": "eu-west-1"}}


@pytest.fixture
def connections(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_PREP_LOCAL", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_PREP_SA",
        json.dumps({"conn_type": "spark", "host": "spark://127.0.0.1:7077", "extra": {"deploy-mode": "cluster"}}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_PREP", json.dumps(S3_CONN))


def test_secrets_leave_conf_for_the_properties_file_and_the_task_conf_wins(connections):
    run = prepare_submission(
        who="t", spark_conn_id="spark_prep_local", application="app.py", name="orders",
        storage_conn_id="lake_prep", paths=["s3://lake/ckpt", None],
        conf={"spark.kafka.token": "tok-1", "spark.sql.shuffle.partitions": 4, "spark.sql.extensions": "mine"},
        conf_defaults={"spark.sql.shuffle.partitions": "200", "spark.sql.adaptive.enabled": "false"},
        jvm_resolver="packages", submit_kwargs={"driver_memory": "1g"},
    )  # fmt: skip
    assert run.deployment == "client" and run.name == "orders" and run.submit_kwargs == {"driver_memory": "1g"}
    assert run.secret_conf == {
        "spark.hadoop.fs.s3a.access.key": "AKIDEXAMPLE",
        "spark.hadoop.fs.s3a.secret.key": "s3cr3t-prep",
        "spark.kafka.token": "tok-1",
    }
    assert not set(run.conf) & set(run.secret_conf) and "s3cr3t-prep" not in json.dumps(run.conf)
    assert run.conf["spark.sql.shuffle.partitions"] == "4"  # the task's own setting, as a string, over a default
    assert run.conf["spark.sql.extensions"] == "mine"  # over Delta's
    assert run.conf["spark.sql.adaptive.enabled"] == "false"  # a default where nothing set it
    # Spark's own redaction covers every secret name: its default, extended (the task set none).
    assert run.conf["spark.redaction.regex"] == f"{SPARK_DEFAULT_REDACTION_REGEX}|{SPARK_SECRET_NAME_REGEX}"
    assert run.conf["spark.sql.redaction.string.regex"] == SPARK_SECRET_TEXT_REGEX
    assert run.conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    assert run.packages == (jvm.DELTA_SPARK_PACKAGE, *jvm.S3A_PACKAGES) and run.jars == ()
    assert "s3cr3t-prep" not in repr(run)


def test_the_tasks_own_redaction_settings_are_extended_not_replaced(connections):
    own = {"spark.redaction.regex": r"(?i)corp\.vault", "spark.sql.redaction.options.regex": "(?i)dsn",
           "spark.redaction.string.regex": "corp=[^ ]+"}  # fmt: skip
    run = prepare_submission(who="t", spark_conn_id="spark_prep_local", application="app.py", name="q", conf=own)
    assert run.conf["spark.redaction.regex"] == rf"(?i)corp\.vault|{SPARK_SECRET_NAME_REGEX}"
    assert run.conf["spark.sql.redaction.options.regex"] == f"(?i)dsn|{SPARK_SECRET_NAME_REGEX}"
    # The SQL string regex is unset, so Spark would use the core one: that is what is extended.
    assert run.conf["spark.sql.redaction.string.regex"] == f"corp=[^ ]+|{SPARK_SECRET_TEXT_REGEX}"
    assert run.conf["spark.redaction.string.regex"] == "corp=[^ ]+"


def test_a_standalone_cluster_refuses_credentials_before_anything_is_resolved(connections, monkeypatch):
    monkeypatch.setattr(jvm, "resolve_with_maven", lambda coordinates: pytest.fail("resolved before the refusal"))
    with pytest.raises(SparkSubmissionError, match=r"spark\.hadoop\.fs\.s3a\.secret\.key.*client mode") as refused:
        prepare_submission(who="t", spark_conn_id="spark_prep_sa", application="app.py", name="q",
                           storage_conn_id="lake_prep", paths=["s3://lake/ckpt"])  # fmt: skip
    assert "s3cr3t-prep" not in str(refused.value) and str(refused.value).startswith("t: ")


def test_a_standalone_cluster_resolves_jars_with_maven_to_stage_them(connections, monkeypatch, tmp_path):
    resolved = []
    monkeypatch.setattr(jvm, "resolve_with_maven", lambda coordinates: resolved.extend(coordinates) or [])
    run = prepare_submission(who="t", spark_conn_id="spark_prep_sa", application="app.py", name="q", kafka=True,
                             jvm_resolver="packages")  # fmt: skip
    assert run.deployment == "standalone" and run.packages == ()
    assert resolved == [jvm.DELTA_SPARK_PACKAGE, jvm.KAFKA_SQL_PACKAGE]


def test_without_a_backend_review_the_connection_decides_nothing(connections):
    """The Delta engine's spark-submit runs here until the job ends: no backend reviews it."""
    run = prepare_submission(who="t", spark_conn_id="spark_prep_sa", application="app.py", name="q",
                             conf={"spark.hadoop.fs.s3a.secret.key": "x"}, jvm_resolver="packages",
                             backend_review=False)  # fmt: skip
    assert run.deployment is None and run.packages == (jvm.DELTA_SPARK_PACKAGE,)
    assert run.secret_conf == {"spark.hadoop.fs.s3a.secret.key": "x"}
