"""The example DAGs run end to end with real Airflow (dag.test), Spark, Kafka and Delta."""

from __future__ import annotations

import json

import pytest

from tests.support.streaming_helpers import produce_keyed, read_delta

pytestmark = pytest.mark.kafka


@pytest.fixture
def local_stack_env(kafka_conn, tmp_path, monkeypatch):
    """What the example DAGs read: the spark and kafka connections and the lake-root Variable."""
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    kafka_conn("kafka_default")
    monkeypatch.setenv("AIRFLOW_VAR_SPARK_STREAMING_LAKE_ROOT", str(tmp_path / "lake"))


def test_kafka_to_delta_incremental_dag_test(
    airflow_db, local_stack_env, spark_connect_conn, kafka_broker, kafka_topic, tmp_path, capfd
):
    import re

    # The DAG's spark_default connection names the shared Spark Connect server: the subject is the DAG's tasks
    # together, not the submission (the streaming_supervisor DAG below runs through spark-submit).
    spark_connect_conn("spark_default")

    topic = kafka_topic(partitions=3)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 900, partitions=3)

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder="example_dags").dags["kafka_to_delta_incremental"]
    run = dag.test(run_conf={"topic": topic, "max_offsets_per_trigger": 400})

    assert run.state == "success"
    rows = read_delta(tmp_path / "lake" / topic)
    assert sorted(int(r["key"].removeprefix("key-")) for r in rows) == list(range(900))
    assert {r["topic"] for r in rows} == {topic}
    # 900 records at 400 per trigger: batches 0, 1 and 2.
    commits = tmp_path / "lake" / "_checkpoints" / topic / "commits"
    assert sorted(p.name for p in commits.iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    ingest = run.get_task_instance("ingest").xcom_pull(task_ids="ingest")
    assert (ingest["batches_committed"], ingest["rows_processed"]) == (3, 900)
    assert ingest["spark_transport"] == "connect"
    # One task-log line per committed batch, from the query's progress events, against the target fixed at start
    # (maxOffsetsPerTrigger 400 over three partitions: 133 records each per batch).
    lines = re.findall(
        r"batch (\d): ([\d,]+) rows, [\d,]+ rows/s; ([\d,]+) of ([\d,]+) records \((\d+)%\), (ETA \d+s|done)",
        "".join(capfd.readouterr()),
    )  # fmt: skip  (dag.test writes the task log to stdout)
    assert [line[:5] for line in lines] == [
        ("0", "399", "399", "900", "44"), ("1", "399", "798", "900", "89"), ("2", "102", "900", "900", "100")
    ]  # fmt: skip
    assert lines[-1][5] == "done" and lines[0][5].startswith("ETA")
    progress = run.get_task_instance("progress_check").xcom_pull(task_ids="progress_check")
    assert progress["latest_committed_batch"] == 2 and not progress["has_uncommitted_batch"]
    assert progress["committed_sources"][0]["kafka"] == {topic: {"0": 300, "1": 300, "2": 300}}
    lag = run.get_task_instance("lag_check").xcom_pull(task_ids="lag_check")
    assert lag["total_lag"] == 0 and len(lag["partitions"]) == 3
    summary = run.get_task_instance("table_summary").xcom_pull(task_ids="table_summary")
    assert summary["rows"] == 900 and summary["files"] >= 3


@pytest.mark.parametrize("min_small_files, compacted", [(50, True), (100_000, False)], ids=["pays-off", "not-needed"])
def test_delta_maintenance_dag_test(airflow_db, table_copy, min_small_files, compacted):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_spark_streaming.hooks.delta import DeltaTableHook
    from tests.support.delta_fixtures import rows_of

    files_before, rows = DeltaTableHook(str(table_copy)).get_stats().num_files, rows_of(table_copy)
    dag = DagBag(dag_folder="example_dags").dags["delta_maintenance"]
    run = dag.test(run_conf={"table_uri": str(table_copy), "min_small_files": min_small_files})

    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    stats = DeltaTableHook(str(table_copy)).get_stats()
    assert rows_of(table_copy) == rows
    if compacted:
        assert set(states.values()) == {"success"}
        optimize = run.get_task_instance("optimize").xcom_pull(task_ids="optimize")
        assert (optimize["files_before"], optimize["files_after"], optimize["engine"]) == (files_before, 3, "native")
        dry_run = run.get_task_instance("vacuum_dry_run").xcom_pull(task_ids="vacuum_dry_run")
        assert dry_run["dry_run"] and dry_run["retention_hours"] == 168 and dry_run["files_to_delete"] == 0
        assert stats.num_files == 3
    else:
        assert set(states.values()) == {"skipped"}
        assert stats.num_files == files_before and stats.last_optimize is None


def test_streaming_supervisor_dag_test_finishes_on_a_quiet_topic(
    airflow_db, local_stack_env, kafka_broker, kafka_topic, tmp_path, monkeypatch
):
    """A backlog the first batch reads, then nothing: the caught-up, idle query is OK and the DAG finishes."""
    from airflow.dag_processing.dagbag import DagBag

    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path / "cache"))
    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 60, partitions=2)

    dag = DagBag(dag_folder="example_dags").dags["streaming_supervisor"]
    try:
        run = dag.test(run_conf={"topic": topic, "trigger_interval": "2 seconds", "max_offsets_per_trigger": 100,
                                 "max_lag": 0})  # fmt: skip
    finally:
        from tests.support.runner_drivers import kill_leftover_drivers

        kill_leftover_drivers(str(tmp_path))
    assert run.state == "success"
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {
        "stream_spec": "success", "start_stream": "success",
        "stream_is_healthy": "success", "lag_caught_up": "success", "stop_stream": "success",
    }  # fmt: skip
    health = run.get_task_instance("stream_is_healthy").xcom_pull(task_ids="stream_is_healthy")
    assert health["status"] == "OK" and health["lease_alive"]
    assert health["last_committed_batch"] == 0  # one batch read the backlog; the quiet topic gave no more
    assert sum(p["lag"] for p in health["partitions"]) == 0
    stopped = run.get_task_instance("stop_stream").xcom_pull(task_ids="stop_stream")
    assert stopped["was_running"] and not stopped["killed"] and not stopped["has_uncommitted_batch"]
    checkpoint = tmp_path / "lake" / "_checkpoints" / f"{topic}_live"
    assert RunnerControlHook(str(checkpoint)).get_lease() is None
    rows = read_delta(tmp_path / "lake" / f"{topic}_live")
    assert sorted(int(r["key"].removeprefix("key-")) for r in rows) == list(range(60))  # caught up, exactly once


def test_airflow_lists_no_import_errors_for_the_example_dags(airflow_db):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(Path("example_dags").resolve())}
    env.pop("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", None)  # the default bundle: the DAGs folder
    reserialized = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "reserialize"], env=env, capture_output=True, text=True, timeout=300
    )
    assert reserialized.returncode == 0, reserialized.stderr[-2000:]
    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "list-import-errors", "--output", "json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert _json_lines(listed.stdout) in ([], [[]])
    dags = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "list", "--output", "json"], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    ids = {d["dag_id"] for listing in _json_lines(dags.stdout) for d in listing}
    assert {"kafka_to_delta_incremental", "streaming_supervisor", "delta_maintenance"} <= ids


def _json_lines(output: str) -> list:
    """The JSON documents an Airflow CLI printed with --output json, skipping its log lines."""
    return [json.loads(line) for line in output.splitlines() if line.startswith(("[{", "[]", "{"))]
