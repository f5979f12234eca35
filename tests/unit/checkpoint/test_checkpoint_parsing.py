"""Checkpoint file parsers and the progress decision, on hand-written files (no JVM)."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.checkpoint import (
    CheckpointStatus,
    classify_offset,
    contiguous_batches,
    delta_sink_table,
    parse_commit_file,
    parse_offsets_file,
    parse_query_metadata,
    parse_source_head,
)
from airflow_spark_streaming.conditions.progress import ProgressCriteria, evaluate_progress
from airflow_spark_streaming.conditions.verdict import Verdict
from airflow_spark_streaming.exceptions import (
    CorruptCheckpointFileError,
    NonContiguousBatchesError,
    SparkStreamingError,
    StreamStaleError,
    UnsupportedCheckpointVersionError,
)
from airflow_spark_streaming.triggers.checkpoint import CheckpointProgressTrigger

META = '{"batchWatermarkMs":5000,"batchTimestampMs":1795468736127,"conf":{"spark.sql.shuffle.partitions":"2"}}'


def test_offsets_v1_with_several_kinds_of_source():
    text = "\n".join(
        [
            "v1",
            META,
            '{"orders":{"1":57,"0":23}}',
            '{"logOffset":4}',
            '{"sourceVersion":1,"reservoirId":"abc","reservoirVersion":7,"index":-1,"isStartingVersion":false}',
            "13",
            "-",
            '{"offset":10,"timestamp":99}',
        ]
    )
    entry = parse_offsets_file(text, "ckpt/offsets/3", 3)
    assert (entry.version, entry.batch_timestamp_ms, entry.batch_watermark_ms) == (1, 1795468736127, 5000)
    assert entry.conf == {"spark.sql.shuffle.partitions": "2"}
    kinds = [s.kind for s in entry.sources]
    assert kinds == ["kafka", "file", "delta", "rate", "none", "rate-micro-batch"]
    kafka, file, delta, rate, _, _ = entry.sources
    assert kafka.kafka_partitions() == {("orders", 0): 23, ("orders", 1): 57}
    assert file.log_offset == 4
    assert (delta.reservoir_id, delta.reservoir_version, delta.delta_index) == ("abc", 7, -1)
    assert delta.delta_is_starting_version is False
    assert rate.rate_value == 13


def test_offsets_v2_source_lines_are_id_colon_json():
    entry = parse_offsets_file(f'v2\n{META}\n0:{{"logOffset":4}}\nclicks:{{"t":{{"0":1}}}}', "o/0", 0)
    assert [(s.source_id, s.kind) for s in entry.sources] == [("0", "file"), ("clicks", "kafka")]
    with pytest.raises(CorruptCheckpointFileError, match="not 'id:offset'"):
        parse_offsets_file(f"v2\n{META}\n-", "o/0", 0)


@pytest.mark.parametrize(
    "text, error, message",
    [
        ("", CorruptCheckpointFileError, "empty or truncated"),
        ("v1", CorruptCheckpointFileError, "batch metadata line after the header is missing"),
        ('v1\n{"batchWatermarkMs":0,', CorruptCheckpointFileError, "not valid JSON"),
        ("v1\n[1,2]", CorruptCheckpointFileError, "not a JSON object"),
        ("1\n{}", CorruptCheckpointFileError, "version header"),
        ("v3\n{}", UnsupportedCheckpointVersionError, "v3, newer than v2"),
        (f"v1\n{META}\n{{broken", CorruptCheckpointFileError, "offset of source 0"),
    ],
)
def test_bad_offsets_files(text, error, message):
    with pytest.raises(error, match=message) as err:
        parse_offsets_file(text, "s3://b/ckpt/offsets/7", 7)
    assert "s3://b/ckpt/offsets/7" in str(err.value)


def test_commit_files_v1_and_v2():
    assert parse_commit_file('v1\n{"nextBatchWatermarkMs":0}', "c/0") == (1, {"nextBatchWatermarkMs": 0})
    version, body = parse_commit_file('v2\n{"nextBatchWatermarkMs":7,"stateUniqueIds":{"0":[["a"],["b"]]}}', "c/1")
    assert version == 2 and body["nextBatchWatermarkMs"] == 7
    with pytest.raises(UnsupportedCheckpointVersionError):
        parse_commit_file("v3\n{}", "c/2")


def test_query_metadata_with_and_without_header():
    assert parse_query_metadata('{"id":"q-1"}', "m") == "q-1"
    assert parse_query_metadata('v1\n{"id":"q-2"}\n', "m") == "q-2"
    for bad in ("", "{}", '{"id":', "[]"):
        with pytest.raises(CorruptCheckpointFileError, match="query id|not valid JSON"):
            parse_query_metadata(bad, "m")


def test_source_heads():
    assert parse_source_head(b'\x00v1\n{"orders":{"0":0,"1":5}}') == {"orders": {"0": 0, "1": 5}}
    assert parse_source_head(b"v1\n1795468736127") == 1795468736127
    assert parse_source_head(b'v1\n{"path":"file:/x.json","timestamp":1,"batchId":0}') is None
    assert parse_source_head(b"garbage") is None


def test_unknown_offset_shapes_are_kept_raw():
    source = classify_offset(0, "0", '{"custom":[1,2]}', "o/0")
    assert source.kind == "unknown" and source.offset == {"custom": [1, 2]}


@pytest.mark.parametrize(
    ("description", "table"),
    [
        ("DeltaSink[file:/lake/orders]", "/lake/orders"),
        ("DeltaSink[file:///lake/orders/]", "/lake/orders"),
        ("DeltaSink[/lake/orders]", "/lake/orders"),
        ("DeltaSink[s3a://lake/orders]", "s3a://lake/orders"),
        ("DeltaSink[file:/lake/my orders]", "/lake/my orders"),
        # Not Spark's Delta sink, or nothing a reader may follow: no table.
        ("FileSink[file:/lake/orders]", None),
        ("org.apache.spark.sql.kafka010.KafkaSourceProvider$KafkaTable@1f", None),
        ("DeltaSink[orders]", None),
        ("DeltaSink[file:/lake/../etc]", None),
        ("DeltaSink[/lake/./orders]", None),
        ("DeltaSink[/lake/orders]\n", None),
        ("DeltaSink[/lake/ørders]", None),
        ("DeltaSink[/" + "a" * 3000 + "]", None),
        ("DeltaSink[]", None),
        (None, None),
        (["DeltaSink[/lake/orders]"], None),
    ],
)
def test_the_delta_sink_table_from_a_progress_event_description(description, table):
    assert delta_sink_table(description) == table


def test_contiguity():
    assert contiguous_batches({5: {}, 6: {}, 7: {}}, "o") == [5, 6, 7]
    assert contiguous_batches({}, "o") == []
    with pytest.raises(NonContiguousBatchesError, match=r"o has batches 1..9 with 7 missing \(2, 3, 4, 5, 6 ...\)"):
        contiguous_batches({1: {}, 9: {}}, "o")


def _status(committed: int | None, last_commit: float | None) -> CheckpointStatus:
    return CheckpointStatus(
        checkpoint="file:///c", query_id="q", latest_planned_batch=committed, latest_committed_batch=committed,
        has_uncommitted_batch=False, incomplete_offsets_file=False, oldest_retained_batch=0, offsets_log_version=1,
        commits_log_version=1, batch_timestamp_ms=None, batch_watermark_ms=None, committed_batch_timestamp_ms=None,
        next_watermark_ms=None, last_commit_time=last_commit, planned_sources=[], committed_sources=[],
        initial_offsets={}, stateful_operators=[], conf={}, read_at=0.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "committed, last_commit, criteria, state",
    [
        (5, 1000.0, ProgressCriteria(target_batch_id=5), "met"),
        (4, 1000.0, ProgressCriteria(target_batch_id=5), "waiting"),
        (4, 1000.0, ProgressCriteria(target_batch_id=5, max_staleness_seconds=60), "stale"),
        (4, 1990.0, ProgressCriteria(target_batch_id=5, max_staleness_seconds=60), "waiting"),
        (9, 1500.0, ProgressCriteria(committed_after=1400.0), "met"),
        (9, 1400.0, ProgressCriteria(committed_after=1400.0), "waiting"),
        (None, None, ProgressCriteria(max_staleness_seconds=1), "waiting"),
        (0, 10.0, ProgressCriteria(), "met"),
        (9, 1999.0, ProgressCriteria(target_batch_id=9, committed_after=1999.5), "waiting"),
    ],
)
def test_evaluate_progress(committed, last_commit, criteria, state):
    verdict = evaluate_progress(_status(committed, last_commit), criteria, now=2000.0)
    assert verdict.state == state
    assert json.loads(json.dumps(verdict.to_dict()))["state"] == state


def test_verdicts_raise_their_named_errors():
    with pytest.raises(StreamStaleError, match="stale!"):
        Verdict("stale", "stale!").raise_for_state()
    with pytest.raises(CorruptCheckpointFileError, match="torn"):
        Verdict("error", "torn", error="CorruptCheckpointFileError").raise_for_state()
    with pytest.raises(SparkStreamingError, match="odd"):
        Verdict("error", "odd", error="KeyError").raise_for_state()
    Verdict("met", "ok").raise_for_state()


def test_trigger_serialize_round_trip_and_validation():
    trigger = CheckpointProgressTrigger("s3://b/c", {"target_batch_id": 3}, storage_conn_id="aws", poll_interval=5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_spark_streaming.triggers.checkpoint.CheckpointProgressTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert CheckpointProgressTrigger(**kwargs).serialize() == (classpath, kwargs)
    with pytest.raises(SparkStreamingError, match="poll_interval"):
        CheckpointProgressTrigger("/c", {}, poll_interval=0)
    with pytest.raises(SparkStreamingError, match="criteria"):
        CheckpointProgressTrigger("/c", {"target": 3})
    with pytest.raises(SparkStreamingError, match="checkpoint path"):
        CheckpointProgressTrigger("", {})


def test_require_fully_committed():
    status = _status(4, 1999.0)
    status.latest_planned_batch, status.has_uncommitted_batch = 5, True
    verdict = evaluate_progress(status, ProgressCriteria(require_fully_committed=True), now=2000.0)
    assert verdict.state == "waiting" and "batch 5 is planned but not committed" in verdict.message
    assert evaluate_progress(status, ProgressCriteria(), now=2000.0).state == "met"


def test_a_lease_read_while_the_runner_rewrites_it_is_retried_not_taken_for_free(tmp_path, monkeypatch):
    """The runner truncates and rewrites ``_lease`` in place; a read in that instant sees no JSON."""
    import os
    import time

    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

    hook = RunnerControlHook(str(tmp_path))
    body = {"app_id": "app-1", "host": "h", "pid": 7, "ttl_ms": 30_000, "submission": "tag"}
    (tmp_path / "_lease").write_text(json.dumps({**body, "heartbeat_ms": int(time.time() * 1000)}))
    reads = iter([b"", b'{"app_id": "ap'])  # truncated, then half written, then whole
    real_read = hook.read_bytes
    monkeypatch.setattr(hook, "read_bytes", lambda *parts, **kw: next(reads, None) or real_read(*parts, **kw))

    lease = hook.get_lease()
    assert lease is not None and (lease.app_id, lease.submission_tag) == ("app-1", "tag")

    # A lease that stays torn (its driver died mid-write) is judged by its age.
    monkeypatch.undo()
    (tmp_path / "_lease").write_text('{"app_id": "app-1", "ho')
    assert hook.get_lease() is not None and hook.get_lease().app_id is None
    old = time.time() - 120
    os.utime(tmp_path / "_lease", (old, old))
    assert hook.get_lease() is None


def test_a_progress_event_is_published_whole_and_a_rerun_batch_replaces_it(tmp_path, monkeypatch):
    """A local file is visible while it is written, so the event goes aside first and is renamed into place."""
    from airflow_spark_streaming.hooks import runner_control
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

    hook = RunnerControlHook(str(tmp_path))
    seen_while_writing = []
    real_pipe = hook.root.fs.pipe_file

    def pipe_and_look(path, data, **kw):
        real_pipe(path, data, **kw)
        seen_while_writing.append(sorted(p.name for p in (tmp_path / "_progress").iterdir()))

    monkeypatch.setattr(hook.root.fs, "pipe_file", pipe_and_look)
    hook.put_progress(0, b'{"batchId": 0, "numInputRows": 1}')
    hook.put_progress(0, b'{"batchId": 0, "numInputRows": 2}')  # the batch ran again after a restart
    assert seen_while_writing == [[".0.json.tmp"], [".0.json.tmp", "0.json"]]  # never a half-written 0.json
    assert sorted(p.name for p in (tmp_path / "_progress").iterdir()) == ["0.json"]
    assert [e["numInputRows"] for e in hook.get_progress()] == [2]
    for batch in range(1, runner_control.PROGRESS_KEEP + 1):
        hook.put_progress(batch, json.dumps({"batchId": batch}).encode())
    assert [e["batchId"] for e in hook.get_progress()][0] == 1  # the newest PROGRESS_KEEP are kept
