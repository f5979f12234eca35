"""CheckpointCommitEventTrigger (and the version trigger on its sink) against a real Spark streaming query."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pandas as pd
import pytest

from airflow_spark_streaming.exceptions import InvalidEventTriggerError
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.triggers.events import CheckpointCommitEventTrigger, DeltaVersionEventTrigger
from tests.support.checkpoint_fixtures import run_file_to_delta, write_json_files
from tests.support.triggerer_harness import InMemoryAssetStateStore, TriggerLoop, revive

ROWS_PER_FILE = 25
BATCH_ROWS = (5, 11, 17)


@pytest.fixture
def streaming_query(spark, tmp_path):
    """A file → Delta query whose progress events the provider's runner listener writes to ``_progress/``."""
    from airflow_spark_streaming.runner.jobs.stream_runner import progress_listener

    listener = progress_listener(spark, str(tmp_path / "checkpoint"))
    spark.streams.addListener(listener)
    write_json_files(tmp_path / "input", files=2, rows_per_file=ROWS_PER_FILE)
    run_file_to_delta(spark, tmp_path)  # batches 0 and 1 exist before the watchers start
    yield tmp_path
    spark.streams.removeListener(listener)


def position(store):
    (value,) = store.values.values() or [None]
    return None if value is None else value["position"]


def test_one_event_per_committed_batch_with_offsets_rows_and_commit_time(spark, streaming_query):
    base = streaming_query
    ckpt_store, table_store = InMemoryAssetStateStore(), InMemoryAssetStateStore()
    commits = CheckpointCommitEventTrigger(str(base / "checkpoint"), poll_interval=0.2)
    versions = DeltaVersionEventTrigger(str(base / "table"), poll_interval=0.2)
    commits.asset_state_store, versions.asset_state_store = ckpt_store, table_store

    async def scenario():
        ckpt_loop, table_loop = TriggerLoop(commits).start(), TriggerLoop(versions).start()
        await ckpt_loop.until(lambda: position(ckpt_store) == 1, what="the checkpoint's first poll")
        await table_loop.until(lambda: position(table_store) == 1, what="the table's first poll")
        for start, rows in enumerate(BATCH_ROWS, start=2):  # one file per batch, each with its own count
            write_json_files(base / "input", files=1, rows_per_file=rows, start=start)
            stamp = time.time() + start  # the file source takes files oldest first
            os.utime(base / "input" / f"part-{start:04d}.json", (stamp, stamp))
        await asyncio.to_thread(run_file_to_delta, spark, base)  # batches 2, 3, 4
        await ckpt_loop.until(lambda: len(ckpt_loop.events) == 3 and position(ckpt_store) == 4, what="3 batches")
        await table_loop.until(lambda: len(table_loop.events) == 3 and position(table_store) == 4, what="3 versions")
        await ckpt_loop.stop()
        await table_loop.stop()

        # A restart with nothing new repeats nothing; one more batch is reported once.
        revived = revive(commits, ckpt_store)
        loop = TriggerLoop(revived).start()
        write_json_files(base / "input", files=1, rows_per_file=ROWS_PER_FILE, start=5)
        await asyncio.to_thread(run_file_to_delta, spark, base)  # batch 5
        await loop.until(lambda: position(ckpt_store) == 5, what="batch 5 after the restart")
        await asyncio.sleep(0.6)
        await loop.stop()
        return ckpt_loop.events, table_loop.events, loop.events

    batches, table_versions, after_restart = asyncio.run(scenario())
    assert [b["batch_id"] for b in batches] == [2, 3, 4]
    assert [b["rows"] for b in batches] == list(BATCH_ROWS)
    # Spark's Delta sink reports numOutputRows -1; the count comes from the commit each batch wrote to the table.
    assert [b["output_rows"] for b in batches] == list(BATCH_ROWS)
    assert [b["previous_event_batch_id"] for b in batches] == [None, 2, 3]
    for batch in batches:
        (source,) = batch["sources"]
        assert source["kind"] == "file" and source["offset"] == {"logOffset": batch["batch_id"]}
        assert batch["commit_time"] is not None and batch["batch_timestamp_ms"] is not None
    assert len({b["query_id"] for b in batches}) == 1
    assert [v["version"] for v in table_versions] == [2, 3, 4]
    assert {v["operation"] for v in table_versions} == {"STREAMING UPDATE"}
    assert [v["rows_added"] for v in table_versions] == list(BATCH_ROWS)
    assert [b["batch_id"] for b in after_restart] == [5]
    assert after_restart[0]["output_rows"] == ROWS_PER_FILE
    assert after_restart[0]["previous_event_batch_id"] == 4


def test_checkpoint_trigger_parameters_and_round_trip():
    with pytest.raises(InvalidEventTriggerError, match="poll_interval"):
        CheckpointCommitEventTrigger("/ckpt", poll_interval=-1)
    with pytest.raises(InvalidEventTriggerError, match="progress_grace_seconds"):
        CheckpointCommitEventTrigger("/ckpt", progress_grace_seconds="soon")
    trigger = CheckpointCommitEventTrigger("s3://lake/_checkpoints/orders", storage_conn_id="lake", poll_interval=5)
    assert revive(trigger, None).serialize() == trigger.serialize()
    assert trigger.serialize()[1] == {
        "checkpoint": "s3://lake/_checkpoints/orders",
        "storage_conn_id": "lake",
        "poll_interval": 5.0,
        "progress_grace_seconds": 30.0,
    }


def test_output_rows_come_only_from_a_commit_of_this_query_and_batch_in_the_named_table(streaming_query, tmp_path):
    """The sink's table is named by the progress event, which lies in the lake: only a STREAMING UPDATE commit
    naming this query and batch counts, and only on the checkpoint's own store; anything else stays null."""
    checkpoint = streaming_query / "checkpoint"
    deadline = time.monotonic() + 30
    while not (checkpoint / "_progress" / "1.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the listener writes the last batch's event just after the query ends
    progress = {n: json.loads((checkpoint / "_progress" / f"{n}.json").read_text()) for n in (0, 1)}
    assert progress[1]["sink"]["description"] == f"DeltaSink[{streaming_query / 'table'}]"
    assert progress[1]["sink"]["numOutputRows"] == -1  # what Spark reports for its Delta sink

    def output_rows():
        batches = CheckpointHook(str(checkpoint)).get_committed_batches(-1, progress_grace_seconds=0).batches
        return [b.output_rows for b in batches]

    assert output_rows() == [ROWS_PER_FILE, ROWS_PER_FILE]
    from deltalake import write_deltalake

    other = tmp_path / "other"
    write_deltalake(str(other), pd.DataFrame({"id": range(ROWS_PER_FILE)}))  # a table this query never wrote
    for description in (f"DeltaSink[file:{other}]", "DeltaSink[s3a://elsewhere/orders]", "DeltaSink[../table]"):
        progress[1]["sink"]["description"] = description
        (checkpoint / "_progress" / "1.json").write_text(json.dumps(progress[1]))
        assert output_rows() == [ROWS_PER_FILE, None], description
    (checkpoint / "_progress" / "1.json").unlink()  # a query the runner does not run: no progress, no table
    (checkpoint / "_progress" / "0.json").unlink()
    assert output_rows() == [None, None]
