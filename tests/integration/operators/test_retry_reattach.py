"""A retry of the start task reattaches to the running driver, through Airflow's task state store (dag.test)."""

from __future__ import annotations

import json


def test_a_retry_after_a_worker_crash_reattaches_instead_of_submitting_again(airflow_db, tmp_path, monkeypatch, capfd):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from tests.support.streaming_helpers import read_delta

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path / "cache"))
    checkpoint = tmp_path / "ckpt"
    spec = {
        "query_name": "rate_to_delta",
        "checkpoint_location": str(checkpoint),
        "source": {"format": "rate", "options": {"rowsPerSecond": "20"}},
        "sink": {"format": "delta", "path": str(tmp_path / "table"), "output_mode": "append"},
        "trigger": {"processing_time": "2 seconds"},
        "lease_ttl_seconds": 15,
    }
    dag = DagBag(dag_folder="tests/dags").dags["streaming_start_retry"]
    run = dag.test(run_conf={"spec": spec, "checkpoint": str(checkpoint)})

    assert run.state == "success"
    start = run.get_task_instance("start")
    assert start.try_number == 2  # the first try died after submitting
    started = start.xcom_pull(task_ids="start")
    assert started["reattached"] and started["deployment"] == "client"
    # It was the task state store (ResumableJobMixin) that found the driver, not the checkpoint lease.
    task_output = capfd.readouterr().out
    assert "injected fault" in task_output
    assert "Reconnecting to existing job" in task_output and "status=RUNNING" in task_output
    # One submission only: the retry found it in the task state store and the driver still running.
    assert len(list((tmp_path / "cache" / "drivers").iterdir())) == 1
    assert RunnerControlHook(str(checkpoint)).get_submission()["submission_id"] == started["submission_id"]
    stopped = run.get_task_instance("stop").xcom_pull(task_ids="stop")
    assert stopped["was_running"] and not stopped["killed"] and not stopped["has_uncommitted_batch"]
    assert stopped["submission_id"] == started["submission_id"]
    values = [r["value"] for r in read_delta(tmp_path / "table")]
    assert len(values) == len(set(values)) > 0  # one query wrote, each rate row once
