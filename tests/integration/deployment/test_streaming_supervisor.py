"""The example DAG ``streaming_supervisor`` through the real scheduler, LocalExecutor workers and triggerer.

Its ``start_stream`` submits a detached ``local[2]`` driver and waits for the query's first batch;
``lag_caught_up`` (``KafkaLagSensor``) and ``stream_is_healthy`` defer to the triggerer; ``stop_stream``
stops the query gracefully. The worker-crash test also runs the same stream with its driver on the
session's standalone cluster (the test DAG ``cluster_supervisor``).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.deployment import (
    DriverSampler,
    MasterSampler,
    committed_batches,
    create_topic,
    kill_cluster_driver,
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


def assert_stopped_after_reading_everything(api, dag_id, run_id, supervised, count: int) -> dict:
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

    stopped = api.xcom(dag_id, run_id, "stop_stream")
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
    assert_stopped_after_reading_everything(api, DAG_ID, run_id, supervised, 200)


def on_the_cluster(request, api, query: str) -> MasterSampler:
    """Point the connection ``spark_standalone`` at the session's cluster; a sampler of its Master for ``query``.

    Whatever driver the test started there is killed through the Master at teardown: the Worker
    started it, so the deployment's own cleanup does not reach it.
    """
    cluster = request.getfixturevalue("spark_cluster")
    api.create_connection("spark_standalone", "spark", host=cluster.master_url,
                          extra={"deploy-mode": "cluster", "rest-port": cluster.rest_port})  # fmt: skip
    master = MasterSampler(cluster, query)

    def kill_what_is_left() -> None:
        for driver_id in master.active_drivers():
            kill_cluster_driver(cluster, driver_id)

    request.addfinalizer(kill_what_is_left)
    return master


def cluster_driver_state(cluster, driver_id: str) -> str | None:
    state = cluster.master_state()
    for driver in state.get("activedrivers", []) + state.get("completeddrivers", []):
        if driver["id"] == driver_id:
            return driver["state"]
    return None


@pytest.mark.parametrize(
    "driver_on", [pytest.param("client", id="local"), pytest.param("standalone", marks=pytest.mark.cluster)]
)
def test_a_worker_killed_while_start_stream_waits_is_retried_and_reattaches(driver_on, request, airflow_deployment,
                                                                            airflow_api, kafka_broker,
                                                                            supervised):  # fmt: skip
    """SIGKILL the task process while it waits for the first batch: the retry reattaches; one driver, one query.

    ``local`` (deployment ``client``): the example DAG, its driver detached on the worker (``local[2]``);
    every driver JVM on this machine is sampled. ``standalone``: the same stream from ``cluster_supervisor``,
    its driver on the session's standalone cluster; the Master's drivers and applications are sampled.
    """
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

    api = airflow_api
    if driver_on == "standalone":
        dag_id, sampler = "cluster_supervisor", on_the_cluster(request, api, supervised["query"])
        api.unpause(dag_id)
    else:
        dag_id, sampler = DAG_ID, DriverSampler(supervised["query"], airflow_deployment.marker)
    produce_orders(kafka_broker.bootstrap_servers, supervised["topic"], 0, 60)
    with sampler:
        run_id = api.trigger(dag_id, {"topic": supervised["topic"], "trigger_interval": "2 seconds",
                                      "max_offsets_per_trigger": 100, "max_lag": 0})  # fmt: skip
        api.wait_for_task(dag_id, run_id, "start_stream", ["running"], timeout=300, deployment=airflow_deployment)
        # ResumableJobMixin stores the submission before it waits for the query.
        wait_until(lambda: SUBMISSION_KEY in api.task_state(dag_id, run_id, "start_stream"), 120,
                   "the submission in start_stream's task state store")  # fmt: skip
        submission = api.task_state(dag_id, run_id, "start_stream")[SUBMISSION_KEY]
        task = api.task_instance(dag_id, run_id, "start_stream")
        task_process = Path(f"/proc/{task['pid']}/cmdline").read_bytes()
        assert task["try_number"] == 1 and task_process.startswith(b"airflow worker")
        assert committed_batches(supervised["checkpoint"]) == []  # still waiting for the first batch
        os.kill(task["pid"], signal.SIGKILL)  # the worker's task process dies, the driver it submitted does not

        run = api.wait_for_run(dag_id, run_id, timeout=900, deployment=airflow_deployment)

    tries = api.task_tries(dag_id, run_id, "start_stream")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    started = api.xcom(dag_id, run_id, "start_stream")
    assert started["reattached"] and started["submission_id"] == submission["submission_id"]
    assert started["deployment"] == submission["deployment"] == driver_on
    # One driver: the retry submitted nothing, and no second driver ran beside the first at any moment.
    if driver_on == "standalone":
        drivers, most_at_once, driver = sampler.drivers_seen, sampler.most_drivers_at_once, submission["submission_id"]
        assert sampler.samples > 20  # sampled all along, not once
        assert sampler.apps_seen == {started["app_id"]} and sampler.most_apps_at_once == 1
    else:
        drivers, most_at_once, driver = sampler.seen, sampler.most_at_once, submission["pid"]
    assert drivers == {driver} and most_at_once == 1
    assert (
        RunnerControlHook(str(supervised["checkpoint"])).get_submission()["submission_id"] == started["submission_id"]
    )
    assert run["state"] == "success", api.task_states(dag_id, run_id)
    stopped = assert_stopped_after_reading_everything(api, dag_id, run_id, supervised, 60)
    assert stopped["submission_id"] == submission["submission_id"]
    if driver_on == "standalone":  # stopped gracefully: the driver ended by itself, the Master killed nothing
        cluster, driver_id = sampler.cluster, submission["submission_id"]
        wait_until(lambda: cluster_driver_state(cluster, driver_id) == "FINISHED", 60,
                   lambda: f"{driver_id} to finish (now {cluster_driver_state(cluster, driver_id)})")  # fmt: skip
    print(f"{driver_on}: tries {[(t['try_number'], t['state']) for t in tries]}, submission {driver}, drivers seen "
          f"{drivers} (at most {most_at_once} at once), rows {len(table_rows(supervised['table']))}, "
          f"batches {committed_batches(supervised['checkpoint'])}, app {started.get('app_id')}")  # fmt: skip
