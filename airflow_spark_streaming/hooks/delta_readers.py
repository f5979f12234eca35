"""The downstream streams of a Delta table, from their checkpoints: where each will restart, and how far behind it is.

A stream reading a Delta table writes the table's id (``reservoirId``) and the version it
reads (``reservoirVersion``) in every ``offsets/<batch>`` file. Each checkpoint is read with
:class:`~airflow_spark_streaming.hooks.checkpoint.CheckpointHook` (bounded reads, named errors);
the commit time of each reader's next version comes from the table history through
:class:`~airflow_spark_streaming.hooks.delta.DeltaTableHook`.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Iterable

from airflow.sdk import BaseHook

from airflow_spark_streaming.conditions.reader_retention import next_version_to_read
from airflow_spark_streaming.delta.models import DeltaReader
from airflow_spark_streaming.exceptions import (
    CheckpointError,
    DeltaMaintenanceError,
    DeltaReaderError,
    ReaderTableMismatchError,
)

#: Folders listed while looking for checkpoints under ``reader_roots`` (all roots together).
MAX_DISCOVERY_LISTINGS = 500
#: How deep under a root a checkpoint may lie (``<root>/<team>/<query>`` is depth 2).
MAX_DISCOVERY_DEPTH = 3
#: Checkpoints read per call; more means the roots are too broad.
MAX_READERS = 200


def reader_key(location: str) -> str:
    """A checkpoint location compared without ``file://`` or a trailing slash (how ``exclude_readers`` match)."""
    return location.removeprefix("file://").rstrip("/") or "/"


class DeltaReadersHook(BaseHook):
    """Find and place the streams that read one Delta table.

    :param table_hook: the table's :class:`~airflow_spark_streaming.hooks.delta.DeltaTableHook`.
    :param storage_conn_id: the connection for checkpoints on object storage (as for
        :class:`~airflow_spark_streaming.hooks.checkpoint.CheckpointHook`).
    """

    hook_name = "Delta table readers"

    def __init__(self, table_hook, *, storage_conn_id: str | None = None) -> None:
        super().__init__()
        self.table_hook = table_hook
        self.storage_conn_id = storage_conn_id

    def _status(self, checkpoint: str):
        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

        try:
            return CheckpointHook(checkpoint, self.storage_conn_id).get_status(include_state=False)
        except (CheckpointError, OSError) as err:
            raise DeltaReaderError(
                f"Reader {checkpoint}: its checkpoint cannot be read ({err}). VACUUM cannot tell which files it "
                "needs, so nothing was deleted; fix the path or the checkpoint, or list it in exclude_readers."
            ) from err

    def discover(self, roots: Iterable[str]) -> list[str]:
        """Checkpoint folders (a ``metadata`` file beside ``offsets/`` or ``commits/``) under ``roots``, sorted.

        A bounded walk: at most :data:`MAX_DISCOVERY_DEPTH` levels and :data:`MAX_DISCOVERY_LISTINGS` listings;
        hidden and ``_``-prefixed folders are skipped, and a checkpoint's own folders are not entered.
        """
        from airflow_spark_streaming.hooks.checkpoint_storage import CheckpointStorageHook

        found: list[str] = []
        listings = 0
        for root in roots:
            storage = CheckpointStorageHook(root, self.storage_conn_id)
            pending = [("", 0)]
            while pending:
                relative, depth = pending.pop(0)
                listings += 1
                if listings > MAX_DISCOVERY_LISTINGS:
                    raise DeltaReaderError(
                        f"reader_roots hold more than {MAX_DISCOVERY_LISTINGS} folders to look through; name "
                        "narrower roots (the folders right above the checkpoints) or list the readers instead."
                    )
                storage.forget_listings(relative)
                try:
                    entries = storage.root.fs.ls(storage.storage_path(relative), detail=True)
                except FileNotFoundError as err:
                    if not relative:
                        raise DeltaReaderError(f"reader_roots entry {root} does not exist; check the path.") from err
                    continue
                names = {posixpath.basename(str(e["name"]).rstrip("/")): e.get("type") for e in entries}
                location = posixpath.join(root.rstrip("/"), relative) if relative else root.rstrip("/")
                if "metadata" in names and ({"offsets", "commits"} & set(names)):
                    found.append(location)
                    continue
                if depth < MAX_DISCOVERY_DEPTH:
                    pending.extend(
                        (posixpath.join(relative, name), depth + 1)
                        for name, kind in sorted(names.items())
                        if kind == "directory" and not name.startswith((".", "_"))
                    )
        return sorted(set(found))

    def get_readers(
        self,
        readers: Iterable[str] = (),
        *,
        roots: Iterable[str] = (),
        exclude: Iterable[str] = (),
        now: float | None = None,
    ) -> list[DeltaReader]:
        """Every reader's position, the oldest first.

        ``readers`` must each read this table; checkpoints found under ``roots`` that read other
        tables are left out. Any reader in ``exclude`` is not read at all.

        :raises DeltaReaderError: a checkpoint cannot be read, or its next version is gone from the log.
        :raises ReaderTableMismatchError: a checkpoint in ``readers`` does not read this table.
        """
        excluded = {reader_key(e) for e in exclude}
        named = [r for r in dict.fromkeys(readers) if reader_key(r) not in excluded]
        found = [r for r in self.discover(roots) if reader_key(r) not in excluded | {reader_key(n) for n in named}]
        if len(named) + len(found) > MAX_READERS:
            raise DeltaReaderError(
                f"{len(named) + len(found)} reader checkpoints, more than {MAX_READERS}; name narrower reader_roots."
            )
        table = self.table_hook.get_table()
        table_id, latest = table.metadata().id, table.version()
        positions: list[tuple[str, object, int | None, str, int | None]] = []
        for checkpoint, required in [(r, True) for r in named] + [(r, False) for r in found]:
            status = self._status(checkpoint)
            batch, sources = status.sources_at("committed")
            basis = "committed"
            if batch is None:
                batch, sources, basis = status.latest_planned_batch, status.planned_sources, "planned"
            if batch is None or (basis == "planned" and status.incomplete_offsets_file):
                if required or any(s.kind == "delta" and s.reservoir_id == table_id for s in sources):
                    positions.append((checkpoint, status, None, "none", None))
                continue
            try:
                version = next_version_to_read(sources, table_id, f"Reader {checkpoint}")
            except ReaderTableMismatchError:
                if required:
                    raise
                continue  # found under a root, but it reads another table
            if not 0 <= version <= latest + 1:  # at most the version after the newest: anything else is not this log
                raise DeltaReaderError(
                    f"Reader {checkpoint} reads version {version} next, but {self.table_hook.table_uri} has versions "
                    f"0..{latest}: the checkpoint is corrupt or belongs to another copy of the table. Nothing was "
                    "deleted; fix or reset it, or list it in exclude_readers."
                )
            if basis == "planned":
                first = [s for s in sources if s.kind == "delta" and s.reservoir_id == table_id]
                if not all(s.delta_is_starting_version for s in first):
                    version = 0  # its first batch re-reads from the startingVersion option, not in the checkpoint
            positions.append((checkpoint, status, batch, basis, version))
        wanted = {v for *_, v in positions if v is not None and v <= latest}
        try:
            timestamps = self.table_hook.commit_timestamps(wanted, latest=latest)
        except DeltaMaintenanceError as err:
            holders = [c for c, *_, v in positions if v is not None and v <= latest]
            raise DeltaReaderError(
                f"Readers {holders} read versions the table's log may no longer hold: {err} A reader whose next "
                "version is gone cannot restart: reset its checkpoint, then list it in exclude_readers until then."
            ) from err
        now = time.time() if now is None else now
        placed = []
        for checkpoint, status, batch, basis, version in positions:
            stamp = timestamps.get(version) if version is not None else None
            placed.append(
                DeltaReader(
                    name=checkpoint,
                    checkpoint=status.checkpoint,
                    query_id=status.query_id,
                    batch_id=batch,
                    basis=basis,
                    next_version=version,
                    next_version_timestamp_ms=stamp,
                    lag_versions=max(0, latest - version + 1) if version is not None else 0,
                    lag_seconds=max(0.0, now - stamp / 1000) if stamp is not None else 0.0,
                )
            )
        return sorted(placed, key=lambda r: (-(r.lag_seconds or 0.0), r.name))
