"""Spark's checkpoint format, parsed from text or bytes the caller read (no I/O).

Layout (Spark 4.x)::

    metadata              {"id": "<query id>"}
    offsets/<batch>       v1|v2, batch metadata JSON, one offset line per source
    commits/<batch>       v1|v2, {"nextBatchWatermarkMs": ...}
    sources/<n>/0         Kafka: NUL byte, v1, initial offsets; rate: v1, creation time
    state/<op>/...        state store files, _metadata/metadata describes the operator
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from airflow_spark_streaming.checkpoint.models import OffsetsEntry, SourceOffset
from airflow_spark_streaming.exceptions import (
    CorruptCheckpointFileError,
    NonContiguousBatchesError,
    UnsupportedCheckpointVersionError,
)
from airflow_spark_streaming.storage.locations import is_absolute_location, is_local_uri, local_path
from airflow_spark_streaming.utils.bounded_json import UntrustedJsonError, is_ascii_decimal, loads

OFFSETS_MAX_VERSION = 2
COMMITS_MAX_VERSION = 2
# ASCII digits only: Spark writes nothing else, and ``\d`` would also match "²" or Arabic-Indic digits.
BATCH_FILE = re.compile(r"^(?P<batch>[0-9]+)(?P<compact>\.compact)?$")
HEADER = re.compile(r"^v(?P<version>[0-9]{1,9})$")
#: Spark's Delta sink as a progress event describes it (``DeltaSink.toString``): ``DeltaSink[<table path>]``.
DELTA_SINK_DESCRIPTION = re.compile(r"DeltaSink\[(?P<path>[\x21-\x7e][\x20-\x7e]{0,2047})\]")


def parse_header(lines: list[str], path: str, max_version: int) -> int:
    """The ``vN`` header of a log file; raise if missing, malformed or too new."""
    if not lines or not lines[0].strip():
        raise CorruptCheckpointFileError(f"{path} is empty or truncated: it has no version header.")
    match = HEADER.match(lines[0].strip())
    if not match:
        raise CorruptCheckpointFileError(
            f"{path} does not start with a version header such as 'v1' (found {lines[0][:40]!r}); "
            "the file is not a Spark log file or is corrupt."
        )
    version = int(match.group("version"))
    if version > max_version:
        raise UnsupportedCheckpointVersionError(
            f"{path} is log version v{version}, newer than v{max_version}, the newest this provider reads; "
            "the checkpoint was written by a newer Spark: upgrade airflow-spark-streaming."
        )
    return version


def parse_json(text: str, path: str, what: str) -> Any:
    """JSON from a checkpoint file, bounded in size, depth and digits (the lake is untrusted input)."""
    try:
        return loads(text)
    except UntrustedJsonError as err:
        raise CorruptCheckpointFileError(
            f"{path}: {what} is not bounded, valid JSON ({err}); the file is truncated, corrupt or not Spark's."
        ) from None


def _int_field(value: Any, path: str, what: str) -> int:
    """An integer field of an offset; a string of digits is accepted (JSON writers differ), anything else is corrupt."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and is_ascii_decimal(value.strip().removeprefix("-")):
        return int(value)
    raise CorruptCheckpointFileError(f"{path}: {what} is {value!r}, not an integer; the file is corrupt.")


def classify_offset(index: int, source_id: str, raw: str, path: str) -> SourceOffset:
    """Parse one source line of an offsets file into a typed :class:`SourceOffset`."""
    raw = raw.strip()
    if raw == "-":
        return SourceOffset(index=index, source_id=source_id, kind="none", offset=None)
    value = parse_json(raw, path, f"the offset of source {source_id}")
    source = SourceOffset(index=index, source_id=source_id, kind="unknown", offset=value)
    if isinstance(value, int) and not isinstance(value, bool):
        source.kind, source.rate_value = "rate", value
    elif isinstance(value, dict):
        if "reservoirVersion" in value:
            source.kind = "delta"
            source.reservoir_id = value.get("reservoirId")
            source.reservoir_version = _int_field(
                value["reservoirVersion"], path, f"source {source_id} reservoirVersion"
            )
            source.delta_index = _int_field(value.get("index", -1), path, f"source {source_id} index")
            starting = value.get("isStartingVersion")
            source.delta_is_starting_version = starting if isinstance(starting, bool) else None
        elif set(value) == {"logOffset"}:
            source.kind, source.log_offset = (
                "file",
                _int_field(value["logOffset"], path, f"source {source_id} logOffset"),
            )
        elif {"offset", "timestamp"} <= set(value):
            source.kind = "rate-micro-batch"
        elif value and all(
            isinstance(parts, dict)
            and all(is_ascii_decimal(p.removeprefix("-")) and isinstance(o, int) for p, o in parts.items())
            for parts in value.values()
        ):
            source.kind = "kafka"
            source.kafka = {t: {p: int(o) for p, o in parts.items()} for t, parts in value.items()}
    return source


def _log_file(text: str, path: str, max_version: int, what: str) -> tuple[list[str], int, dict[str, Any]]:
    """Lines, version and the JSON object on the line after the header, of an offsets or commits file."""
    lines = text.split("\n")
    version = parse_header(lines, path, max_version)
    if len(lines) < 2 or not lines[1].strip():
        raise CorruptCheckpointFileError(f"{path} is truncated: {what} after the header is missing.")
    body = parse_json(lines[1], path, what)
    if not isinstance(body, dict):
        raise CorruptCheckpointFileError(f"{path}: {what} is not a JSON object.")
    return lines, version, body


def parse_offsets_file(text: str, path: str, batch_id: int) -> OffsetsEntry:
    lines, version, metadata = _log_file(text, path, OFFSETS_MAX_VERSION, "the batch metadata line")
    sources = []
    for index, line in enumerate(text_line for text_line in lines[2:] if text_line.strip()):
        source_id, raw = str(index), line
        if version >= 2:
            if ":" not in line:
                raise CorruptCheckpointFileError(f"{path}: v2 source line {line[:60]!r} is not 'id:offset'.")
            source_id, raw = line.split(":", 1)
        sources.append(classify_offset(index, source_id, raw, path))
    conf = metadata.get("conf") or {}
    if not isinstance(conf, dict):
        raise CorruptCheckpointFileError(
            f"{path}: the batch metadata's conf is a {type(conf).__name__}, not an object of Spark settings; "
            "the file is corrupt."
        )
    return OffsetsEntry(
        batch_id=batch_id,
        version=version,
        batch_timestamp_ms=metadata.get("batchTimestampMs"),
        batch_watermark_ms=metadata.get("batchWatermarkMs"),
        conf={str(k): str(v) for k, v in conf.items()},
        sources=sources,
    )


def parse_commit_file(text: str, path: str) -> tuple[int, dict[str, Any]]:
    _, version, body = _log_file(text, path, COMMITS_MAX_VERSION, "the commit metadata line")
    return version, body


def parse_query_metadata(text: str, path: str) -> str:
    """The query id from the checkpoint's ``metadata`` file."""
    body = "\n".join(line for line in text.split("\n") if line.strip() and not HEADER.match(line.strip()))
    data = parse_json(body, path, "the query metadata") if body else None
    if not isinstance(data, dict) or not data.get("id"):
        raise CorruptCheckpointFileError(
            f'{path} holds no query id (expected {{"id": "<uuid>"}}); it is truncated or corrupt.'
        )
    return str(data["id"])


def parse_source_head(data: bytes) -> Any:
    """The initial offsets (Kafka) or creation time (rate) in ``sources/<n>/0``; ``None`` otherwise.

    Kafka writes a NUL byte before the ``v1`` header (kept for compatibility with
    Spark 2.1.0); that byte is dropped before parsing.
    """
    text = data.lstrip(b"\x00").decode("utf-8", errors="replace")
    lines = text.split("\n")
    if len(lines) < 2 or not HEADER.match(lines[0].strip()):
        return None
    try:
        value = loads(lines[1])
    except UntrustedJsonError:
        return None
    if isinstance(value, int) or (
        isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values())
    ):
        return value
    return None


def mtime_of(info: dict[str, Any]) -> float | None:
    """Modification time from an fsspec ``info``/``ls`` entry, whatever the store calls it."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def contiguous_batches(names: set[int] | dict[int, Any], folder: str) -> list[int]:
    """Sorted batch ids; raise if there is a gap between the oldest and the newest.

    The gaps are counted arithmetically from neighbouring ids, so ``0`` and ``10**20``
    cost two comparisons, not a list of every missing id.
    """
    batches = sorted(names)
    missing_count = batches[-1] - batches[0] + 1 - len(batches) if batches else 0
    if missing_count:
        first_missing: list[int] = []
        for low, high in zip(batches, batches[1:], strict=False):
            if high - low > 1:
                first_missing.extend(range(low + 1, min(high, low + 1 + 5 - len(first_missing))))
            if len(first_missing) >= 5:
                break
        shown = ", ".join(map(str, first_missing)) + (" ..." if missing_count > len(first_missing) else "")
        raise NonContiguousBatchesError(
            f"{folder} has batches {batches[0]}..{batches[-1]} with {missing_count} missing ({shown}); "
            "Spark cannot restart from a log with gaps. Restore the missing files or start a new checkpoint."
        )
    return batches


def parse_operator_metadata(text: str, path: str) -> tuple[str | None, list[str], int | None]:
    """Name, state store names and partition count of a stateful operator, from ``state/<op>/_metadata/metadata``."""
    lines = text.split("\n")
    if len(lines) < 2 or not HEADER.match(lines[0].strip()):
        return None, [], None
    info = parse_json(lines[1], path, "the operator metadata")
    stores = info.get("stateStoreInfo", []) if isinstance(info, dict) else None
    operator = info.get("operatorInfo") or {} if isinstance(info, dict) else None
    if (
        not isinstance(stores, list)
        or not isinstance(operator, dict)
        or not all(isinstance(s, dict) and isinstance(s.get("numPartitions", 0), int) for s in stores)
    ):
        raise CorruptCheckpointFileError(
            f"{path}: the operator metadata is not Spark's shape "
            '({"operatorInfo": {...}, "stateStoreInfo": [...]}); the file is corrupt.'
        )
    return (
        operator.get("operatorName"),
        [s.get("storeName") for s in stores],
        max((s.get("numPartitions", 0) for s in stores), default=None),
    )


def delta_sink_table(description: object) -> str | None:
    """The table a progress event's ``sink.description`` names when the sink is Spark's Delta sink, else ``None``.

    Hadoop spells a local table ``file:/x``; it comes back as ``/x``. Only an absolute ASCII location
    without ``.`` or ``..`` segments is returned: the description is read from the lake.
    """
    if not isinstance(description, str):
        return None
    match = DELTA_SINK_DESCRIPTION.fullmatch(description)
    if match is None or any(part in (".", "..") for part in match["path"].split("/")):
        return None
    table = match["path"].rstrip("/")
    if is_local_uri(table):
        table = str(local_path(table))
    return table if is_absolute_location(table) else None
