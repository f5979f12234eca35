"""Read a Structured Streaming checkpoint from Airflow: how far the query got, and whether it moves.

The checkpoint is read through Airflow's :class:`~airflow.sdk.ObjectStoragePath`, so
``file://``, ``s3://``, ``gs://`` and ``abfs://`` work with the user's storage
connections. Reading a status costs one listing of the checkpoint root, one of
``offsets/`` and one of ``commits/``, then the few latest files, however many
batches Spark has retained.

Layout (Spark 4.x)::

    metadata              {"id": "<query id>"}
    offsets/<batch>       v1|v2, batch metadata JSON, one offset line per source
    commits/<batch>       v1|v2, {"nextBatchWatermarkMs": ...}
    sources/<n>/0         Kafka: NUL byte, v1, initial offsets; rate: v1, creation time
    state/<op>/...        state store files, _metadata/metadata describes the operator
"""

from __future__ import annotations

import json
import posixpath
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook

from airflow_spark_streaming.exceptions import (
    CheckpointMetadataMissingError,
    CheckpointNotFoundError,
    CorruptCheckpointFileError,
    NonContiguousBatchesError,
    UnsupportedCheckpointVersionError,
)
from airflow_spark_streaming.verdict import Verdict

OFFSETS_MAX_VERSION = 2
PROGRESS_DIR = "_progress"  # written by the provider's stream runner
LEASE_FILE = "_lease"  # heartbeat of the runner's live query
STOP_FILE = "_stop"  # asks the runner's query to stop after its current batch
SUBMISSION_FILE = "_submission"  # which driver the provider submitted on this checkpoint, and how
DEFAULT_LEASE_TTL_SECONDS = 30.0  # the runner's default; judges a lease too torn to say its own
STAGING_DIR = "_staging"  # files a cluster-mode driver reads once (its spec, the Python launcher jar)
COMMITS_MAX_VERSION = 2
_BATCH_FILE = re.compile(r"^(?P<batch>\d+)(?P<compact>\.compact)?$")
_HEADER = re.compile(r"^v(?P<version>\d+)$")
# Enough for the initial offsets of thousands of Kafka partitions; a file
# source's sources/<n>/0 (a list of files) is never read further than this.
_SOURCE_HEAD_BYTES = 256 * 1024


@dataclass
class SourceOffset:
    """One source's offset in one batch, as written in ``offsets/<batch>``.

    ``kind`` is told from the offset's shape: ``kafka`` (topic → partition →
    next offset to read), ``file`` (``logOffset``), ``delta``
    (``reservoirVersion`` and ``index``), ``rate`` (seconds since start),
    ``rate-micro-batch``, ``none`` (``-``: no offset yet) or ``unknown``.
    """

    index: int
    source_id: str
    kind: str
    offset: Any
    kafka: dict[str, dict[str, int]] | None = None
    log_offset: int | None = None
    reservoir_id: str | None = None
    reservoir_version: int | None = None
    delta_index: int | None = None
    rate_value: int | None = None

    def kafka_partitions(self) -> dict[tuple[str, int], int]:
        """``{(topic, partition): next offset}`` of a Kafka source (empty for others)."""
        return {(t, int(p)): o for t, parts in (self.kafka or {}).items() for p, o in parts.items()}


@dataclass
class StatefulOperator:
    """A stateful operator found under ``state/<operator id>``."""

    operator_id: int
    operator_name: str | None
    store_names: list[str]
    num_partitions: int | None
    state_bytes: int | None
    state_files: int | None


@dataclass
class BatchRecord:
    """One retained batch: when it was planned and whether (and when) it committed."""

    batch_id: int
    batch_timestamp_ms: int | None
    committed: bool
    commit_time: float | None


@dataclass
class CheckpointLease:
    """The stream runner's heartbeat: which live driver owns the checkpoint."""

    app_id: str | None
    host: str | None
    pid: int | None
    heartbeat_age_seconds: float
    ttl_seconds: float
    submission_tag: str | None = None  # matches the SparkSubmission that started this driver


@dataclass
class CheckpointStatus:
    """Where a streaming query stands, read from its checkpoint. JSON-serialisable.

    ``latest_planned_batch`` is the newest ``offsets/`` entry (written before a
    batch runs); ``latest_committed_batch`` the newest ``commits/`` entry
    (written after the sink committed). A planned batch above the committed one
    is in flight, or was killed; ``incomplete_offsets_file`` says the newest
    offsets file was still being written, which Spark also treats as not yet
    planned-and-durable.
    """

    checkpoint: str
    query_id: str
    latest_planned_batch: int | None
    latest_committed_batch: int | None
    has_uncommitted_batch: bool
    incomplete_offsets_file: bool
    oldest_retained_batch: int | None
    offsets_log_version: int | None
    commits_log_version: int | None
    batch_timestamp_ms: int | None
    batch_watermark_ms: int | None
    committed_batch_timestamp_ms: int | None
    next_watermark_ms: int | None
    last_commit_time: float | None
    planned_sources: list[SourceOffset]
    committed_sources: list[SourceOffset]
    initial_offsets: dict[str, Any]
    stateful_operators: list[StatefulOperator]
    conf: dict[str, str]
    read_at: float = field(default_factory=time.time)

    @property
    def uncommitted_batch(self) -> int | None:
        return self.latest_planned_batch if self.has_uncommitted_batch else None

    def seconds_since_last_commit(self, now: float | None = None) -> float | None:
        if self.last_commit_time is None:
            return None
        return max(0.0, (now if now is not None else time.time()) - self.last_commit_time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointStatus:
        data = dict(data)
        for key in ("planned_sources", "committed_sources"):
            data[key] = [SourceOffset(**s) for s in data[key]]
        data["stateful_operators"] = [StatefulOperator(**s) for s in data["stateful_operators"]]
        return cls(**data)


@dataclass
class CheckpointHistory:
    """The last batches of a query, oldest first, with derived rates."""

    checkpoint: str
    batches: list[BatchRecord]
    read_at: float = field(default_factory=time.time)

    @property
    def committed(self) -> list[BatchRecord]:
        return [b for b in self.batches if b.committed and b.commit_time is not None]

    def batches_per_minute(self) -> float | None:
        """Committed batches per minute over the span of the listed commits."""
        done = self.committed
        if len(done) < 2:
            return None
        span = done[-1].commit_time - done[0].commit_time
        return None if span <= 0 else (len(done) - 1) * 60.0 / span

    def seconds_since_last_commit(self, now: float | None = None) -> float | None:
        done = self.committed
        if not done:
            return None
        return max(0.0, (now if now is not None else time.time()) - done[-1].commit_time)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "batches_per_minute": self.batches_per_minute()}


# --- parsing: pure functions over file contents ------------------------------------------------


def parse_header(lines: list[str], path: str, max_version: int) -> int:
    """The ``vN`` header of a log file; raise if missing, malformed or too new."""
    if not lines or not lines[0].strip():
        raise CorruptCheckpointFileError(f"{path} is empty or truncated: it has no version header.")
    match = _HEADER.match(lines[0].strip())
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


def _json(text: str, path: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CorruptCheckpointFileError(
            f"{path}: {what} is not valid JSON ({err.msg}); the file is truncated or corrupt."
        ) from err


def classify_offset(index: int, source_id: str, raw: str, path: str) -> SourceOffset:
    """Parse one source line of an offsets file into a typed :class:`SourceOffset`."""
    raw = raw.strip()
    if raw == "-":
        return SourceOffset(index=index, source_id=source_id, kind="none", offset=None)
    value = _json(raw, path, f"the offset of source {source_id}")
    source = SourceOffset(index=index, source_id=source_id, kind="unknown", offset=value)
    if isinstance(value, int) and not isinstance(value, bool):
        source.kind, source.rate_value = "rate", value
    elif isinstance(value, dict):
        if "reservoirVersion" in value:
            source.kind = "delta"
            source.reservoir_id = value.get("reservoirId")
            source.reservoir_version = int(value["reservoirVersion"])
            source.delta_index = int(value.get("index", -1))
        elif set(value) == {"logOffset"}:
            source.kind, source.log_offset = "file", int(value["logOffset"])
        elif {"offset", "timestamp"} <= set(value):
            source.kind = "rate-micro-batch"
        elif value and all(
            isinstance(parts, dict) and all(p.lstrip("-").isdigit() and isinstance(o, int) for p, o in parts.items())
            for parts in value.values()
        ):
            source.kind = "kafka"
            source.kafka = {t: {p: int(o) for p, o in parts.items()} for t, parts in value.items()}
    return source


@dataclass
class OffsetsEntry:
    """One parsed ``offsets/<batch>`` file."""

    batch_id: int
    version: int
    batch_timestamp_ms: int | None
    batch_watermark_ms: int | None
    conf: dict[str, str]
    sources: list[SourceOffset]


def parse_offsets_file(text: str, path: str, batch_id: int) -> OffsetsEntry:
    lines = text.split("\n")
    version = parse_header(lines, path, OFFSETS_MAX_VERSION)
    if len(lines) < 2 or not lines[1].strip():
        raise CorruptCheckpointFileError(f"{path} is truncated: the batch metadata line after the header is missing.")
    metadata = _json(lines[1], path, "the batch metadata line")
    if not isinstance(metadata, dict):
        raise CorruptCheckpointFileError(f"{path}: the batch metadata line is not a JSON object.")
    sources = []
    for index, line in enumerate(text_line for text_line in lines[2:] if text_line.strip()):
        source_id, raw = str(index), line
        if version >= 2:
            if ":" not in line:
                raise CorruptCheckpointFileError(f"{path}: v2 source line {line[:60]!r} is not 'id:offset'.")
            source_id, raw = line.split(":", 1)
        sources.append(classify_offset(index, source_id, raw, path))
    return OffsetsEntry(
        batch_id=batch_id,
        version=version,
        batch_timestamp_ms=metadata.get("batchTimestampMs"),
        batch_watermark_ms=metadata.get("batchWatermarkMs"),
        conf={str(k): str(v) for k, v in (metadata.get("conf") or {}).items()},
        sources=sources,
    )


def parse_commit_file(text: str, path: str) -> tuple[int, dict[str, Any]]:
    lines = text.split("\n")
    version = parse_header(lines, path, COMMITS_MAX_VERSION)
    if len(lines) < 2 or not lines[1].strip():
        raise CorruptCheckpointFileError(f"{path} is truncated: the commit metadata line after the header is missing.")
    body = _json(lines[1], path, "the commit metadata line")
    if not isinstance(body, dict):
        raise CorruptCheckpointFileError(f"{path}: the commit metadata line is not a JSON object.")
    return version, body


def parse_query_metadata(text: str, path: str) -> str:
    """The query id from the checkpoint's ``metadata`` file."""
    body = "\n".join(line for line in text.split("\n") if line.strip() and not _HEADER.match(line.strip()))
    data = _json(body, path, "the query metadata") if body else None
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
    if len(lines) < 2 or not _HEADER.match(lines[0].strip()):
        return None
    try:
        value = json.loads(lines[1])
    except json.JSONDecodeError:
        return None
    if isinstance(value, int) or (
        isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values())
    ):
        return value
    return None


def _mtime(info: dict[str, Any]) -> float | None:
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
    """Sorted batch ids; raise if there is a gap between the oldest and the newest."""
    batches = sorted(names)
    if batches and batches[-1] - batches[0] + 1 != len(batches):
        present = set(batches)
        missing = [b for b in range(batches[0], batches[-1] + 1) if b not in present]
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise NonContiguousBatchesError(
            f"{folder} has batches {batches[0]}..{batches[-1]} with {len(missing)} missing ({shown}); "
            "Spark cannot restart from a log with gaps. Restore the missing files or start a new checkpoint."
        )
    return batches


# --- the hook ---------------------------------------------------------------------------------------


class CheckpointHook(BaseHook):
    """Read the status and recent history of a Structured Streaming checkpoint.

    :param checkpoint: the checkpoint location, a path or a URI such as
        ``s3://bucket/checkpoints/orders``.
    :param conn_id: the Airflow connection for the storage (``aws_default``, a
        ``google_cloud_platform`` or ``wasb`` connection, ...); not needed for
        local paths.
    """

    conn_name_attr = "conn_id"
    default_conn_name = None
    hook_name = "Structured Streaming checkpoint"

    def __init__(self, checkpoint: str, conn_id: str | None = None) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.conn_id = conn_id
        self._root = None

    @property
    def root(self):
        if self._root is None:
            from airflow.sdk import ObjectStoragePath

            uri = self.checkpoint if "://" in self.checkpoint else f"file://{posixpath.abspath(self.checkpoint)}"
            self._root = ObjectStoragePath(uri, conn_id=self.conn_id)
        return self._root

    # Storage access, kept to a few primitives so the cost is easy to count.

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root.path, *parts)

    def _list(self, *parts: str) -> list[str]:
        """One listing, names only (no per-entry stat). A missing folder lists as empty."""
        try:
            entries = self.root.fs.ls(self._path(*parts), detail=False)
        except FileNotFoundError:
            return []
        return [posixpath.basename(str(e).rstrip("/")) for e in entries]

    def _mtime(self, *parts: str) -> float | None:
        return _mtime(self.root.fs.info(self._path(*parts)))

    def _read(self, *parts: str, limit: int | None = None) -> bytes:
        path = self._path(*parts)
        if limit is None:
            return self.root.fs.cat_file(path)
        with self.root.fs.open(path, "rb") as handle:
            return handle.read(limit)

    def _text(self, *parts: str) -> str:
        return self._read(*parts).decode("utf-8", errors="replace")

    def _describe(self, *parts: str) -> str:
        return posixpath.join(str(self.root), *parts)

    def _log(self, folder: str) -> set[int]:
        """Batch ids in a log folder; ``.crc``, ``.tmp`` and other side files are skipped."""
        return {int(m.group("batch")) for m in map(_BATCH_FILE.match, self._list(folder)) if m}

    def _root_entries(self) -> set[str]:
        try:
            exists = self.root.fs.exists(self.root.path)
        except OSError as err:
            raise CheckpointNotFoundError(f"Cannot read checkpoint {self.root}: {err}.") from err
        if not exists:
            raise CheckpointNotFoundError(
                f"Checkpoint {self.root} does not exist; check the path, or whether the query has ever started."
            )
        entries = set(self._list())
        if not entries:
            raise CheckpointNotFoundError(
                f"Checkpoint {self.root} is an empty directory: the query has not started yet, or the path is wrong."
            )
        if "metadata" not in entries:
            # Empty log folders (a query in its first moments) are not yet a checkpoint to restore.
            if any(self._log(folder) for folder in ("offsets", "commits") if folder in entries) or "state" in entries:
                raise CheckpointMetadataMissingError(
                    f"{self._describe('metadata')} is missing although the checkpoint has logs; Spark will refuse to "
                    "restart it. Restore the file (it holds the query id) or start a new checkpoint."
                )
            raise CheckpointNotFoundError(
                f"{self.root} is not a Structured Streaming checkpoint: it has no metadata, offsets/ or commits/."
            )
        return entries

    def _offsets_entry(self, batch_id: int) -> OffsetsEntry:
        path = self._describe("offsets", str(batch_id))
        return parse_offsets_file(self._text("offsets", str(batch_id)), path, batch_id)

    def get_status(self, *, include_state: bool = True) -> CheckpointStatus:
        """Read where the query stands.

        :param include_state: also size the state of each stateful operator,
            which walks ``state/<op>/`` (proportional to its files).
        """
        entries = self._root_entries()
        query_id = parse_query_metadata(self._text("metadata"), self._describe("metadata"))
        offsets = self._log("offsets") if "offsets" in entries else set()
        commits = self._log("commits") if "commits" in entries else set()
        planned_ids = contiguous_batches(offsets, self._describe("offsets"))
        committed_ids = contiguous_batches(commits, self._describe("commits"))
        latest_planned = planned_ids[-1] if planned_ids else None
        latest_committed = committed_ids[-1] if committed_ids else None

        planned, incomplete = None, False
        if latest_planned is not None:
            try:
                planned = self._offsets_entry(latest_planned)
            except CorruptCheckpointFileError:
                # Spark writes offsets before running a batch; a torn newest file is a
                # batch being planned (or killed while planning), not a corrupt checkpoint.
                if latest_committed is not None and latest_committed >= latest_planned:
                    raise
                incomplete = True
        committed = None
        if latest_committed is not None:
            if latest_committed not in offsets:
                raise CorruptCheckpointFileError(
                    f"{self._describe('commits', str(latest_committed))} has no matching offsets file "
                    f"{self._describe('offsets', str(latest_committed))}; the checkpoint is damaged."
                )
            committed = (
                planned if planned and planned.batch_id == latest_committed else self._offsets_entry(latest_committed)
            )
        commits_version, commit_body = None, {}
        if latest_committed is not None:
            commits_version, commit_body = parse_commit_file(
                self._text("commits", str(latest_committed)), self._describe("commits", str(latest_committed))
            )
        newest = planned or committed
        return CheckpointStatus(
            checkpoint=str(self.root),
            query_id=query_id,
            latest_planned_batch=latest_planned,
            latest_committed_batch=latest_committed,
            has_uncommitted_batch=latest_planned is not None
            and (latest_committed is None or latest_planned > latest_committed),
            incomplete_offsets_file=incomplete,
            oldest_retained_batch=planned_ids[0] if planned_ids else None,
            offsets_log_version=newest.version if newest else None,
            commits_log_version=commits_version,
            batch_timestamp_ms=newest.batch_timestamp_ms if newest else None,
            batch_watermark_ms=newest.batch_watermark_ms if newest else None,
            committed_batch_timestamp_ms=committed.batch_timestamp_ms if committed else None,
            next_watermark_ms=commit_body.get("nextBatchWatermarkMs"),
            last_commit_time=self._mtime("commits", str(latest_committed)) if latest_committed is not None else None,
            planned_sources=planned.sources if planned else [],
            committed_sources=committed.sources if committed else [],
            initial_offsets=self._initial_offsets() if "sources" in entries else {},
            stateful_operators=self._stateful_operators(include_state) if "state" in entries else [],
            conf=newest.conf if newest else {},
        )

    def get_history(self, last: int = 20) -> CheckpointHistory:
        """The newest ``last`` planned batches, with their timestamps and commit times."""
        self._root_entries()
        offsets = self._log("offsets")
        commits = self._log("commits")
        batches = contiguous_batches(offsets, self._describe("offsets"))[-last:] if last > 0 else []
        records = []
        for batch_id in batches:
            try:
                timestamp = self._offsets_entry(batch_id).batch_timestamp_ms
            except CorruptCheckpointFileError:
                if batch_id != batches[-1] or batch_id in commits:
                    raise
                timestamp = None  # the newest offsets file is still being written
            records.append(
                BatchRecord(
                    batch_id=batch_id,
                    batch_timestamp_ms=timestamp,
                    committed=batch_id in commits,
                    commit_time=self._mtime("commits", str(batch_id)) if batch_id in commits else None,
                )
            )
        return CheckpointHistory(checkpoint=str(self.root), batches=records)

    def get_lease(self, now: float | None = None) -> CheckpointLease | None:
        """The live lease on this checkpoint (a running stream runner), or ``None`` if free, released or stale.

        Judged by :func:`airflow_spark_streaming.lease.read_lease_state`, the rule
        the runner itself applies: clock skew and TTL are bounded, and a lease that
        cannot be read (being written, or torn) counts as held for a TTL from when
        it was written.
        """
        from airflow_spark_streaming.lease import read_lease_state

        state = read_lease_state(_LeaseFiles(self), now=now, fallback_ttl_ms=int(DEFAULT_LEASE_TTL_SECONDS * 1000))
        if not state.held:
            return None
        record = state.record
        return CheckpointLease(
            app_id=record.app_id if record else None,
            host=record.host if record else None,
            pid=record.pid if record else None,
            heartbeat_age_seconds=(state.heartbeat_age_ms or 0.0) / 1000,
            ttl_seconds=(state.ttl_ms or 0) / 1000,
            submission_tag=record.submission if record else None,
        )

    def request_stop(self) -> None:
        """Ask the stream runner's query to stop gracefully after its current micro-batch."""
        self.root.fs.pipe_file(self._path(STOP_FILE), b"stop")

    def clear_stop_request(self) -> None:
        try:
            self.root.fs.rm_file(self._path(STOP_FILE))
        except FileNotFoundError:
            pass

    def put_submission(self, record: dict[str, Any]) -> None:
        """Record which driver the provider submitted on this checkpoint, so a stop can find and kill it."""
        self.root.fs.mkdirs(self.root.path, exist_ok=True)
        self.root.fs.pipe_file(self._path(SUBMISSION_FILE), json.dumps(record).encode())

    def get_submission(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._read(SUBMISSION_FILE))
        except (FileNotFoundError, ValueError):
            return None

    def stage_file(self, name: str, data: bytes | Path) -> str:
        """Write ``data`` (bytes, or a local file) to ``_staging/name``; return its location as Spark names it.

        A cluster-mode driver runs on another host; it can read what sits next to
        its checkpoint, because it must reach the checkpoint anyway. A local file
        already staged with the same size is not copied again.
        """
        path = self._path(STAGING_DIR, name)
        if isinstance(data, Path):
            try:
                unchanged = self.root.fs.size(path) == data.stat().st_size
            except (FileNotFoundError, OSError):
                unchanged = False
            if not unchanged:
                self.root.fs.mkdirs(posixpath.dirname(path), exist_ok=True)
                self.root.fs.put_file(str(data), path)
        else:
            self.root.fs.mkdirs(posixpath.dirname(path), exist_ok=True)
            self.root.fs.pipe_file(path, data)
        return posixpath.join(self.checkpoint.rstrip("/"), STAGING_DIR, name)

    def remove_staged(self, name: str) -> None:
        try:
            self.root.fs.rm_file(self._path(STAGING_DIR, name))
        except FileNotFoundError:
            pass

    def get_progress(self, *, after_batch: int = -1) -> list[dict[str, Any]]:
        """Progress events the stream runner wrote to ``_progress/`` for batches after ``after_batch``, oldest first.

        Each is Spark's ``StreamingQueryProgress`` JSON (``numInputRows``,
        ``durationMs``, ``sources``, ...). Empty for queries not run by the
        provider's runner (or a listener writing the same files).
        """
        batches = sorted(
            int(name.removesuffix(".json"))
            for name in self._list(PROGRESS_DIR)
            if name.endswith(".json") and name.removesuffix(".json").isdigit()
        )
        events = []
        for batch_id in (b for b in batches if b > after_batch):
            path = self._describe(PROGRESS_DIR, f"{batch_id}.json")
            events.append(_json(self._text(PROGRESS_DIR, f"{batch_id}.json"), path, "the progress event"))
        return events

    def _initial_offsets(self) -> dict[str, Any]:
        found = {}
        for name in sorted(self._list("sources"), key=lambda n: (len(n), n)):
            try:
                head = self._read("sources", name, "0", limit=_SOURCE_HEAD_BYTES)
            except (FileNotFoundError, IsADirectoryError):
                continue
            value = parse_source_head(head)
            if value is not None:
                found[name] = value
        return found

    def _stateful_operators(self, include_size: bool) -> list[StatefulOperator]:
        operators = []
        for name in sorted((n for n in self._list("state") if n.isdigit()), key=int):
            operator_name, stores, partitions = None, [], None
            try:
                text = self._text("state", name, "_metadata", "metadata")
            except FileNotFoundError:
                text = ""
            lines = text.split("\n")
            if len(lines) >= 2 and _HEADER.match(lines[0].strip()):
                info = _json(lines[1], self._describe("state", name, "_metadata", "metadata"), "the operator metadata")
                operator_name = (info.get("operatorInfo") or {}).get("operatorName")
                stores = [s.get("storeName") for s in info.get("stateStoreInfo", [])]
                partitions = max((s.get("numPartitions", 0) for s in info.get("stateStoreInfo", [])), default=None)
            size = files = None
            if include_size:
                found = self.root.fs.find(self._path("state", name), detail=True)
                files = sum(1 for e in found.values() if not posixpath.basename(e["name"]).startswith("."))
                size = sum(e.get("size") or 0 for e in found.values())
            operators.append(StatefulOperator(int(name), operator_name, stores, partitions, size, files))
        return operators


# --- progress: one evaluation shared by the sensor's poke and its trigger ---------------------


@dataclass
class ProgressCriteria:
    """What "the stream has made progress" means for a wait.

    :param target_batch_id: the committed batch id must reach this.
    :param committed_after: a batch must have committed after this time
        (epoch seconds), for example the DAG run's start.
    :param max_staleness_seconds: fail instead of waiting when the newest
        commit is older than this.
    :param wait_for_checkpoint: a missing or empty checkpoint means "not
        started yet" (keep waiting) rather than an error.
    :param require_fully_committed: also require that no planned batch is
        left uncommitted (the last run committed everything it started).
    """

    target_batch_id: int | None = None
    committed_after: float | None = None
    max_staleness_seconds: float | None = None
    wait_for_checkpoint: bool = True
    require_fully_committed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _LeaseFiles:
    """The lease store's read side over a hook's ObjectStoragePath, for ``read_lease_state``."""

    def __init__(self, hook: CheckpointHook) -> None:
        self.hook = hook

    def list_names(self, folder: str) -> list[str]:
        return self.hook._list(folder)

    def read(self, name: str, limit: int) -> tuple[bytes, float | None] | None:
        try:
            info = self.hook.root.fs.info(self.hook._path(name))
            written = _mtime(info)
            if info.get("type") != "file":
                return b"", written * 1000 if written else None  # a FIFO or device: unreadable, never opened
            data = self.hook._read(name, limit=limit + 1)
        except FileNotFoundError:
            return None
        return data, written * 1000 if written else None


def evaluate_progress(status: CheckpointStatus, criteria: ProgressCriteria, now: float | None = None) -> Verdict:
    """Decide whether ``status`` satisfies ``criteria`` (pure: no I/O)."""
    now = time.time() if now is None else now
    committed, last_commit = status.latest_committed_batch, status.last_commit_time
    unmet = []
    if committed is None:
        unmet.append("no batch has committed yet")
    if criteria.target_batch_id is not None and (committed is None or committed < criteria.target_batch_id):
        unmet.append(f"committed batch {committed} has not reached {criteria.target_batch_id}")
    if criteria.committed_after is not None and (last_commit is None or last_commit <= criteria.committed_after):
        unmet.append(
            f"no batch committed after {datetime.fromtimestamp(criteria.committed_after).astimezone().isoformat()}"
        )
    if criteria.require_fully_committed and status.has_uncommitted_batch:
        unmet.append(f"batch {status.latest_planned_batch} is planned but not committed (running, or killed)")
    if not unmet:
        return Verdict("met", f"{status.checkpoint}: batch {committed} committed", status.to_dict())
    age = status.seconds_since_last_commit(now)
    if criteria.max_staleness_seconds is not None and age is not None and age > criteria.max_staleness_seconds:
        return Verdict(
            "stale",
            f"{status.checkpoint} is stale: its last commit (batch {committed}) was {age:.0f}s ago, longer than "
            f"max_staleness {criteria.max_staleness_seconds:.0f}s, and {'; '.join(unmet)}. "
            "Check that the query is running and that its source has data.",
            status.to_dict(),
        )
    return Verdict("waiting", f"{status.checkpoint}: {'; '.join(unmet)}", status.to_dict())


def check_progress(checkpoint: str, conn_id: str | None, criteria: ProgressCriteria) -> Verdict:
    """Read the checkpoint and evaluate ``criteria``; errors come back as an ``error`` verdict.

    Blocking; the sensor calls it in ``poke`` and the trigger through
    ``asyncio.to_thread``, so both modes decide the same way.
    """
    from airflow_spark_streaming.exceptions import CheckpointError

    try:
        status = CheckpointHook(checkpoint, conn_id=conn_id).get_status(include_state=False)
    except CheckpointNotFoundError as err:
        if criteria.wait_for_checkpoint:
            return Verdict("waiting", f"{checkpoint}: not started yet ({err})")
        return Verdict.from_error(err)
    except CheckpointError as err:
        return Verdict.from_error(err)
    return evaluate_progress(status, criteria)
