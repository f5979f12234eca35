"""CheckpointCommitEventTrigger when its checkpoint is recreated, or a pipeline flow is fully refreshed.

Checkpoints in Spark's format and the runner's progress events (tests/support/stream_checkpoints.py), no JVM.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid

from airflow_spark_streaming.triggers.events import CheckpointCommitEventTrigger
from tests.support.stream_checkpoints import rows, write_kafka_checkpoint
from tests.support.triggerer_harness import InMemoryAssetStateStore, TriggerLoop

POLL = 0.1


def position(store: InMemoryAssetStateStore) -> int | None:
    (value,) = store.values.values() or [None]
    return None if value is None else value["position"]


def run_until(trigger, store, change, events: int):
    """Start the trigger, wait for its first poll, ``change()`` the location, wait for ``events`` events."""

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await loop.until(lambda: position(store) is not None, what="the first poll")
        change()
        await loop.until(lambda: len(loop.events) >= events, what=f"{events} events")
        await asyncio.sleep(5 * POLL)  # nothing more may come
        await loop.stop()
        return loop.events

    return asyncio.run(scenario())


def test_a_recreated_checkpoint_is_reported_from_its_first_batch(tmp_path):
    checkpoint, store = tmp_path / "checkpoint", InMemoryAssetStateStore()
    write_kafka_checkpoint(checkpoint, batches=6)
    trigger = CheckpointCommitEventTrigger(str(checkpoint), poll_interval=POLL, progress_grace_seconds=0)
    trigger.asset_state_store = store

    def recreate():
        shutil.rmtree(checkpoint)
        write_kafka_checkpoint(checkpoint, batches=3)  # a reset stream: batch ids from 0 again

    events = run_until(trigger, store, recreate, 3)
    assert [(e["batch_id"], e["rows"]) for e in events] == [(b, rows(b)) for b in range(3)]
    assert [e["previous_event_batch_id"] for e in events] == [None, 0, 1]


def test_a_checkpoint_recreated_past_the_old_cursor_is_told_apart_by_its_query_id(tmp_path):
    """The new checkpoint already has more batches than the cursor: only the query id in ``metadata`` shows it is
    another checkpoint. Batches the same query commits after a restart continue the count."""
    checkpoint, store = tmp_path / "checkpoint", InMemoryAssetStateStore()
    write_kafka_checkpoint(checkpoint, batches=3)
    trigger = CheckpointCommitEventTrigger(str(checkpoint), poll_interval=POLL, progress_grace_seconds=0)
    trigger.asset_state_store = store

    def recreate():
        shutil.rmtree(checkpoint)
        write_kafka_checkpoint(checkpoint, batches=6, query_id=str(uuid.uuid4()))

    events = run_until(trigger, store, recreate, 6)
    assert [e["batch_id"] for e in events] == list(range(6))
    assert len({e["query_id"] for e in events}) == 1 and events[0]["query_id"] == _query_id(checkpoint)

    # The same query restarted: its new batches follow, nothing is reported twice.
    trigger = CheckpointCommitEventTrigger(str(checkpoint), poll_interval=POLL, progress_grace_seconds=0)
    trigger.asset_state_store = store
    more = run_until(trigger, store, lambda: write_kafka_checkpoint(checkpoint, batches=8,
                                                                    query_id=_query_id(checkpoint)), 2)  # fmt: skip
    assert [e["batch_id"] for e in more] == [6, 7] and more[0]["previous_event_batch_id"] == 5


def _query_id(checkpoint) -> str:
    return json.loads((checkpoint / "metadata").read_text())["id"]


def test_a_full_refresh_of_a_pipeline_flow_is_reported_from_the_new_versions_first_batch(tmp_path):
    """The new version is already past the old cursor: the resolved checkpoint tells them apart."""
    flow = tmp_path / "_checkpoints" / "spark_catalog" / "default" / "orders" / "orders"
    write_kafka_checkpoint(flow / "0", batches=2)
    store = InMemoryAssetStateStore()
    trigger = CheckpointCommitEventTrigger(pipeline_storage=str(tmp_path), flow="orders", poll_interval=POLL,
                                           progress_grace_seconds=0)  # fmt: skip
    trigger.asset_state_store = store

    events = run_until(trigger, store, lambda: write_kafka_checkpoint(flow / "1", batches=4), 4)
    assert [e["batch_id"] for e in events] == [0, 1, 2, 3]
    assert {e["checkpoint"] for e in events} == {str(flow / "1")}
