"""Checkpoint reads are bounded: hostile files, huge ids and malformed content give named errors (no JVM).

The checkpoints are written by hand in Spark's layout on the local disk and read through
the real :class:`CheckpointHook` (ObjectStoragePath over the local file system).
"""

from __future__ import annotations

import os
import sys
import threading
import tracemalloc

import pytest

from airflow_spark_streaming.checkpoint import contiguous_batches, parse_offsets_file, parse_operator_metadata
from airflow_spark_streaming.exceptions import (
    CheckpointFileTooLargeError,
    CorruptCheckpointFileError,
    InvalidCheckpointPathError,
    NonContiguousBatchesError,
    NotARegularFileError,
    StorageSupportMissingError,
)
from airflow_spark_streaming.hooks import checkpoint_storage as _storage
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

META = '{"batchWatermarkMs":0,"batchTimestampMs":1795468736127,"conf":{"spark.sql.shuffle.partitions":"2"}}'
OFFSETS = f'v1\n{META}\n{{"logOffset":3}}'


def _checkpoint(root, batches=(0, 1, 2), committed=(0, 1, 2)):
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    (root / "metadata").write_text('{"id":"5f0c1c9e-7c3b-4b8a-9d7e-2f3c0a1b2c3d"}')
    for batch in batches:
        (root / "offsets" / str(batch)).write_text(OFFSETS)
    for batch in committed:
        (root / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')
    return root


def test_gap_between_zero_and_a_huge_id_is_counted_not_listed():
    tracemalloc.start()
    with pytest.raises(NonContiguousBatchesError) as raised:
        contiguous_batches({0, 99999999999999999999}, "ckpt/offsets")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1024 * 1024  # the old code built a 3.6 GB list here
    assert "99999999999999999998 missing (1, 2, 3, 4, 5 ...)" in str(raised.value)


def test_gap_report_names_the_first_missing_ids_across_several_gaps():
    with pytest.raises(NonContiguousBatchesError, match=r"4 missing \(1, 3, 4, 5\)"):
        contiguous_batches({0, 2, 6}, "ckpt/offsets")
    assert contiguous_batches({3, 4, 5}, "ckpt/offsets") == [3, 4, 5]


def test_huge_batch_id_in_a_checkpoint_is_a_named_error(tmp_path):
    root = _checkpoint(tmp_path / "ckpt", batches=(0,), committed=(0,))
    (root / "offsets" / "99999999999999999999").write_text(OFFSETS)
    with pytest.raises(NonContiguousBatchesError, match="offsets"):
        CheckpointHook(str(root)).get_status()


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ('{"logOffset":"four"}', "logOffset"),
        ('{"logOffset":1.5}', "logOffset"),
        ('{"sourceVersion":1,"reservoirId":"a","reservoirVersion":"x","index":-1}', "reservoirVersion"),
        ('{"sourceVersion":1,"reservoirId":"a","reservoirVersion":null,"index":-1}', "reservoirVersion"),
    ],
)
def test_non_integer_offsets_are_corrupt(line, named):
    with pytest.raises(CorruptCheckpointFileError, match=f"ckpt/offsets/4.*{named}"):
        parse_offsets_file(f"v1\n{META}\n{line}", "ckpt/offsets/4", 4)


def test_conf_that_is_a_list_is_corrupt():
    text = 'v1\n{"batchWatermarkMs":0,"batchTimestampMs":1,"conf":["a","b"]}\n{"logOffset":1}'
    with pytest.raises(CorruptCheckpointFileError, match="ckpt/offsets/1.*conf"):
        parse_offsets_file(text, "ckpt/offsets/1", 1)


@pytest.mark.parametrize("body", ["[1, 2]", '{"stateStoreInfo": 3}', '{"stateStoreInfo": [{"numPartitions": "x"}]}'])
def test_state_operator_metadata_of_the_wrong_shape_is_corrupt(body):
    with pytest.raises(CorruptCheckpointFileError, match="state/0/_metadata/metadata"):
        parse_operator_metadata(f"v1\n{body}", "ckpt/state/0/_metadata/metadata")


def test_oversized_offsets_file_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(_storage, "MAX_METADATA_BYTES", 1024)  # the same check as 16 MiB, without a 16 MiB file
    root = _checkpoint(tmp_path / "ckpt")
    (root / "offsets" / "2").write_text(OFFSETS + "\n" + "9" * 4096)
    with pytest.raises(CheckpointFileTooLargeError, match="offsets/2"):
        CheckpointHook(str(root)).get_status()


def test_metadata_cap_is_generous_for_real_files():
    assert _storage.MAX_METADATA_BYTES == 16 * 1024 * 1024


def _status_in_thread(hook: CheckpointHook) -> BaseException | None:
    """get_status in a daemon thread; a hang (the old FIFO behaviour) fails the test instead of the run."""
    outcome: list[BaseException | None] = []

    def run():
        try:
            hook.get_status()
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert outcome, "get_status did not return within 20 s: it is blocked on a special file"
    return outcome[0]


def test_fifo_offsets_file_is_refused_before_opening(tmp_path):
    root = _checkpoint(tmp_path / "ckpt")
    (root / "offsets" / "2").unlink()
    os.mkfifo(root / "offsets" / "2")
    error = _status_in_thread(CheckpointHook(str(root)))
    assert isinstance(error, NotARegularFileError) and "offsets/2" in str(error)


def test_symlink_to_dev_zero_is_refused(tmp_path):
    root = _checkpoint(tmp_path / "ckpt")
    (root / "commits" / "2").unlink()
    (root / "commits" / "2").symlink_to("/dev/zero")
    error = _status_in_thread(CheckpointHook(str(root)))
    assert isinstance(error, NotARegularFileError) and "commits/2" in str(error)


def test_symlink_loop_is_corrupt(tmp_path):
    root = _checkpoint(tmp_path / "ckpt")
    (root / "metadata").unlink()
    (root / "metadata").symlink_to(root / "metadata")
    with pytest.raises(CorruptCheckpointFileError, match="metadata.*symlink loop"):
        CheckpointHook(str(root)).get_status()


def test_garbage_offsets_file_of_the_batch_before_the_newest_is_reported(tmp_path):
    root = _checkpoint(tmp_path / "ckpt", batches=(0, 1, 2, 3), committed=(0, 1, 2, 3))
    (root / "offsets" / "2").write_text("\x00garbage")
    with pytest.raises(CorruptCheckpointFileError, match="offsets/2"):
        CheckpointHook(str(root)).get_status()


def test_healthy_checkpoint_still_reads(tmp_path):
    status = CheckpointHook(str(_checkpoint(tmp_path / "ckpt"))).get_status()
    assert (status.latest_planned_batch, status.latest_committed_batch) == (2, 2)
    assert status.committed_sources[0].log_offset == 3


@pytest.mark.parametrize("checkpoint", ["", "   ", None, 7])
def test_empty_or_missing_checkpoint_path_is_refused_at_construction(checkpoint):
    with pytest.raises(InvalidCheckpointPathError, match="checkpoint"):
        CheckpointHook(checkpoint)


@pytest.mark.parametrize(
    ("uri", "hint"),
    [
        ("gs://bucket/ckpt", "apache-airflow-providers-google"),
        ("abfs://container@account.dfs.core.windows.net/ckpt", "apache-airflow-providers-microsoft-azure"),
    ],
)
def test_missing_filesystem_support_names_the_install(uri, hint):
    with pytest.raises(StorageSupportMissingError, match=hint):
        CheckpointHook(uri).get_status()


@pytest.mark.parametrize(
    "missing", ["airflow.providers.amazon.aws.hooks.base_aws", "airflow.providers.amazon.aws.fs.s3"]
)
def test_missing_s3_support_names_the_extra(monkeypatch, missing):
    # The Amazon provider and s3fs are installed here; make the import fail the way it does on a worker without
    # them. An S3 checkpoint without a connection reads through StorageHook(None), never Airflow's own s3fs.
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(StorageSupportMissingError, match=r"airflow-spark-streaming\[s3\]"):
        CheckpointHook("s3://bucket/ckpt").get_status()
