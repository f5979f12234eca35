"""A Delta table's commits since a version, read with delta-rs: what the version event trigger reports.

The commit info (operation, ``operationMetrics``) comes from ``DeltaTable.history``;
nothing here parses ``_delta_log`` by hand. ``deltalake`` is imported inside the
methods so importing the provider stays cheap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from airflow.sdk import BaseHook

from airflow_spark_streaming.exceptions import DeltaMaintenanceError, NotADeltaTableError


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class DeltaCommit:
    """One table version as its commit info describes it. JSON-serialisable via :meth:`to_dict`.

    ``rows_added`` / ``files_added`` / ``files_removed`` come from the commit's
    ``operationMetrics`` (delta-spark and delta-rs name them differently; both are
    read); ``None`` when the writer recorded no such metric.
    """

    version: int
    timestamp_ms: int | None
    operation: str | None
    rows_added: int | None
    files_added: int | None
    files_removed: int | None
    bytes_added: int | None
    operation_parameters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_commit_info(cls, info: dict[str, Any]) -> DeltaCommit:
        metrics = info.get("operationMetrics") or {}

        def metric(*names: str) -> int | None:
            return next((v for v in (_int(metrics.get(n)) for n in names) if v is not None), None)

        params = info.get("operationParameters") or {}
        return cls(
            version=int(info["version"]),
            timestamp_ms=_int(info.get("timestamp")),
            operation=info.get("operation"),
            rows_added=metric("numOutputRows", "num_added_rows", "numTargetRowsInserted"),
            files_added=metric("numFiles", "numAddedFiles", "numFilesAdded", "num_added_files", "numTargetFilesAdded"),
            files_removed=metric("numRemovedFiles", "numFilesRemoved", "num_removed_files", "numTargetFilesRemoved"),
            bytes_added=metric("numOutputBytes", "numAddedBytes", "num_added_bytes"),
            operation_parameters={
                str(k): v if isinstance(v, str | int | float | bool) else str(v) for k, v in params.items()
            },  # fmt: skip
        )


def storage_options_from_connection(conn_id: str | None) -> dict[str, str]:
    """delta-rs object-store options from an Airflow ``aws`` connection (login/password, extra
    ``endpoint_url``/``region_name``). Empty for no connection; never logged."""
    if not conn_id:
        return {}
    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson or {}
    options: dict[str, str] = {}
    if conn.login:
        options["AWS_ACCESS_KEY_ID"] = conn.login
    if conn.password:
        options["AWS_SECRET_ACCESS_KEY"] = conn.password
    endpoint = extra.get("endpoint_url") or (extra.get("service_config", {}).get("s3", {}) or {}).get("endpoint_url")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = str(endpoint)
        if str(endpoint).startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    if extra.get("region_name"):
        options["AWS_REGION"] = str(extra["region_name"])
    return options


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
        if is_s3_uri(uri):  # the aws connection through StorageHook: bounded retries, put-if-absent commits
            options = delta_rs_options(uri, self.storage_conn_id, self.storage_options)
        else:
            options = {**storage_options_from_connection(self.storage_conn_id), **(self.storage_options or {})}
        try:
            return DeltaTable(uri, storage_options=options or None)
        except TableNotFoundError as err:
            raise NotADeltaTableError(
                f"{self.table_uri} is not a Delta table (no readable _delta_log): {err}."
            ) from err

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
