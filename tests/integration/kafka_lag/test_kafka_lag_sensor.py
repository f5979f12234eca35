"""KafkaLagSensor against the real broker: poke, deferred, the ceiling alert, and dag.test()."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_spark_streaming.checks.lag import LagCheck
from airflow_spark_streaming.exceptions import KafkaLagCeilingError
from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
from airflow_spark_streaming.triggers.kafka_lag import KafkaLagTrigger
from devstack.process import wait_for
from tests.support.streaming_helpers import produce_keyed, run_available_now

pytestmark = pytest.mark.kafka


@pytest.fixture
def lagging_query(spark, kafka_broker, kafka_topic, kafka_conn, tmp_path):
    """A query that has read 60 records and is 30 behind; ``catch_up()`` runs it again."""
    topic = kafka_topic(partitions=3)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 60, partitions=3)
    checkpoint = tmp_path / "ckpt"

    def catch_up():
        run_available_now(spark, kafka_broker.bootstrap_servers, checkpoint, max_offsets=1000, subscribe=topic)

    catch_up()
    produce_keyed(kafka_broker.bootstrap_servers, topic, 30, partitions=3)
    kafka_conn()
    return {"checkpoint": str(checkpoint), "catch_up": catch_up, "topic": topic}


def test_poke_pushes_the_report(lagging_query):
    low = KafkaLagSensor(task_id="lag", checkpoint=lagging_query["checkpoint"], max_partition_lag=10).poke({})
    assert low.is_done and low.xcom_value["total_lag"] == 30 and low.xcom_value["max_lag"] == 10
    assert not KafkaLagSensor(task_id="lag", checkpoint=lagging_query["checkpoint"], max_total_lag=29).poke({}).is_done


def test_ceiling_alert_when_lag_stays_high(lagging_query):
    sensor = KafkaLagSensor(
        task_id="lag", checkpoint=lagging_query["checkpoint"], max_total_lag=0, ceiling=10, ceiling_for=1
    )
    first = time.monotonic()
    assert not sensor.poke({}).is_done
    deadline = first + 60
    with pytest.raises(KafkaLagCeilingError, match="total lag 30.*above the ceiling 10"):
        while True:  # poke until the alert: it must come, and not before ceiling_for has passed
            assert not sensor.poke({}).is_done
            assert time.monotonic() < deadline, "the lag stayed above the ceiling but no alert came"
            time.sleep(0.1)
    assert time.monotonic() - first >= 1.0


def test_deferred_wait_ends_when_the_query_catches_up(lagging_query):
    sensor = KafkaLagSensor(
        task_id="lag", checkpoint=lagging_query["checkpoint"], max_total_lag=0, deferrable=True, poke_interval=0.5
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, KafkaLagTrigger) and deferred.value.method_name == "execute_complete"
    revived = KafkaLagTrigger(**trigger.serialize()[1])
    checks_done = []
    evaluate = revived.check.evaluate
    revived.check.evaluate = lambda: checks_done.append(evaluate()) or checks_done[-1]

    result = {}

    def wait():
        result["event"] = asyncio.run(asyncio.wait_for(revived.run().__anext__(), timeout=120))

    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_for(lambda: len(checks_done) >= 2 or not waiter.is_alive(), timeout=60, what="two trigger checks")
    assert waiter.is_alive() and "event" not in result  # checked twice, still 30 behind: no event yet
    assert all(v.state == "waiting" for v in checks_done)
    lagging_query["catch_up"]()
    waiter.join(130)
    event = result["event"]
    assert event.payload["state"] == "met" and event.payload["payload"]["total_lag"] == 0
    assert sensor.execute_complete({}, event.payload)["total_lag"] == 0


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_lag_sensor_in_dag_test(airflow_db, lagging_query, mode, caplog, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    caplog.set_level(logging.INFO)
    dag = DagBag(dag_folder=str(Path(__file__).parents[2] / "dags")).dags[f"kafka_lag_sensor_{mode}"]
    # Catch up only once the task has seen the lag (so it waited, and the deferred one deferred).
    seen = Path(lagging_query["checkpoint"]).parent / "check-states"  # a file: the task may run in a fork
    evaluate = LagCheck.evaluate

    def counting_evaluate(check):
        verdict = evaluate(check)
        with seen.open("a") as states:
            states.write(f"{verdict.state}\n")
        return verdict

    monkeypatch.setattr(LagCheck, "evaluate", counting_evaluate)

    def catch_up_after_a_wait():
        wait_for(lambda: seen.exists() and "waiting" in seen.read_text().split(), timeout=120,
                 what="the sensor's first check")  # fmt: skip
        lagging_query["catch_up"]()

    catcher = threading.Thread(target=catch_up_after_a_wait)
    catcher.start()
    try:
        run = dag.test(run_conf={"checkpoint": lagging_query["checkpoint"], "max_lag": 0})
    finally:
        catcher.join()
    assert run.state == "success" and "waiting" in seen.read_text().split()
    assert run.get_task_instance("total").xcom_pull(task_ids="total") == 0
    report = run.get_task_instance("lag_is_low").xcom_pull(task_ids="lag_is_low")
    assert {p["partition"]: p["checkpoint_offset"] for p in report["partitions"]} == {0: 30, 1: 30, 2: 30}
    assert ("running trigger in line" in caplog.text) == (mode == "deferred")


def test_fail_if_stopped_fails_a_wait_on_a_query_the_provider_started_and_that_runs_no_more(lagging_query):
    from airflow_spark_streaming.exceptions import LaggingQueryStoppedError
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.hooks.submission import SparkSubmission

    checkpoint = lagging_query["checkpoint"]
    sensor = KafkaLagSensor(task_id="lag", checkpoint=checkpoint, max_total_lag=0, fail_if_stopped=True)
    waiting = sensor.poke({})  # run by plain PySpark: liveness unknown, so the sensor keeps waiting
    assert not waiting.is_done
    # What the submit hook records for a driver it started; that driver has since ended, and holds no lease.
    RunnerControlHook(checkpoint).put_submission(
        SparkSubmission(
            deployment="client",
            submission_id="127.0.0.1:1",
            tag="t",
            conn_id="spark_default",
            master="local[2]",
            submitted_at=time.time(),
        ).to_dict()  # fmt: skip
    )
    with pytest.raises(LaggingQueryStoppedError, match=r"total lag 30.*not running"):
        sensor.poke({})

    deferred_sensor = KafkaLagSensor(
        task_id="lag", checkpoint=checkpoint, max_total_lag=0, fail_if_stopped=True, deferrable=True, poke_interval=0.5
    )
    with pytest.raises(LaggingQueryStoppedError):
        deferred_sensor.execute({})  # checks once before deferring: fails in the worker, no trigger
    # A query that stops while the trigger waits: the trigger's check ends the wait with the same error.
    trigger = KafkaLagTrigger(checkpoint=checkpoint, criteria=deferred_sensor._criteria().to_dict(), poll_interval=0.5)
    event = asyncio.run(asyncio.wait_for(trigger.run().__anext__(), timeout=60))
    assert event.payload["state"] == "error" and event.payload["payload"]["query_running"] is False
    with pytest.raises(LaggingQueryStoppedError):
        deferred_sensor.execute_complete({}, event.payload)

    lagging_query["catch_up"]()
    done = sensor.poke({})  # caught up: the wait is met, running or not
    assert done.is_done and done.xcom_value["total_lag"] == 0 and done.xcom_value["query_running"] is False
