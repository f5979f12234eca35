"""DeltaVersionEventTrigger against a real Delta table written with delta-rs: appends and an OPTIMIZE."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from airflow_spark_streaming.exceptions import InvalidEventTriggerError
from airflow_spark_streaming.triggers.events import DeltaVersionEventTrigger
from tests.support.triggerer_harness import InMemoryAssetStateStore, TriggerLoop, revive


def append(table, ids):
    from deltalake import write_deltalake

    write_deltalake(str(table), pd.DataFrame({"id": list(ids), "region": ["eu"] * len(ids)}), mode="append")


def optimize(table) -> int:
    from deltalake import DeltaTable

    dt = DeltaTable(str(table))
    dt.optimize.compact()
    return DeltaTable(str(table)).version()


def cursor_position(store: InMemoryAssetStateStore) -> int | None:
    (value,) = store.values.values() or [None]
    return None if value is None else value["position"]


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "orders"
    append(path, [0])  # version 0 exists before the watcher starts: not reported
    return path


def test_one_event_per_append_none_for_optimize_and_no_repeats_after_restart(table):
    store = InMemoryAssetStateStore()
    trigger = DeltaVersionEventTrigger(str(table), poll_interval=0.2)
    trigger.asset_state_store = store

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await loop.until(lambda: cursor_position(store) == 0, what="the first poll")
        # Several commits between two polls: three appends, an OPTIMIZE, one more append.
        for n in (1, 2, 3):
            append(table, range(100 * n, 100 * n + n))
        optimize_version = optimize(table)
        append(table, [999])
        await loop.until(lambda: cursor_position(store) == 5, what="version 5")
        await loop.stop()
        first = list(loop.events)

        # Restart: a new instance from serialize() over the same asset state; more commits meanwhile.
        append(table, [1000, 1001])
        revived = revive(trigger, store)
        loop2 = TriggerLoop(revived).start()
        await loop2.until(lambda: cursor_position(store) == 6, what="version 6 after the restart")
        # Let it poll a few more times: nothing may repeat.
        await asyncio.sleep(1.0)
        await loop2.stop()
        return first, optimize_version, loop2.events

    first, optimize_version, second = asyncio.run(scenario())
    assert optimize_version == 4
    assert [e["version"] for e in first] == [1, 2, 3, 5]
    assert [e["operation"] for e in first] == ["WRITE"] * 4
    assert [e["rows_added"] for e in first] == [1, 2, 3, 1]
    assert all(e["files_added"] == 1 and e["files_removed"] == 0 for e in first)
    assert [e["previous_event_version"] for e in first] == [None, 1, 2, 3]
    assert [e["version"] for e in second] == [6]
    assert second[0]["rows_added"] == 2 and second[0]["previous_event_version"] == 5


def test_operations_none_reports_optimize_with_its_files(table):
    store = InMemoryAssetStateStore()
    trigger = DeltaVersionEventTrigger(str(table), operations=None, poll_interval=0.2)
    trigger.asset_state_store = store

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await loop.until(lambda: cursor_position(store) == 0, what="the first poll")
        append(table, [1])
        optimize(table)
        await loop.until(lambda: len(loop.events) == 2, what="two events")
        await loop.stop()
        return loop.events

    events = asyncio.run(scenario())
    assert [(e["version"], e["operation"]) for e in events] == [(1, "WRITE"), (2, "OPTIMIZE")]
    assert events[1]["files_removed"] == 2 and events[1]["files_added"] == 1


def test_watchers_of_one_table_share_one_poll_loop(table, monkeypatch):
    """Two watchers (different operation filters) through Airflow's own SharedStreamManager: one read per poll."""
    from airflow.triggers.shared_stream import SharedStreamManager

    reads = []
    original = DeltaVersionEventTrigger.read_after

    def counting(self, after, up_to=None):
        reads.append((after, up_to))
        return original(self, after, up_to)

    monkeypatch.setattr(DeltaVersionEventTrigger, "read_after", counting)
    appends_only = DeltaVersionEventTrigger(str(table), operations=["write"], poll_interval=0.3)
    everything = DeltaVersionEventTrigger(str(table), operations=None, poll_interval=0.3)
    assert appends_only.shared_stream_key() == everything.shared_stream_key()
    stores = {1: InMemoryAssetStateStore(), 2: InMemoryAssetStateStore()}
    appends_only.asset_state_store, everything.asset_state_store = stores[1], stores[2]

    async def scenario():
        manager = SharedStreamManager()
        key = appends_only.shared_stream_key()
        got = {1: [], 2: []}

        async def subscriber(trigger_id, trigger):
            async for event in trigger.filter_shared_stream(
                manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)
            ):
                got[trigger_id].append(event.payload)

        tasks = [asyncio.ensure_future(subscriber(1, appends_only)), asyncio.ensure_future(subscriber(2, everything))]
        loop = TriggerLoop(appends_only)  # only for its until()
        loop.task = tasks[0]
        await loop.until(lambda: cursor_position(stores[1]) == 0 and cursor_position(stores[2]) == 0, what="first poll")
        append(table, [1, 2])
        optimize(table)
        await loop.until(lambda: len(got[2]) == 2 and cursor_position(stores[1]) == 2, what="both versions")
        for trigger_id, task in zip((1, 2), tasks, strict=True):
            task.cancel()
            await manager.unsubscribe(trigger_id, key)
        await asyncio.gather(*tasks, return_exceptions=True)
        return got

    got = asyncio.run(scenario())
    assert [e["version"] for e in got[1]] == [1]
    assert [e["version"] for e in got[2]] == [1, 2]
    # One reader for both: no read is made twice for the same position.
    assert len(reads) == len(set(reads)), reads


def test_a_table_replaced_in_place_by_spark_continues_though_its_id_changes(spark, table):
    """Spark's CREATE OR REPLACE TABLE gives the table a new id but keeps its log: nothing is replayed."""
    from deltalake import DeltaTable

    store = InMemoryAssetStateStore()
    trigger = DeltaVersionEventTrigger(str(table), poll_interval=0.2)
    trigger.asset_state_store = store
    ids = [DeltaTable(str(table)).metadata().id]

    def replace(first_id: int) -> None:
        spark.sql(f"CREATE OR REPLACE TABLE delta.`{table}` USING DELTA AS "
                  f"SELECT CAST({first_id} AS BIGINT) AS id, 'eu' AS region").collect()  # fmt: skip
        ids.append(DeltaTable(str(table)).metadata().id)

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await loop.until(lambda: cursor_position(store) == 0, what="the first poll")
        await asyncio.to_thread(replace, 10)
        append(table, [11, 12])
        await loop.until(lambda: cursor_position(store) == 2, what="versions 1 and 2")
        await asyncio.sleep(1.0)
        await loop.stop()
        # Again while the triggerer is down: the restarted watcher's cursor holds the previous id.
        await asyncio.to_thread(replace, 20)
        restarted = TriggerLoop(revive(trigger, store)).start()
        await restarted.until(lambda: cursor_position(store) == 3, what="version 3 after the restart")
        await asyncio.sleep(1.0)
        await restarted.stop()
        return loop.events, restarted.events

    live, after_restart = asyncio.run(scenario())
    assert len(set(ids)) == 3  # each replace gave the table a new id
    assert [(e["version"], e["operation"], e["rows_added"]) for e in live] == [
        (1, "CREATE OR REPLACE TABLE AS SELECT", 1), (2, "WRITE", 2)
    ]  # fmt: skip
    assert [(e["version"], e["previous_event_version"]) for e in after_restart] == [(3, 2)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"table_uri": ""}, "needs a path or URI"),
        ({"table_uri": "/t", "poll_interval": 0}, "poll_interval"),
        ({"table_uri": "/t", "operations": "WRITE"}, "list of operation names"),
        ({"table_uri": "/t", "operations": []}, "never fire"),
        ({"table_uri": "/t", "storage_options": {"AWS_REGION": 1}}, "dict of strings"),
    ],
)
def test_bad_parameters_are_refused_at_construction(kwargs, message):
    with pytest.raises(InvalidEventTriggerError, match=message):
        DeltaVersionEventTrigger(**kwargs)


def test_serialize_round_trip_keeps_identity_and_hash():
    from airflow.triggers.base import BaseEventTrigger

    trigger = DeltaVersionEventTrigger("s3://lake/orders/", storage_conn_id="lake", operations=["write", "MERGE"])
    classpath, kwargs = trigger.serialize()
    again = revive(trigger, None)
    assert again.serialize() == (classpath, kwargs)
    assert kwargs["operations"] == ["MERGE", "WRITE"]
    assert BaseEventTrigger.hash(*again.serialize()) == BaseEventTrigger.hash(classpath, kwargs)
    assert again.shared_stream_key() == trigger.shared_stream_key()
    assert again.cursor_key == "airflow_spark_streaming.delta_cursor:s3://lake/orders"
