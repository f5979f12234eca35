"""A Delta table's commits since a version, read with delta-rs: what the version event trigger reports,
and the commit a streaming query's batch wrote (its output rows, for the commit event trigger).

The commit info (operation, ``operationMetrics``) comes from ``DeltaTable.history``;
nothing here parses ``_delta_log`` by hand. ``deltalake`` is imported inside the
methods so importing the provider stays cheap.
"""

from __future__ import annotations

from collections.abc import Collection

from airflow.sdk import BaseHook

from airflow_spark_streaming.delta.models import DeltaCommit, DeltaCommitRange  # their home; importable from here
from airflow_spark_streaming.exceptions import DeltaMaintenanceError, NotADeltaTableError

#: Commits read beyond the batches looked for: other writers' commits, and the query's next batch in flight.
STREAMING_SEARCH_SLACK = 16
#: The most commits one :meth:`DeltaHistoryHook.streaming_commits` call reads.
MAX_STREAMING_SEARCH = 2000


def _int(value: object) -> int | None:
    """An ASCII decimal from the commit info (delta-spark writes numbers as strings), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return (
        int(value) if isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit() else None
    )


def storage_options_from_connection(conn_id: str | None) -> dict[str, str]:
    """delta-rs object-store options from an Airflow ``aws`` connection; empty for no connection. Never logged.

    The same mapping as every other delta-rs user of the provider:
    :meth:`StorageHook.delta_storage_options <airflow_spark_streaming.hooks.storage.StorageHook.delta_storage_options>`
    (credentials, endpoint, region, bounded timeouts, put-if-absent commits).
    """
    if not conn_id:
        return {}
    from airflow_spark_streaming.hooks.storage import StorageHook

    return StorageHook(conn_id).delta_storage_options()


class DeltaHistoryHook(BaseHook):
    """Read a Delta table's newest version and the commits after a given version.

    :param table_uri: the table location: a local path or a URI (``s3://`` ...).
    :param storage_conn_id: an Airflow connection whose credentials delta-rs uses (``aws``).
    :param storage_options: delta-rs object-store options; they override the connection's.
    """

    conn_name_attr = "storage_conn_id"
    default_conn_name = None
    hook_name = "Delta Lake table history"

    def __init__(
        self,
        table_uri: str,
        *,
        storage_conn_id: str | None = None,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.table_uri = table_uri
        self.storage_conn_id = storage_conn_id
        self.storage_options = storage_options

    def _table(self, version: int | None = None):
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        from airflow_spark_streaming.storage.access import delta_rs_options
        from airflow_spark_streaming.storage.locations import DELTA_RS, is_s3_uri, uri_for

        uri = uri_for(self.table_uri, DELTA_RS)
        # S3: the aws connection through StorageHook (bounded retries, put-if-absent commits); else the options given.
        options = delta_rs_options(uri, self.storage_conn_id, self.storage_options)
        try:
            return DeltaTable(uri, version=version, storage_options=options or None)
        except TableNotFoundError as err:
            raise NotADeltaTableError(
                f"{self.table_uri} is not a Delta table (no readable _delta_log): {err}."
            ) from err
        except Exception as err:  # a refused key, a missing bucket, a dead or hung endpoint: the named error
            if not (self.storage_conn_id and is_s3_uri(uri)):
                raise
            from airflow_spark_streaming.hooks.storage import StorageHook

            named = StorageHook(self.storage_conn_id).translate(err, uri)
            if named is err:
                raise
            raise named from err

    def latest_version(self) -> int:
        """The table's newest version (0 after the first commit)."""
        return self._table().version()

    def read_commits(self, after_version: int | None, *, limit: int = 1000) -> DeltaCommitRange:
        """The newest version, the table id and the commits with version > ``after_version``, oldest first: at
        most ``limit`` of them (the oldest ones: the caller resumes from the last it got). ``None`` reads no
        commits; ``-1`` reads from version 0."""
        table = self._table()
        latest, table_id = table.version(), table.metadata().id
        if after_version is None or latest <= after_version:
            return DeltaCommitRange(self.table_uri, latest, table_id)
        infos = self._history(table, latest - after_version)
        commits = sorted(
            (DeltaCommit.from_commit_info(i) for i in infos if int(i.get("version", -1)) > after_version),
            key=lambda c: c.version,
        )
        return DeltaCommitRange(self.table_uri, latest, table_id, commits[:limit])

    def table_id_at(self, version: int) -> str:
        """The table's id (``metaData.id``) as of ``version``; :class:`NotADeltaTableError` or
        :class:`DeltaMaintenanceError` when that version cannot be loaded."""
        from deltalake.exceptions import DeltaError

        try:
            return self._table(version).metadata().id
        except DeltaError as err:
            raise DeltaMaintenanceError(f"delta-rs cannot load version {version} of {self.table_uri}: {err}") from err

    def streaming_commits(
        self, query_id: str, batch_ids: Collection[int], *, newer_batches: int = 0,
        max_commits: int = MAX_STREAMING_SEARCH,
    ) -> dict[int, DeltaCommit]:  # fmt: skip
        """The commit Spark's Delta sink wrote for each of ``batch_ids`` of the streaming query ``query_id``.

        Delta's ``STREAMING UPDATE`` commit info names the query (``queryId``) and the batch (``epochId``),
        and the sink commits each batch once. Read from the newest commits down: the batches asked for,
        ``newer_batches`` the query committed since, and :data:`STREAMING_SEARCH_SLACK`; more, up to
        ``max_commits``, while the oldest batch is not reached. A batch not found is left out.
        """
        wanted = {b for b in batch_ids if isinstance(b, int) and b >= 0}
        if not wanted:
            return {}
        table = self._table()
        oldest = min(wanted)
        search = min(max(wanted) - oldest + 1 + max(newer_batches, 0) + STREAMING_SEARCH_SLACK, max_commits)
        while True:
            infos = self._history(table, search)
            found: dict[int, DeltaCommit] = {}
            passed = False
            for info in sorted(infos, key=lambda i: -(_int(i.get("version")) or 0)):  # newest first
                params = info.get("operationParameters") or {}
                if info.get("operation") != "STREAMING UPDATE" or str(params.get("queryId")) != query_id:
                    continue
                batch = _int(params.get("epochId"))
                if batch is not None and batch < oldest:
                    passed = True  # older than every batch asked for
                    break
                if batch in wanted and batch not in found:
                    found[batch] = DeltaCommit.from_commit_info(info)
            if passed or len(found) == len(wanted) or len(infos) < search or search >= max_commits:
                return found
            search = min(search * 4, max_commits)

    def _history(self, table, limit: int) -> list[dict]:
        from deltalake.exceptions import DeltaError

        try:
            return table.history(limit)
        except DeltaError as err:
            raise DeltaMaintenanceError(f"delta-rs cannot read the history of {self.table_uri}: {err}") from err

    def commits_after(self, after_version: int, *, limit: int = 1000) -> tuple[int, list[DeltaCommit]]:
        """``(latest version, commits with version > after_version)``, as :meth:`read_commits`."""
        read = self.read_commits(after_version, limit=limit)
        return read.version, read.commits
