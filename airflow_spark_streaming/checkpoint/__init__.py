"""Spark's Structured Streaming checkpoint format: pure parsing and the models it yields.

Nothing here touches storage: :class:`~airflow_spark_streaming.hooks.checkpoint.CheckpointHook`
reads the files and hands their contents to these functions.
"""

from __future__ import annotations

from airflow_spark_streaming.checkpoint.models import (
    BatchRecord,
    CheckpointHistory,
    CheckpointStatus,
    OffsetsEntry,
    SourceOffset,
    StatefulOperator,
)
from airflow_spark_streaming.checkpoint.parsing import (
    BATCH_FILE,
    COMMITS_MAX_VERSION,
    HEADER,
    OFFSETS_MAX_VERSION,
    classify_offset,
    contiguous_batches,
    delta_sink_table,
    mtime_of,
    parse_commit_file,
    parse_header,
    parse_json,
    parse_offsets_file,
    parse_operator_metadata,
    parse_query_metadata,
    parse_source_head,
)

__all__ = [
    "BATCH_FILE", "COMMITS_MAX_VERSION", "HEADER", "OFFSETS_MAX_VERSION", "BatchRecord", "CheckpointHistory",
    "CheckpointStatus", "OffsetsEntry", "SourceOffset", "StatefulOperator", "classify_offset", "contiguous_batches",
    "delta_sink_table", "mtime_of", "parse_commit_file", "parse_header", "parse_json", "parse_offsets_file", "parse_operator_metadata",
    "parse_query_metadata", "parse_source_head",
]  # fmt: skip
