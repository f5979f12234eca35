"""The streaming_supervisor example DAG, unchanged, with its ``spark_default`` connection pointing at YARN."""

from __future__ import annotations

import json

import pytest

from tests.support.streaming_helpers import produce_keyed, read_delta

pytestmark = [pytest.mark.kafka]


def test_streaming_supervisor_runs_on_yarn(
    airflow_db, yarn_cluster, yarn_conn, kafka_conn, kafka_broker, kafka_topic, tmp_path, monkeypatch
):
    from airflow.dag_processing.dagbag import DagBag

    # The same connection as yarn_conn, under the name the example DAG uses.
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({
        "conn_type": "spark", "host": "yarn",
        "extra": {"deploy-mode": "cluster", "yarn_resourcemanager_webapp_address": yarn_cluster.rm_url},
    }))  # fmt: skip
    monkeypatch.setenv("AIRFLOW__SPARK_STREAMING__JVM_RESOLVER", "maven")
    kafka_conn("kafka_default")
    # In full: a bare path would mean the cluster's fs.defaultFS (HDFS) to the driver.
    monkeypatch.setenv("AIRFLOW_VAR_SPARK_STREAMING_LAKE_ROOT", f"file://{tmp_path / 'lake'}")
    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 300, partitions=2)

    dag = DagBag(dag_folder="example_dags").dags["streaming_supervisor"]
    try:
        run = dag.test(run_conf={"topic": topic, "trigger_interval": "2 seconds", "max_offsets_per_trigger": 100,
                                 "batches_to_watch": 1, "max_lag": 0})  # fmt: skip
    finally:
        for app in yarn_cluster.applications(states="RUNNING,ACCEPTED"):
            yarn_cluster.kill(app["id"])  # only this test's query can be left behind
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert set(states.values()) == {"success"}, states
    started = run.get_task_instance("start_stream").xcom_pull(task_ids="start_stream")
    assert started["deployment"] == "yarn" and started["submission_id"].startswith("application_")
    stopped = run.get_task_instance("stop_stream").xcom_pull(task_ids="stop_stream")
    assert stopped["was_running"] and not stopped["killed"] and not stopped["has_uncommitted_batch"]
    assert yarn_cluster.application(started["submission_id"])["finalStatus"] == "SUCCEEDED"
    rows = read_delta(tmp_path / "lake" / f"{topic}_live")
    assert sorted(int(r["key"].removeprefix("key-")) for r in rows) == list(range(300))  # caught up, exactly once
