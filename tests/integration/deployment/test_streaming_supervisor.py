"""The example DAG ``streaming_supervisor`` through the real scheduler, LocalExecutor workers and triggerer.

Its ``start_stream`` submits a detached ``local[2]`` driver and waits for the query's first batch;
``lag_caught_up`` (``KafkaLagSensor``) and ``stream_is_healthy`` defer to the triggerer; ``stop_stream``
stops the query gracefully.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.deployment import (
    DriverSampler,
    committed_batches,
    create_topic,
    kill_drivers,
    log_lines,
    produce_orders,
    table_rows,
    wait_until,
)

pytestmark = pytest.mark.kafka

DAG_ID = "streaming_supervisor"
TASKS = ("stream_spec", "start_stream", "stream_is_healthy", "lag_caught_up", "stop_stream")
SUBMISSION_KEY = "spark_streaming_submission"  # SparkStreamingSubmitOperator.external_id_key


@pytest.fixture
def supervised(airflow_deployment, airflow_api, kafka_broker, lake):
    """A new topic for one run of the supervisor; its driver never outlives the test."""
    topic = create_topic(kafka_broker.bootstrap_servers, partitions=2, prefix="live")
    airflow_api.unpause(DAG_ID)
    query = f"live_{topic}"  # the supervisor's query name: its driver's --name
    yield {"topic": topic, "query": query, "table": lake / f"{topic}_live",
           "checkpoint": lake / "_checkpoints" / f"{topic}_live"}  # fmt: skip
    kill_drivers(query, airflow_deployment.marker)


def trigger_logs(deployment, run_id: str, task_id: str) -> list[Path]:
    folder = Path(deployment.home) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
    return sorted(folder.glob("attempt=*.log.trigger.*.log"))


def assert_stopped_after_reading_everything(api, run_id, supervised, count: int) -> dict:
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

    stopped = api.xcom(DAG_ID, run_id, "stop_stream")
    assert stopped["was_running"] and not stopped["killed"] and not stopped["has_uncommitted_batch"]
    assert RunnerControlHook(str(supervised["checkpoint"])).get_lease() is None
    keys = sorted(int(r["key"].removeprefix("order-")) for r in table_rows(supervised["table"]))
    assert keys == list(range(count))  # every order, exactly once
    return stopped


def test_streaming_supervisor_finishes_on_an_idle_topic(airflow_deployment, airflow_api, kafka_broker, supervised):
    """A backlog of 200 orders read 20 a batch, then nothing: the lag sensor waits in the triggerer, the run ends."""
    api = airflow_api
    produce_orders(kafka_broker.bootstrap_servers, supervised["topic"], 0, 200)
    run_id = api.trigger(DAG_ID, {"topic": supervised["topic"], "trigger_interval": "2 seconds",
                                  "max_offsets_per_trigger": 20, "max_lag": 0})  # fmt: skip
    run = api.wait_for_run(DAG_ID, run_id, timeout=900, deployment=airflow_deployment)

    assert run["state"] == "success", api.task_states(DAG_ID, run_id)
    assert api.task_states(DAG_ID, run_id) == dict.fromkeys(TASKS, "success")
    started = api.xcom(DAG_ID, run_id, "start_stream")
    assert started["mode"] == "long_running" and started["deployment"] == "client" and not started["reattached"]
    # The lag sensor deferred (the first batch read 20 of 200) and its trigger fired once, in the triggerer.
    (trigger_log,) = trigger_logs(airflow_deployment, run_id, "lag_caught_up")
    assert len(log_lines([trigger_log], "Trigger fired event")) == 1
    lag = api.xcom(DAG_ID, run_id, "lag_caught_up")
    assert lag["total_lag"] == 0 and len(lag["partitions"]) == 2
    health = api.xcom(DAG_ID, run_id, "stream_is_healthy")
    assert health["status"] == "OK" and health["lease_alive"]
    assert committed_batches(supervised["checkpoint"]) == list(range(10))  # 200 orders at 20 a batch, then idle
    assert_stopped_after_reading_everything(api, run_id, supervised, 200)


def test_a_worker_killed_while_start_stream_waits_is_retried_and_reattaches(airflow_deployment, airflow_api,
                                                                            kafka_broker, supervised):  # fmt: skip
    """SIGKILL the task process while it waits for the first batch: the retry reattaches; one driver, one query."""
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

    api = airflow_api
    produce_orders(kafka_broker.bootstrap_servers, supervised["topic"], 0, 60)
    with DriverSampler(supervised["query"], airflow_deployment.marker) as drivers:
        run_id = api.trigger(DAG_ID, {"topic": supervised["topic"], "trigger_interval": "2 seconds",
                                      "max_offsets_per_trigger": 100, "max_lag": 0})  # fmt: skip
        api.wait_for_task(DAG_ID, run_id, "start_stream", ["running"], timeout=300, deployment=airflow_deployment)
        # ResumableJobMixin stores the submission before it waits for the query.
        wait_until(lambda: SUBMISSION_KEY in api.task_state(DAG_ID, run_id, "start_stream"), 120,
                   "the submission in start_stream's task state store")  # fmt: skip
        submission = api.task_state(DAG_ID, run_id, "start_stream")[SUBMISSION_KEY]
        task = api.task_instance(DAG_ID, run_id, "start_stream")
        task_process = Path(f"/proc/{task['pid']}/cmdline").read_bytes()
        assert task["try_number"] == 1 and task_process.startswith(b"airflow worker")
        assert committed_batches(supervised["checkpoint"]) == []  # still waiting for the first batch
        os.kill(task["pid"], signal.SIGKILL)  # the worker's task process dies, the driver it submitted does not

        run = api.wait_for_run(DAG_ID, run_id, timeout=900, deployment=airflow_deployment)

    tries = api.task_tries(DAG_ID, run_id, "start_stream")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    started = api.xcom(DAG_ID, run_id, "start_stream")
    assert started["reattached"] and started["submission_id"] == submission["submission_id"]
    # One driver: the retry submitted nothing, and no second driver ran beside the first at any moment.
    assert drivers.seen == {submission["pid"]} and drivers.most_at_once == 1
    assert (
        RunnerControlHook(str(supervised["checkpoint"])).get_submission()["submission_id"] == started["submission_id"]
    )
    assert run["state"] == "success", api.task_states(DAG_ID, run_id)
    stopped = assert_stopped_after_reading_everything(api, run_id, supervised, 60)
    assert stopped["submission_id"] == submission["submission_id"]
