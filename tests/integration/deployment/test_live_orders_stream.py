"""One long-running orders stream through the real deployment: asset events end to end, then deferred sensors.

The stream (``orders_stream_start``: ``SparkStreamingSubmitOperator``, a detached ``local[2]`` driver)
reads JSON orders from Kafka into the lake's ``orders`` Delta table. Two watchers run in the real
triggerer: ``CheckpointCommitEventTrigger`` on its checkpoint (asset ``orders_batches``, DAG
``on_orders_batch``) and the example DAG ``downstream_on_commit``'s ``DeltaVersionEventTrigger`` on its
table (asset ``orders_delta``). Both tests restart the triggerer in the middle and compare what the
REST API reports with what the checkpoint and the table hold.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.support.deployment import (
    by_region,
    committed_batches,
    create_topic,
    kill_drivers,
    log_lines,
    produce_orders,
    signal_driver,
    table_batches,
    table_rows,
    wait_until,
)

pytestmark = pytest.mark.kafka

SENSORS = ("next_batch", "caught_up", "stream_stopped")


QUERY = "orders_live"  # the stream's query name: its driver's --name


@pytest.fixture(scope="module")
def orders_stream(airflow_deployment, airflow_api, kafka_broker, lake):
    """The orders stream, started through the deployment with 30 orders (batch 0); stopped through it at the end."""
    bootstrap = kafka_broker.bootstrap_servers
    topic = create_topic(bootstrap, partitions=2, prefix="orders")
    first = produce_orders(bootstrap, topic, 0, 30)
    for dag_id in ("orders_stream_start", "orders_stream_stop"):
        airflow_api.unpause(dag_id)
    run_id = airflow_api.trigger("orders_stream_start", {"topic": topic, "trigger_interval": "2 seconds"})
    try:
        run = airflow_api.wait_for_run("orders_stream_start", run_id, timeout=600, deployment=airflow_deployment)
        assert run["state"] == "success", airflow_api.task_states("orders_stream_start", run_id)
        started = airflow_api.xcom("orders_stream_start", run_id, "start_stream")
        assert started["mode"] == "long_running" and started["latest_committed_batch"] == 0
        yield {
            "topic": topic, "orders": first, "started": started,
            "table": lake / "orders", "checkpoint": lake / "_checkpoints" / "orders",
        }  # fmt: skip
    finally:
        try:
            stop_id = airflow_api.trigger("orders_stream_stop")
            airflow_api.wait_for_run("orders_stream_stop", stop_id, timeout=300)
        finally:
            kill_drivers(QUERY, airflow_deployment.marker)  # nothing left, even when the stop failed


def payloads(api, asset_name: str) -> list[dict]:
    """The asset's events (REST), oldest first, each as its trigger's payload plus the runs it created."""
    events = api.asset_events(api.asset(asset_name)["id"])
    return [{**e["extra"]["payload"], "runs": e["created_dagruns"]} for e in events]


def cursor(api, asset_name: str) -> dict | None:
    """The watcher's cursor in the asset's state store (AIP-103), as the trigger wrote it."""
    values = list(api.asset_state(api.asset(asset_name)["id"]).values())
    return values[0] if values else None


def trigger_logs(deployment, run_id: str, task_id: str) -> list:
    """The task's trigger logs, one per triggerer job that ran its trigger (``<task log>.trigger.<job id>.log``)."""
    folder = Path(deployment.home) / "logs" / "dag_id=deferred_sensors" / f"run_id={run_id}" / f"task_id={task_id}"
    return sorted(folder.glob("attempt=1.log.trigger.*.log"), key=lambda p: int(p.name.split(".")[-2]))


def fired(deployment, component_generation: int, pattern: str) -> list[str]:
    return log_lines([deployment.log_path("triggerer", component_generation)], rf"Trigger fired event.*{pattern}")


def test_one_asset_event_per_committed_batch_across_a_triggerer_restart(airflow_deployment, airflow_api,
                                                                         orders_stream, kafka_broker):  # fmt: skip
    api, deployment = airflow_api, airflow_deployment
    table, checkpoint, topic = orders_stream["table"], orders_stream["checkpoint"], orders_stream["topic"]
    # Airflow registers an asset's watchers when a DAG scheduled on it is unpaused and parsed.
    api.start_watchers("on_orders_batch", ["orders_batches"])
    api.start_watchers("downstream_on_commit", ["orders_delta"])
    wait_until(lambda: cursor(api, "orders_batches") and cursor(api, "orders_delta"), 120, "the watchers' first poll")
    # A first start reports what commits from then on: the cursors are at the stream's head (batch 0, version 0).
    assert cursor(api, "orders_batches")["position"] == 0 and cursor(api, "orders_delta")["position"] == 0

    produced: list[dict] = []

    def chunk(count: int) -> list[int]:
        """Produce ``count`` orders, wait until the table holds them; the batches committed for them."""
        before = committed_batches(checkpoint)
        start = len(orders_stream["orders"]) + len(produced)
        produced.extend(produce_orders(kafka_broker.bootstrap_servers, topic, start, count))
        total = len(orders_stream["orders"]) + len(produced)
        # The sink commits to Delta before the checkpoint's commits log records the batch: wait for both.
        wait_until(
            lambda: len(table_rows(table)) == total and set(table_batches(table)) == set(committed_batches(checkpoint)),
            240, f"{total} rows in the table, every batch committed",
        )  # fmt: skip
        return [b for b in committed_batches(checkpoint) if b not in before]

    first_triggerer = deployment.generations["triggerer"]
    old_pid = deployment.pids["triggerer"]
    before_restart = chunk(20) + chunk(25)
    wait_until(lambda: len(payloads(api, "orders_batches")) == len(payloads(api, "orders_delta")) == len(before_restart),
               60, "the first triggerer's events")  # fmt: skip
    deployment.stop_component("triggerer")  # SIGTERM to its pid, as a service manager stops it
    during_restart = chunk(10) + chunk(11)  # committed while no triggerer runs
    new_pid = deployment.start_component("triggerer")
    after_restart = chunk(12)
    assert new_pid != old_pid and deployment.generations["triggerer"] == first_triggerer + 1

    def expected() -> tuple[list[int], list[int]]:
        """The batches committed after the watchers started, and the Delta versions they wrote."""
        committed = [b for b in committed_batches(checkpoint) if b > 0]
        written = table_batches(table)
        return committed, [written[b]["version"] for b in committed]

    def wait_for_events() -> None:
        committed, versions = expected()
        wait_until(lambda: ([p["batch_id"] for p in payloads(api, "orders_batches")] == committed
                            and [p["version"] for p in payloads(api, "orders_delta")] == versions), 120,
                   lambda: f"one event per batch {committed} / version {versions}: batch events "
                   f"{[p['batch_id'] for p in payloads(api, 'orders_batches')]}, version events "
                   f"{[p['version'] for p in payloads(api, 'orders_delta')]}")  # fmt: skip

    wait_for_events()
    # One last batch, alone. Airflow 3.3 gives an asset-triggered run the events up to its asset's queue entry;
    # an event persisted while that entry is pending (a burst, as after the restart) waits for the asset's next
    # event. This lone one takes them into its run.
    final = chunk(13)
    wait_for_events()
    committed, versions = expected()
    assert committed == before_restart + during_restart + after_restart + final
    written = table_batches(table)
    time.sleep(5)  # five more polls: an event repeated by the restarted triggerer would show now

    # No event lost, none repeated, in commit order; each names the previous one (no gap across the restart).
    batch_events, version_events = payloads(api, "orders_batches"), payloads(api, "orders_delta")
    assert [p["batch_id"] for p in batch_events] == committed
    assert [p["previous_event_batch_id"] for p in batch_events] == [None, *committed[:-1]]
    assert [p["rows"] for p in batch_events] == [written[b]["rows"] for b in committed]
    assert {p["query_id"] for p in batch_events} == {orders_stream["started"]["query_id"]}
    assert [p["version"] for p in version_events] == versions
    assert [p["previous_event_version"] for p in version_events] == [None, *versions[:-1]]
    assert [(p["operation"], p["rows_added"]) for p in version_events] == [("STREAMING UPDATE", written[b]["rows"])
                                                                           for b in committed]  # fmt: skip
    assert sum(p["rows"] for p in batch_events) == len(produced) == 91
    assert cursor(api, "orders_batches")["position"] == committed[-1]
    assert cursor(api, "orders_delta")["position"] == versions[-1]
    # The batches committed while it was down were reported by the restarted triggerer, the others by the first.
    for batch in before_restart:
        assert len(fired(deployment, first_triggerer, rf"'batch_id': {batch},")) == 1
    for batch in during_restart + after_restart + final:
        assert len(fired(deployment, first_triggerer + 1, rf"'batch_id': {batch},")) == 1
        assert fired(deployment, first_triggerer, rf"'batch_id': {batch},") == []

    # Every event ran its DAG exactly once; Airflow folds events queued before a run starts into that run.
    def runs_done() -> bool:
        events = payloads(api, "orders_batches") + payloads(api, "orders_delta")
        return all(len(e["runs"]) == 1 and e["runs"][0]["state"] in ("success", "failed") for e in events)

    wait_until(runs_done, 300, "one finished run per event")
    batch_events, version_events = payloads(api, "orders_batches"), payloads(api, "orders_delta")
    checked = {}
    for run_id in {e["runs"][0]["run_id"] for e in batch_events}:
        assert api.dag_run("on_orders_batch", run_id)["state"] == "success"
        for entry in api.xcom("on_orders_batch", run_id, "check_batches"):
            assert entry["batch_id"] not in checked, f"batch {entry['batch_id']} ran twice"
            checked[entry["batch_id"]] = entry
    assert sorted(checked) == committed
    assert [(checked[b]["rows"], checked[b]["delta_version"]) for b in committed] == [
        (written[b]["rows"], written[b]["version"]) for b in committed
    ]
    aggregated_versions, rows, regions = [], 0, {}
    for run_id in {e["runs"][0]["run_id"] for e in version_events}:
        assert api.dag_run("downstream_on_commit", run_id)["state"] == "success"
        result = api.xcom("downstream_on_commit", run_id, "aggregate_new_versions")
        aggregated_versions += result["versions"]
        rows += result["rows"]
        for region, totals in result["by_region"].items():
            entry = regions.setdefault(region, {"rows": 0, "amount": 0})
            entry["rows"] += totals["rows"]
            entry["amount"] += totals["amount"]
    assert sorted(aggregated_versions) == versions  # each version aggregated once
    assert rows == len(produced) and regions == by_region(produced)
    folded = {
        dag: sorted(
            sorted(p[key] for p in events if p["runs"][0]["run_id"] == run_id)
            for run_id in {p["runs"][0]["run_id"] for p in events}
        )
        for dag, key, events in (("on_orders_batch", "batch_id", batch_events),
                                 ("downstream_on_commit", "version", version_events))
    }  # fmt: skip
    print(f"\n{len(committed)} batches committed after the watchers started ({len(during_restart)} while the "
          f"triggerer was down); {len(batch_events)} batch events, {len(version_events)} version events; "
          f"events per run: {folded}")  # fmt: skip


def test_deferred_sensors_survive_a_triggerer_restart_and_each_fires_once(airflow_deployment, airflow_api,
                                                                           orders_stream, kafka_broker):  # fmt: skip
    api, deployment = airflow_api, airflow_deployment
    checkpoint = orders_stream["checkpoint"]
    last, rows_before = committed_batches(checkpoint)[-1], len(table_rows(orders_stream["table"]))
    # Pause the driver (its lease outlives the pause), so nothing the sensors wait for happens before the test allows.
    assert len(signal_driver(QUERY, deployment.marker, signal.SIGSTOP)) == 1
    try:
        backlog = produce_orders(kafka_broker.bootstrap_servers, orders_stream["topic"], 10_000, 40)
        api.unpause("deferred_sensors")
        run_id = api.trigger("deferred_sensors", {"target_batch": last + 1})
        for task_id in SENSORS:
            api.wait_for_task("deferred_sensors", run_id, task_id, ["deferred"], timeout=300, deployment=deployment)
        # Each trigger runs in the first triggerer: its log there says it started, then what its first poke saw.
        wait_until(
            lambda: all(log_lines(trigger_logs(deployment, run_id, t), "starting")
                        and len(log_lines(trigger_logs(deployment, run_id, t), ".")) >= 2 for t in SENSORS),
            120, "the sensors' triggers to run in the first triggerer",
        )  # fmt: skip
        old_logs = {t: trigger_logs(deployment, run_id, t) for t in SENSORS}
        assert all(len(logs) == 1 for logs in old_logs.values()), old_logs
        deployment.stop_component("triggerer")
        assert set(api.task_states("deferred_sensors", run_id).values()) == {"deferred"}
        deployment.start_component("triggerer")
        # The restarted triggerer (a new job: a new trigger log per task) runs the three triggers again.
        wait_until(
            lambda: all(len(trigger_logs(deployment, run_id, t)) == 2 for t in SENSORS)
            and all(log_lines(trigger_logs(deployment, run_id, t)[-1:], "starting") for t in SENSORS),
            120, "the restarted triggerer to run the sensors' triggers",
        )  # fmt: skip
        time.sleep(3)  # a few pokes (1 s apart) of the new triggers, with the stream still paused
        assert set(api.task_states("deferred_sensors", run_id).values()) == {"deferred"}
    finally:
        signal_driver(QUERY, deployment.marker, signal.SIGCONT)

    # The stream reads the 40 orders: the batch after `last` commits and the lag falls to 0.
    for task_id in ("next_batch", "caught_up"):
        api.wait_for_task("deferred_sensors", run_id, task_id, ["success"], timeout=300, deployment=deployment)
    assert api.task_instance("deferred_sensors", run_id, "stream_stopped")["state"] == "deferred"
    stop_id = api.trigger("orders_stream_stop")
    assert api.wait_for_run("orders_stream_stop", stop_id, timeout=300)["state"] == "success"
    stopped = api.xcom("orders_stream_stop", stop_id, "stop_stream")
    assert stopped["was_running"] and not stopped["killed"] and not stopped["has_uncommitted_batch"]
    run = api.wait_for_run("deferred_sensors", run_id, timeout=300, deployment=deployment)
    assert run["state"] == "success", api.task_states("deferred_sensors", run_id)

    for task_id in SENSORS:
        # One try each: no sensor was failed or retried by the restart.
        assert [(t["try_number"], t["state"]) for t in api.task_tries("deferred_sensors", run_id, task_id)] == [
            (1, "success")
        ]
        # Its trigger ran in both triggerers (one trigger log per triggerer job) and fired once: in the second.
        old, new = trigger_logs(deployment, run_id, task_id)
        assert old == old_logs[task_id][0]
        assert log_lines([old], "starting") and log_lines([new], "starting")
        assert log_lines([old], "Trigger fired event") == []
        assert len(log_lines([new], "Trigger fired event")) == 1
    progress = api.xcom("deferred_sensors", run_id, "next_batch")
    assert progress["latest_committed_batch"] >= last + 1
    lag = api.xcom("deferred_sensors", run_id, "caught_up")
    assert lag["total_lag"] == 0
    health = api.xcom("deferred_sensors", run_id, "stream_stopped")
    assert health["status"] == "STOPPED"
    assert len(table_rows(orders_stream["table"])) == rows_before + len(backlog)
