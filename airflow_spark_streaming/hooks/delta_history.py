"""A Delta table's commits since a version, read with delta-rs: what the version event trigger reports.

The commit info (operation, ``operationMetrics``) comes from ``DeltaTable.history``;
nothing here parses ``_delta_log`` by hand. ``deltalake`` is imported inside the
methods so importing the provider stays cheap.
"""

from __future__ import annotations

from airflow.sdk import BaseHook

from airflow_spark_streaming.delta.models import DeltaCommit  # its home; importable from here too
from airflow_spark_streaming.exceptions import DeltaMaintenanceError, NotADeltaTableError


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

    def _table(self):
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        from airflow_spark_streaming.storage.access import delta_rs_options
        from airflow_spark_streaming.storage.locations import DELTA_RS, is_s3_uri, uri_for

        uri = uri_for(self.table_uri, DELTA_RS)
        # S3: the aws connection through StorageHook (bounded retries, put-if-absent commits); else the options given.
        options = delta_rs_options(uri, self.storage_conn_id, self.storage_options)
        try:
            return DeltaTable(uri, storage_options=options or None)
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

    def commits_after(self, after_version: int, *, limit: int = 1000) -> tuple[int, list[DeltaCommit]]:
        """``(latest version, commits with version > after_version)``, oldest first, at most ``limit`` of them
        (the oldest ones: the caller resumes from the last it got)."""
        from deltalake.exceptions import DeltaError

        table = self._table()
        latest = table.version()
        if latest <= after_version:
            return latest, []
        try:
            infos = table.history(latest - after_version)
        except DeltaError as err:
            raise DeltaMaintenanceError(f"delta-rs cannot read the history of {self.table_uri}: {err}") from err
        commits = sorted(
            (DeltaCommit.from_commit_info(i) for i in infos if int(i.get("version", -1)) > after_version),
            key=lambda c: c.version,
        )
        return latest, commits[:limit]
