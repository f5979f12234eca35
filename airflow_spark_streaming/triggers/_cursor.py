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
* **A location that appears or is recreated.** A location that does not exist
  yet (or has nothing committed) is read again from its first commit: position
  0 is news once it appears. A location recreated in place (its position goes
  back, or :attr:`CommitRead.identity` changed and the old position is not
  there any more as it was) is reported from the new one's first commit. A location that disappears for a
  while and comes back with the same identity continues where it was.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Hashable
from typing import Any, NamedTuple

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_spark_streaming.exceptions import InvalidEventTriggerError
from airflow_spark_streaming.storage.locations import is_absolute_location


class CommitRead(NamedTuple):
    """One read of a watched location."""

    #: The newest position read; ``None`` when nothing is committed there yet, or there is nothing there.
    position: int | None
    #: The commits read, oldest first (none when only the position was asked for).
    commits: list[dict[str, Any]]
    #: What the location holds, such as a Delta table's id; another value means it was recreated. ``None``: unknown.
    identity: str | None = None


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

    def read_after(self, after: int | None, up_to: int | None = None) -> CommitRead:
        """Blocking read: the position and the commits after ``after`` up to ``up_to``; ``after=None`` reads
        only the position, and ``after=-1`` reads from the first commit."""
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

    async def save_cursor(self, position: int, last_event: int | None, identity: str | None = None) -> None:
        self._cursor = {"position": position, "last_event": last_event}
        if identity is not None:
            self._cursor["identity"] = identity
        if self.asset_state_store is not None:
            value = dict(self._cursor)

            # A cancellation (triggerer shutdown) must not leave the event handed over but the cursor unwritten.
            await asyncio.shield(AssetCursorStore(self.asset_state_store).write_all(self.cursor_key, value))

    def recreated(self, position: int, identity: str | None, read: CommitRead) -> bool:
        """Blocking: whether ``read`` shows another location than the one read at ``position`` with ``identity``."""
        if read.position is None:
            return False  # gone for now: judged when it is back
        if read.position < position:
            return True
        if identity is None or read.identity is None or read.identity == identity:
            return False
        return not self.still_holds(position, identity)

    def still_holds(self, position: int, identity: str) -> bool:
        """Blocking: whether the location, whose identity changed, still holds ``position`` as it was read with
        ``identity`` (the identity changed in place). By default it does not."""
        return False

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
        last: int | None = None  # the position of the previous read; -1 while nothing is committed
        identity: str | None = None
        while True:
            try:
                if last is None:
                    read = await asyncio.to_thread(reader.read_after, None)
                    snapshot = {"from": read.position, "position": read.position, "commits": []}
                else:
                    read = await asyncio.to_thread(reader.read_after, last)
                    snapshot = {"from": last, "position": read.position, "commits": read.commits}
                    if await asyncio.to_thread(reader.recreated, last, identity, read):
                        reader.log.warning("%s was recreated; reporting the new one from its first commit",
                                           reader.location())  # fmt: skip
                        read = await asyncio.to_thread(reader.read_after, -1)
                        snapshot = {"from": -1, "position": read.position, "commits": read.commits, "reset": True}
                if read.position is not None:
                    last, identity = read.position, read.identity
                elif last is None:
                    last = -1  # nothing committed yet (or no such location): its first commit, position 0, is news
                yield {**snapshot, "identity": identity}
            except InvalidEventTriggerError:
                raise
            except Exception as err:  # storage blips: keep polling, say why
                reader.log.warning(
                    "Cannot read %s (%s); retrying in %.0fs", reader.location(), err, reader.poll_interval
                )
            await asyncio.sleep(reader.poll_interval)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for snapshot in shared_stream:
            if snapshot["position"] is None:  # nothing committed yet, or the location is gone for now
                if (snapshot["from"] is None or snapshot["from"] < 0) and await self.load_cursor() is None:
                    # A first start before the first commit: a restart must still report that commit.
                    await self.save_cursor(-1, None)
                continue
            identity = snapshot.get("identity")
            cursor = await self.load_cursor()
            if cursor is None:
                # First start of this watcher: report what is committed from now on.
                await self.save_cursor(snapshot["position"] if snapshot.get("reset") else snapshot["from"], None,
                                       identity)  # fmt: skip
                cursor = self._cursor
            elif (snapshot.get("reset") and (identity is None or cursor.get("identity") != identity)) or (
                await asyncio.to_thread(
                    self.recreated,
                    cursor["position"],
                    cursor.get("identity"),
                    CommitRead(snapshot["position"], [], identity),
                )  # fmt: skip
            ):
                self.log.warning(
                    "%s is not what this watcher's cursor %s was read from (recreated?); reporting it from its "
                    "first commit", self.location(), cursor["position"],
                )  # fmt: skip
                await self.save_cursor(-1, cursor["last_event"], identity)
                cursor = self._cursor
            elif cursor.get("identity") is None and identity is not None:
                await self.save_cursor(cursor["position"], cursor["last_event"], identity)  # an older cursor
                cursor = self._cursor
            commits = list(snapshot["commits"])
            if cursor["position"] < snapshot["from"]:
                missed = await asyncio.to_thread(self.read_after, cursor["position"], snapshot["from"])
                commits = missed.commits + commits
            for commit in commits:
                position = commit[self.position_field]
                if position <= cursor["position"]:
                    continue
                if self.wanted(commit):
                    yield TriggerEvent(self.payload(commit, cursor["last_event"]))
                    await self.save_cursor(position, position, identity)
                else:
                    await self.save_cursor(position, cursor["last_event"], identity)
                cursor = self._cursor

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Standalone loop (no shared-stream manager): the same reads and filter as a shared group of one."""
        async for event in self.filter_shared_stream(type(self).open_shared_stream(self.serialize()[1])):
            yield event
