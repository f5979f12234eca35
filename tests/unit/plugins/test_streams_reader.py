"""The Streams page's reader: the numbers of a card and a history, and what its cache saves."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.plugins.streams.discovery import StreamRef, shown_location, stream_id
from airflow_spark_streaming.plugins.streams.reader import PHASES, StreamReader, batch_row
from tests.support.stream_checkpoints import end_offsets, lag, rows, write_kafka_checkpoint

BATCHES = 30


@pytest.fixture
def checkpoint(tmp_path):
    location = tmp_path / "ckpt"
    write_kafka_checkpoint(location, batches=BATCHES, stateful=True)
    return location


def _ref(location, **kwargs) -> StreamRef:
    # No such connection here: the broker parts fail fast and the card says so.
    return StreamRef(stream_id(str(location)), str(location), kafka_config_id="no_such_kafka", **kwargs)


class Counter:
    """Counts calls of a real method (and still calls it)."""

    def __init__(self, monkeypatch, owner, name):
        self.calls = 0
        self._lock = threading.Lock()
        real = getattr(owner, name)

        def counted(*args, **kwargs):
            with self._lock:
                self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)


def test_a_card_shows_the_last_batch_the_commit_age_and_why_the_brokers_were_not_read(checkpoint):
    card = StreamReader().card(_ref(checkpoint))
    last = BATCHES - 1
    assert card["latest_committed_batch"] == last and card["kafka"] is True
    assert card["last_batch"]["batch_id"] == last
    assert card["last_batch"]["input_rows"] == rows(last)
    assert card["last_batch"]["phases_ms"]["addBatch"] == 300 + last
    assert card["last_batch"]["state_rows"] == 100 + last
    assert 0 < card["last_commit_age_seconds"] < 60
    assert card["lease"] is None
    assert {e["part"] for e in card["errors"]} == {"health", "lag"}
    assert card["status"] is None and card["lag"] is None
    json.dumps(card)  # what the API returns


def test_a_history_charts_every_retained_event_with_lag_per_partition(checkpoint):
    history = StreamReader().history(_ref(checkpoint))
    series = history["series"]
    assert history["batches"] == BATCHES and history["stateful"] is True
    assert history["partitions"] == ["orders:0", "orders:1"]
    assert series["batch_id"] == list(range(BATCHES))
    assert series["lag orders:1"] == [float(lag(b, 1)) for b in range(BATCHES)]
    assert series["input_rows_per_second"][5] == rows(5) / 10
    assert all(len(series[f"phase_{p}"]) == BATCHES for p in PHASES)
    assert [r["batch_id"] for r in history["last_batches"]][:3] == [29, 28, 27]
    # the ground truth on disk: the last event's end offsets are the last offsets file's
    event = json.loads((checkpoint / "_progress" / "29.json").read_text())
    assert event["sources"][0]["endOffset"] == {"orders": {"0": end_offsets(29, 2)[0], "1": end_offsets(29, 2)[1]}}


def test_ten_concurrent_requests_cost_what_one_does_until_the_cache_expires(checkpoint, monkeypatch):
    status = Counter(monkeypatch, CheckpointHook, "get_status")
    progress = Counter(monkeypatch, RunnerControlHook, "get_progress")
    ref = _ref(checkpoint)
    StreamReader().card(ref)
    StreamReader().history(ref)
    one = (status.calls, progress.calls)
    assert one[0] >= 1 and one[1] >= 2  # the card reads the newest event (and the health its window), the history all

    now = [1000.0]
    reader = StreamReader(ttl=10, clock=lambda: now[0])
    status.calls = progress.calls = 0
    with ThreadPoolExecutor(10) as pool:
        cards = list(pool.map(lambda _: reader.card(ref), range(10)))
        histories = list(pool.map(lambda _: reader.history(ref), range(10)))
    assert {c["latest_committed_batch"] for c in cards} == {BATCHES - 1}
    assert {h["batches"] for h in histories} == {BATCHES}
    assert (status.calls, progress.calls) == one
    now[0] += 5
    reader.card(ref)
    assert status.calls == one[0]
    now[0] += 6  # past the TTL
    reader.card(ref)
    assert status.calls == 2 * one[0]


def test_an_unresolved_location_is_shown_with_its_template_and_read_nowhere(monkeypatch):
    status = Counter(monkeypatch, CheckpointHook, "get_status")
    ref = StreamRef("abc", None, template="{{ ti.xcom_pull(task_ids='spec', key='checkpoint') }}")
    card = StreamReader().card(ref)
    assert card["unresolved"] is True and card["template"].startswith("{{ ti.xcom_pull")
    assert StreamReader().history(ref)["batches"] == []
    assert status.calls == 0


def test_a_missing_checkpoint_is_an_error_on_its_card(tmp_path):
    card = StreamReader().card(_ref(tmp_path / "nothing"))
    assert card["errors"][0]["part"] == "checkpoint"
    assert card["errors"][0]["error"] == "CheckpointNotFoundError"
    assert "does not exist" in card["reason"]


def test_hostile_progress_values_become_gaps_not_errors():
    row = batch_row({"batchId": "7", "numInputRows": float("nan"), "inputRowsPerSecond": True,
                     "durationMs": {"addBatch": "12"}, "stateOperators": [{"numRowsTotal": 1e400}],
                     "timestamp": "x" * 100})  # fmt: skip
    assert row["batch_id"] is None and row["input_rows"] is None and row["input_rows_per_second"] is None
    assert row["phases_ms"]["addBatch"] is None and row["time"] is None
    # Spark's Delta sink reports numOutputRows -1: unknown, not a count.
    assert batch_row({"sink": {"description": "DeltaSink[file:/t]", "numOutputRows": -1}})["output_rows"] is None
    assert batch_row({"sink": {"description": "FileSink[file:/t]", "numOutputRows": 12}})["output_rows"] == 12


def test_locations_are_shown_without_credentials():
    assert shown_location("s3://AKIAEXAMPLE:very-secret@bucket/ckpt") == "s3://bucket/ckpt"
    assert shown_location("/data/ckpt") == "/data/ckpt"


def test_a_sink_lists_the_queries_on_the_page_that_read_it_and_how_far_behind_each_is(tmp_path):
    import time

    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from tests.unit.delta.test_delta_readers import write_checkpoint

    table = tmp_path / "orders"
    for version in range(4):  # versions 0..3
        write_deltalake(str(table), pa.table({"id": [version]}), mode="append")
        time.sleep(0.05)
    table_id = DeltaTable(str(table)).metadata().id
    other = tmp_path / "other"
    write_deltalake(str(other), pa.table({"id": [0]}))
    (tmp_path / "ck").mkdir()

    def query(name, reads, version):
        location = write_checkpoint(tmp_path / "ck" / name, reads, version)
        return StreamRef(stream_id(location), location, query_name=name)

    writer_location = write_checkpoint(tmp_path / "ck" / "writer", None)
    writer = StreamRef(stream_id(writer_location), writer_location, query_name="writer", sink_table=str(table))
    behind = query("behind", table_id, 1)  # reads version 1 next: versions 1, 2, 3 to go
    caught_up = query("caught_up", table_id, 4)  # version 3 fully read: (4, -1)
    elsewhere = query("elsewhere", DeltaTable(str(other)).metadata().id, 0)
    refs = [writer, behind, caught_up, elsewhere]

    reader = StreamReader()
    for _ in range(2):  # the second answer comes from the cache and must not repeat a reader
        cards = reader.cards(refs)
        readers = {r["query_name"]: r for r in cards[0]["sink"]["readers"]}
        assert set(readers) == {"behind", "caught_up"}
        assert readers["behind"]["next_version"] == 1 and readers["behind"]["lag_versions"] == 3
        commit_1 = DeltaTable(str(table)).history(3)[-1]["timestamp"] / 1000
        assert readers["behind"]["lag_seconds"] == pytest.approx(time.time() - commit_1, abs=5)
        assert readers["caught_up"]["lag_versions"] == 0 and readers["caught_up"]["lag_seconds"] is None
        assert all(card.get("sink") is None for card in cards[1:])
        text = json.dumps(cards)
        assert "_table_id" not in text and "_delta_sources" not in text and table_id not in text
    # One card alone knows no readers; among the queries a user may see, the same as the list.
    assert reader.card(writer)["sink"]["readers"] == []
    assert [r["query_name"] for r in reader.card(writer, among=refs)["sink"]["readers"]] == ["behind", "caught_up"]
