"""Every damaged variant of a real checkpoint raises its named error, naming the file; torn latest writes do not."""

from __future__ import annotations

import shutil

import pytest

from airflow_spark_streaming.exceptions import (
    CheckpointError,
    CheckpointMetadataMissingError,
    CheckpointNotFoundError,
    CorruptCheckpointFileError,
    NonContiguousBatchesError,
    SparkStreamingError,
    UnsupportedCheckpointVersionError,
)
from airflow_spark_streaming.hooks.checkpoint import CheckpointHook


def _truncate(path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])
    (path.parent / f".{path.name}.crc").unlink(missing_ok=True)


def _write(path, text: str) -> None:
    path.write_text(text)
    (path.parent / f".{path.name}.crc").unlink(missing_ok=True)


CORPUS = {
    # name: (damage, expected error, text the message must contain)
    "missing path": (lambda c: shutil.rmtree(c), CheckpointNotFoundError, "does not exist"),
    "empty directory": (lambda c: (shutil.rmtree(c), c.mkdir()), CheckpointNotFoundError, "empty directory"),
    "missing metadata": (lambda c: (c / "metadata").unlink(), CheckpointMetadataMissingError, "metadata is missing"),
    "garbage metadata": (lambda c: _write(c / "metadata", "\x00\x01garbage"), CorruptCheckpointFileError, "metadata"),
    "empty metadata": (lambda c: _write(c / "metadata", ""), CorruptCheckpointFileError, "metadata"),
    "truncated committed offsets": (
        lambda c: _truncate(c / "offsets" / "3", 20),
        CorruptCheckpointFileError,
        "offsets/3",
    ),
    "empty commit": (lambda c: _write(c / "commits" / "3", ""), CorruptCheckpointFileError, "commits/3 is empty"),
    "garbage commit": (lambda c: _write(c / "commits" / "3", "v1\n{not json"), CorruptCheckpointFileError, "commits/3"),
    "commit without body": (lambda c: _write(c / "commits" / "3", "v1\n"), CorruptCheckpointFileError, "truncated"),
    "no header": (
        lambda c: _write(c / "commits" / "3", '{"nextBatchWatermarkMs":0}'),
        CorruptCheckpointFileError,
        "version header",
    ),
    "newer offsets version": (
        lambda c: _write(c / "offsets" / "3", (c / "offsets" / "3").read_text().replace("v1", "v9", 1)),
        UnsupportedCheckpointVersionError,
        "v9",
    ),
    "newer commits version": (
        lambda c: _write(c / "commits" / "3", "v3\n{}"),
        UnsupportedCheckpointVersionError,
        "commits/3 is log version v3",
    ),
    "gap in offsets": (
        lambda c: ((c / "offsets" / "1").unlink(), (c / "commits" / "1").unlink()),
        NonContiguousBatchesError,
        "1 missing (1)",
    ),
    "gap in commits": (lambda c: (c / "commits" / "2").unlink(), NonContiguousBatchesError, "commits"),
    "commit without offsets": (
        lambda c: _write(c / "commits" / "4", "v1\n{}"),
        CorruptCheckpointFileError,
        "no matching offsets file",
    ),
    "garbage source line": (
        lambda c: _write(c / "offsets" / "3", "\n".join((c / "offsets" / "3").read_text().split("\n")[:2] + ["{oops"])),
        CorruptCheckpointFileError,
        "offset of source 0",
    ),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_corrupted_variant_raises_its_named_error(case, checkpoint_copy):
    damage, expected, text = CORPUS[case]
    damage(checkpoint_copy)
    with pytest.raises(expected) as err:
        CheckpointHook(str(checkpoint_copy)).get_status()
    assert text in str(err.value)
    assert isinstance(err.value, CheckpointError | SparkStreamingError)
    assert str(checkpoint_copy) in str(err.value)


def test_torn_latest_offsets_file_is_an_uncommitted_batch(checkpoint_copy):
    # Spark writes offsets/4 before running batch 4; killed mid-write, it is torn.
    _write(checkpoint_copy / "offsets" / "4", 'v1\n{"batchWatermarkMs":0,"batchTime')
    status = CheckpointHook(str(checkpoint_copy)).get_status()
    assert status.has_uncommitted_batch and status.uncommitted_batch == 4
    assert status.incomplete_offsets_file and status.planned_sources == []
    assert status.latest_committed_batch == 3 and status.committed_sources[0].log_offset == 3
    history = CheckpointHook(str(checkpoint_copy)).get_history(last=2)
    assert [(b.batch_id, b.committed, b.batch_timestamp_ms is None) for b in history.batches] == [
        (3, True, False),
        (4, False, True),
    ]


def test_killed_batch_without_commit_is_uncommitted(checkpoint_copy):
    (checkpoint_copy / "commits" / "3").unlink()
    status = CheckpointHook(str(checkpoint_copy)).get_status()
    assert (status.latest_planned_batch, status.latest_committed_batch, status.uncommitted_batch) == (3, 2, 3)
    assert status.planned_sources[0].log_offset == 3 and status.committed_sources[0].log_offset == 2


def test_leftover_tmp_and_crc_files_are_ignored(checkpoint_copy):
    (checkpoint_copy / "offsets" / ".4.3f1c2d.tmp").write_text("v1\n{")
    (checkpoint_copy / "commits" / ".4.9a8b.TID7.tmp").write_text("")
    (checkpoint_copy / "offsets" / ".4.crc").write_bytes(b"crc")
    status = CheckpointHook(str(checkpoint_copy)).get_status()
    assert (status.latest_planned_batch, status.latest_committed_batch) == (3, 3)
    assert not status.has_uncommitted_batch


def test_no_offset_yet_is_read_as_none(checkpoint_copy):
    lines = (checkpoint_copy / "offsets" / "3").read_text().split("\n")
    _write(checkpoint_copy / "offsets" / "3", "\n".join(lines[:3] + ["-"]))
    status = CheckpointHook(str(checkpoint_copy)).get_status()
    assert [s.kind for s in status.committed_sources] == ["file", "none"]
    assert status.committed_sources[1].offset is None
