"""The provider end to end on S3 with real spark-submit and ``dag.test()`` (DAGs in tests/dags/s3_lake_dags.py).

One module-scoped ingest (Kafka -> Delta and Kafka -> Parquet sink, checkpoints and
tables on ``s3a://``) feeds the sensor, maintenance and secrecy tests.
"""

from __future__ import annotations

import json

import pytest

from tests.support.sealed_run import CapturedOutput, ProcessListWatch
from tests.support.streaming_helpers import produce_keyed

pytestmark = pytest.mark.kafka

ROWS, PARTITIONS, PER_TRIGGER = 900, 3, 300
BATCHES = ROWS // PER_TRIGGER  # 3 micro-batches, one file per Kafka partition each


def _dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder="tests/dags/s3_lake_dags.py").dags[dag_id]


@pytest.fixture(scope="module")
def s3_lake(s3_server, kafka_broker, airflow_db):
    """Run ``s3_ingest`` once against a fresh bucket; yield what the tests check."""
    bucket = "lake-dags"
    s3_server.client().create_bucket(Bucket=bucket)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_LAKE_S3", s3_server.connection_uri())
        env.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
        env.setenv(
            "AIRFLOW_CONN_KAFKA_DEFAULT",
            json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_broker.bootstrap_servers}}),
        )
        env.setenv("AIRFLOW__SPARK_STREAMING__JVM_RESOLVER", "maven")  # hadoop-aws + SDK from the shared cache
        from confluent_kafka.admin import AdminClient, NewTopic

        topic = "s3-orders"
        admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(30)
        produce_keyed(kafka_broker.bootstrap_servers, topic, ROWS, partitions=PARTITIONS)
        root = f"s3a://{bucket}/lake"
        secret = {s3_server.secret_access_key: "the aws connection's secret key"}
        with ProcessListWatch(secret, "SparkSubmit") as watch, CapturedOutput() as output:
            run = _dag("s3_ingest").test(
                run_conf={"topic": topic, "bootstrap": kafka_broker.bootstrap_servers, "root": root,
                          "max_offsets": PER_TRIGGER}
            )  # fmt: skip
        yield {"run": run, "root": root, "bucket": bucket, "topic": topic, "watch": watch, "server": s3_server,
               "log": output.text}  # fmt: skip


def _xcom(run, task_id: str):
    return run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


def test_availablenow_ingest_writes_table_and_checkpoint_on_s3(s3_lake):
    from deltalake import DeltaTable

    from airflow_spark_streaming.hooks.storage import StorageHook

    run = s3_lake["run"]
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == dict.fromkeys(
        ["specs", "ingest", "ingest_raw", "progress_poke", "progress_deferred", "lag_poke", "lag_deferred"], "success"
    )
    assert (_xcom(run, "ingest")["batches_committed"], _xcom(run, "ingest")["rows_processed"]) == (BATCHES, ROWS)
    hook = StorageHook("lake_s3")
    table = DeltaTable(f"s3://{s3_lake['bucket']}/lake/table", storage_options=hook.delta_storage_options())
    keys = sorted(int(k.removeprefix("key-")) for k in table.to_pandas()["key"])
    assert keys == list(range(ROWS))
    commits = hook.object_storage_path(f"{s3_lake['root']}/_checkpoints/delta/commits")
    assert sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit()) == list(range(BATCHES))


def test_progress_and_lag_sensors_read_the_s3_checkpoint_poke_and_deferred(s3_lake):
    run = s3_lake["run"]
    for mode in ("poke", "deferred"):
        progress = _xcom(run, f"progress_{mode}")
        assert progress["latest_committed_batch"] == BATCHES - 1 and not progress["has_uncommitted_batch"], progress
        offsets = progress["committed_sources"][0]["kafka"][s3_lake["topic"]]
        assert offsets == {str(p): ROWS // PARTITIONS for p in range(PARTITIONS)}
        lag = _xcom(run, f"lag_{mode}")
        assert lag["total_lag"] == 0 and len(lag["partitions"]) == PARTITIONS, lag


def test_secrets_stay_out_of_process_list_task_log_xcom_and_rendered_fields(s3_lake):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    secret = s3_lake["server"].secret_access_key
    watch = s3_lake["watch"]
    assert watch.samples > 20 and watch.runs_seen > 0 and watch.leaks == set(), watch.leaks
    # The task log: spark-submit's command and output, the driver's log, the operators' and sensors' lines.
    log = s3_lake["log"]
    assert "--properties-file" in log and "s3a://" in log and "Stream spec:" in log, log[-2000:]
    assert secret not in log
    run = s3_lake["run"]
    for ti in run.get_task_instances():
        assert secret not in json.dumps(ti.xcom_pull(task_ids=ti.task_id), default=str)
    with create_session() as session:
        rendered = session.query(RenderedTaskInstanceFields).filter_by(dag_id="s3_ingest", run_id=run.run_id).all()
        assert rendered and all(secret not in json.dumps(r.rendered_fields, default=str) for r in rendered)


def test_maintenance_on_the_s3_table(s3_lake):
    from deltalake import DeltaTable

    from airflow_spark_streaming.hooks.storage import StorageHook

    options = StorageHook("lake_s3").delta_storage_options()
    table_uri = f"s3://{s3_lake['bucket']}/lake/table"
    files_before = len(DeltaTable(table_uri, storage_options=options).file_uris())
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_LAKE_S3", s3_lake["server"].connection_uri())
        env.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
        env.setenv("AIRFLOW__SPARK_STREAMING__JVM_RESOLVER", "maven")
        run = _dag("s3_maintenance").test(run_conf={"root": s3_lake["root"]})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {**dict.fromkeys(states, "success"), "vacuum_refused": "failed"}, states

    small = _xcom(run, "small_files")
    assert small["decision"]["warranted"] and small["stats"]["num_files"] == files_before
    native, spark = _xcom(run, "optimize_native"), _xcom(run, "optimize_spark")
    assert native["engine"] == "native" and spark["engine"] == "spark"
    per_partition = files_before // PARTITIONS
    assert native["files_after"] == files_before - per_partition + 1, native
    assert spark["files_after"] == files_before - 2 * per_partition + 2, spark
    table = DeltaTable(table_uri, storage_options=options)
    assert sorted(int(k.removeprefix("key-")) for k in table.to_pandas()["key"]) == list(range(ROWS))
    operations = [h["operation"] for h in table.history()]
    assert operations.count("OPTIMIZE") == 2

    dry = _xcom(run, "vacuum_dry_run")
    assert dry["dry_run"] and dry["files_deleted"] == 0
    vacuum = _xcom(run, "vacuum_run")
    assert vacuum["files_deleted"] == vacuum["files_to_delete"]

    converted = _xcom(run, "convert")
    assert converted["mode"] == "copy" and converted["rows"] == ROWS, converted
    target = DeltaTable(f"s3://{s3_lake['bucket']}/lake/converted", storage_options=options)
    assert sorted(int(k.removeprefix("key-")) for k in target.to_pandas()["key"]) == list(range(ROWS))
