"""Storage access under one checkpoint root, shared by the checkpoint hook and the runner-control hook."""

from __future__ import annotations

import posixpath

from airflow.sdk import BaseHook

from airflow_spark_streaming.checkpoint import mtime_of
from airflow_spark_streaming.deprecation import renamed_parameter
from airflow_spark_streaming.storage import FSSPEC, is_s3_uri, storage_uri, uri_for


class CheckpointStorageHook(BaseHook):
    """Storage access under one checkpoint root, kept to a few primitives so the cost is easy to count.

    :param checkpoint: the checkpoint location, a path or a URI such as
        ``s3://bucket/checkpoints/orders``.
    :param storage_conn_id: the Airflow connection for the storage (``aws_default``, a
        ``google_cloud_platform`` or ``wasb`` connection, ...); not needed for
        local paths. ``conn_id`` is its deprecated old name.
    """

    conn_name_attr = "storage_conn_id"
    default_conn_name = None

    def __init__(self, checkpoint: str, storage_conn_id: str | None = None, *, conn_id: str | None = None) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.storage_conn_id = renamed_parameter(
            type(self).__name__, "conn_id", "storage_conn_id", conn_id, storage_conn_id
        )
        self._root = None

    @property
    def root(self):
        if self._root is None:
            from airflow.sdk import ObjectStoragePath

            if self.storage_conn_id and is_s3_uri(self.checkpoint):
                # endpoint, bounded timeouts and s3a:// -> s3:// come from the aws connection
                from airflow_spark_streaming.hooks.storage import StorageHook

                self._root = StorageHook(self.storage_conn_id).object_storage_path(self.checkpoint)
            else:
                location = storage_uri(uri_for(self.checkpoint, FSSPEC))
                self._root = ObjectStoragePath(location, conn_id=self.storage_conn_id)
        return self._root

    def sibling(self, hook_class: type[CheckpointStorageHook]) -> CheckpointStorageHook:
        """Another hook over the same checkpoint that reuses this one's resolved storage root."""
        if isinstance(self, hook_class):
            return self
        other = hook_class(self.checkpoint, self.storage_conn_id)
        other._root = self._root
        return other

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
        return mtime_of(self.root.fs.info(self._path(*parts)))

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
