"""The shared machinery of the commit event triggers: one poll per watched location, a cursor per asset.

How a watcher reports each commit exactly once
----------------------------------------------

* **Position.** Each commit has a position (the Delta version, the checkpoint's
  batch id). The trigger reports every position after its cursor, one event
  each, oldest first; several commits between two polls become several events.
* **Cursor.** The cursor is kept in the watched asset's state store (AIP-103),
  which Airflow 3.3 injects into an event trigger as ``asset_state_store``. It
  is written right after each event is handed to the triggerer (the ``yield``
  returned), shielded from cancellation, so a restarted trigger resumes after
  the last event it handed over. When one trigger watches several assets (same
  kwargs, so Airflow runs one trigger), the cursor is written to each of them
  and the highest is read back.
* **Sharing.** :meth:`shared_stream_key` groups watchers of one location and
  poll interval, so the triggerer runs one poll loop for all of them. The loop
  broadcasts what it read since its previous poll; a subscriber whose cursor is
  older than that (a restart, a late join) reads the missing range itself once.
* **Limits.** Airflow 3.3 tells an event trigger neither when its event was
  written to the database nor what the asset's last event was, so a triggerer
  process killed (SIGKILL, OOM) after handing over an event and before its
  next sync with the supervisor (about a second) loses that event: the cursor
  is already past it. Each payload carries the position of the previous event
  this watcher reported, so a consumer can tell such a gap. Commits Spark or
  Delta cleaned up before the watcher read them (beyond ``minBatchesToRetain``,
  or a vacuumed log) cannot be reported.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Hashable
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_spark_streaming.exceptions import InvalidEventTriggerError
from airflow_spark_streaming.storage.locations import is_absolute_location


class AssetCursorStore:
    """The one place that touches Airflow's asset state store (``BaseEventTrigger.asset_state_store``).

    A trigger watching one asset uses the store's public single-asset ``aget``/``aset``. Airflow
    3.3 runs one trigger for identical watchers of several assets, and offers no public way to
    list the assets such a trigger watches: only then is the per-asset map read through the
    private ``_by_name``/``_by_uri`` (``tests/unit/triggers/test_asset_state_contract.py`` checks
    that Airflow still has them and still refuses the single-asset calls there).
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    def _each_asset(self) -> list[Any]:
        by_name, by_uri = getattr(self.store, "_by_name", None), getattr(self.store, "_by_uri", None)
        if by_name is None and by_uri is None:
            return [self.store]  # a plain per-asset accessor
        return [*(by_name or {}).values(), *(by_uri or {}).values()]

    async def read_all(self, key: str) -> list[Any]:
        """The value of ``key`` in every watched asset's store."""
        try:
            return [await self.store.aget(key)]
        except ValueError:  # several watched assets: the single-asset call refuses
            return [await accessor.aget(key) for accessor in self._each_asset()]

    async def write_all(self, key: str, value: Any) -> None:
        """Write ``key`` in every watched asset's store."""
        try:
            await self.store.aset(key, value)
        except ValueError:
            for accessor in self._each_asset():
                await accessor.aset(key, value)


class CommitEventTrigger(BaseEventTrigger):
    """Base of the triggers that fire once per commit of a watched location (abstract)."""

    kind = ""  # short name of the watched thing, part of the cursor key and the shared-stream key
    position_field = ""  # payload field holding the commit's position
    location_param = "location"  # the constructor parameter naming the watched location, as errors name it

    def __init__(self, *, location: str, storage_conn_id: str | None, poll_interval: float) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(location, str) or not location.strip():
            kind = "an empty str" if isinstance(location, str) else f"a value of type {type(location).__name__}"
            raise InvalidEventTriggerError(f"{name} needs a path or URI to watch, got {kind}.")
        if not is_absolute_location(location):
            raise InvalidEventTriggerError(
                f"{name}: {self.location_param} is a relative path, which the triggerer resolves against its own "
                "directory; pass an absolute path ('/lake/orders') or a URI ('s3://bucket/orders')."
            )
        if storage_conn_id is not None and (not isinstance(storage_conn_id, str) or not storage_conn_id):
            raise InvalidEventTriggerError(f"{name} storage_conn_id must be a connection id or None.")
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, int | float)
            or not math.isfinite(poll_interval)
            or poll_interval <= 0
        ):
            raise InvalidEventTriggerError(
                f"{name} poll_interval must be a number of seconds > 0, got {poll_interval!r}."
            )
        self.storage_conn_id = storage_conn_id
        self.poll_interval = float(poll_interval)
        self._cursor: dict[str, Any] | None = None

    # --- what subclasses provide ------------------------------------------------------------

    def location(self) -> str:
        raise NotImplementedError

    def read_after(self, after: int | None, up_to: int | None = None) -> tuple[int | None, list[dict[str, Any]]]:
        """Blocking read: ``(position, commits after ``after`` up to ``up_to``)``; ``after=None`` reads the position."""
        raise NotImplementedError

    def wanted(self, commit: dict[str, Any]) -> bool:
        return True

    def payload(self, commit: dict[str, Any], previous_event: int | None) -> dict[str, Any]:
        raise NotImplementedError

    # --- cursor in the asset state store ------------------------------------------------------

    @property
    def cursor_key(self) -> str:
        return f"airflow_spark_streaming.{self.kind}_cursor:{self.location()}"

    async def load_cursor(self) -> dict[str, Any] | None:
        if self._cursor is None and self.asset_state_store is not None:
            values = await AssetCursorStore(self.asset_state_store).read_all(self.cursor_key)
            stored = [v for v in values if isinstance(v, dict) and isinstance(v.get("position"), int)]
            if stored:
                self._cursor = max(stored, key=lambda v: v["position"])
        return self._cursor

    async def save_cursor(self, position: int, last_event: int | None) -> None:
        self._cursor = {"position": position, "last_event": last_event}
        if self.asset_state_store is not None:
            value = dict(self._cursor)

            # A cancellation (triggerer shutdown) must not leave the event handed over but the cursor unwritten.
            await asyncio.shield(AssetCursorStore(self.asset_state_store).write_all(self.cursor_key, value))

    # --- one poll loop per location, shared by every watcher of it ------------------------------

    def shared_stream_key(self) -> Hashable | None:
        return (
            type(self).__module__,
            type(self).__qualname__,
            self.location(),
            self.storage_conn_id,
            self.poll_interval,
        )

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        reader = cls(**kwargs)
        last: int | None = None
        while True:
            try:
                if last is None:
                    position, commits = await asyncio.to_thread(reader.read_after, None)
                    snapshot = {"from": position, "position": position, "commits": []}
                else:
                    position, commits = await asyncio.to_thread(reader.read_after, last)
                    snapshot = {"from": last, "position": position, "commits": commits}
                    if position is not None and position < last:  # the location was recreated
                        snapshot = {"from": position, "position": position, "commits": [], "reset": True}
                # An existing but empty location: its first commit (position 0) is news too.
                last = position if position is not None else -1
                yield snapshot
            except InvalidEventTriggerError:
                raise
            except Exception as err:  # storage blips: keep polling, say why
                reader.log.warning(
                    "Cannot read %s (%s); retrying in %.0fs", reader.location(), err, reader.poll_interval
                )
            await asyncio.sleep(reader.poll_interval)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for snapshot in shared_stream:
            if snapshot["position"] is None:
                continue  # nothing committed yet
            cursor = await self.load_cursor()
            if cursor is None:
                # First start of this watcher: report what is committed from now on.
                await self.save_cursor(snapshot["from"], None)
                cursor = self._cursor
            if snapshot.get("reset") or cursor["position"] > snapshot["position"]:
                self.log.warning(
                    "%s is behind this watcher's cursor %s (recreated?); resuming from %s",
                    self.location(), cursor["position"], snapshot["position"],
                )  # fmt: skip
                await self.save_cursor(snapshot["position"], cursor["last_event"])
                continue
            commits = list(snapshot["commits"])
            if cursor["position"] < snapshot["from"]:
                _, missed = await asyncio.to_thread(self.read_after, cursor["position"], snapshot["from"])
                commits = missed + commits
            for commit in commits:
                position = commit[self.position_field]
                if position <= cursor["position"]:
                    continue
                if self.wanted(commit):
                    yield TriggerEvent(self.payload(commit, cursor["last_event"]))
                    await self.save_cursor(position, position)
                else:
                    await self.save_cursor(position, cursor["last_event"])
                cursor = self._cursor

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Standalone loop (no shared-stream manager): the same reads and filter as a shared group of one."""
        async for event in self.filter_shared_stream(type(self).open_shared_stream(self.serialize()[1])):
            yield event
