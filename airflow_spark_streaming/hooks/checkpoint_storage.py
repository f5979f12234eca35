"""Storage access under one checkpoint root, shared by the checkpoint hook and the runner-control hook."""

from __future__ import annotations

import errno
import posixpath
import stat

from airflow.sdk import BaseHook

from airflow_spark_streaming.checkpoint import mtime_of
from airflow_spark_streaming.exceptions import (
    CheckpointFileTooLargeError,
    CorruptCheckpointFileError,
    InvalidCheckpointPathError,
    NotARegularFileError,
    StorageSupportMissingError,
)
from airflow_spark_streaming.storage.locations import FSSPEC, is_local_uri, is_s3_uri, local_path, storage_uri, uri_for
from airflow_spark_streaming.utils.deprecation import renamed_parameter

#: The most read from one metadata file (offsets, commits, metadata, state metadata). Spark writes
#: a few KB there (one offset line per source; a Kafka source with 10,000 partitions is ~300 KB),
#: so 16 MiB is generous for any real query and still bounds a worker's memory on a hostile file.
MAX_METADATA_BYTES = 16 * 1024 * 1024

#: The storage provider each URI scheme needs, for the install hint when it is missing.
STORAGE_EXTRAS = {
    "s3": "pip install 'airflow-spark-streaming[s3]'",
    "s3a": "pip install 'airflow-spark-streaming[s3]'",
    "gs": "pip install 'apache-airflow-providers-google'",
    "gcs": "pip install 'apache-airflow-providers-google'",
    "abfs": "pip install 'apache-airflow-providers-microsoft-azure'",
    "abfss": "pip install 'apache-airflow-providers-microsoft-azure'",
    "az": "pip install 'apache-airflow-providers-microsoft-azure'",
    "adl": "pip install 'apache-airflow-providers-microsoft-azure'",
}


def _object_storage_path(uri: str, conn_id: str | None):
    """The storage root, with its filesystem resolved (this is where a missing provider fails)."""
    from airflow.sdk import ObjectStoragePath

    root = ObjectStoragePath(uri, conn_id=conn_id)
    root.fs  # noqa: B018
    return root


def checked_checkpoint(checkpoint: object) -> str:
    """The checkpoint location, refused when empty or not a string (empty would mean the working directory)."""
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise InvalidCheckpointPathError(
            f"checkpoint={checkpoint!r} is not a checkpoint location; pass the query's checkpoint path or URI, "
            "e.g. '/data/checkpoints/orders' or 's3://lake/_checkpoints/orders'."
        )
    return checkpoint


class CheckpointStorageHook(BaseHook):
    """Storage access under one checkpoint root, kept to a few primitives so the cost is easy to count.

    Hooks over a checkpoint read and write only through :attr:`root` and these primitives:
    :meth:`storage_path`, :meth:`describe`, :meth:`list_names`, :meth:`forget_listings`,
    :meth:`modified_time`, :meth:`read_bytes` and :meth:`read_metadata_text`.

    :param checkpoint: the checkpoint location, a path or a URI such as
        ``s3://bucket/checkpoints/orders``.
    :param storage_conn_id: the Airflow connection for the storage (``aws_default``, a
        ``google_cloud_platform`` or ``wasb`` connection, ...); not needed for
        local paths. An S3 checkpoint without one reads with boto's default credential chain
        and environment, with the same bounded timeouts and named errors
        (``StorageHook(None)``). ``conn_id`` is its deprecated old name.
    """

    conn_name_attr = "storage_conn_id"
    default_conn_name = None

    def __init__(self, checkpoint: str, storage_conn_id: str | None = None, *, conn_id: str | None = None) -> None:
        super().__init__()
        self.checkpoint = checked_checkpoint(checkpoint)
        self.storage_conn_id = renamed_parameter(
            type(self).__name__, "conn_id", "storage_conn_id", conn_id, storage_conn_id
        )
        self._root = None

    @property
    def root(self):
        """The checkpoint's ``ObjectStoragePath``, resolved once (``root.fs`` is its filesystem)."""
        if self._root is None:
            if is_s3_uri(self.checkpoint):
                # bounded timeouts, named failures and s3a:// -> s3://; the endpoint and keys come from the aws
                # connection, or without one from boto's default chain (never Airflow's unbounded s3fs)
                from airflow_spark_streaming.hooks.storage import StorageHook

                self._root = StorageHook(self.storage_conn_id).object_storage_path(self.checkpoint)
                return self._root
            uri = storage_uri(uri_for(self.checkpoint, FSSPEC))
            try:
                root = _object_storage_path(uri, self.storage_conn_id)
            except (ValueError, ImportError) as err:
                if "filesystem" not in str(err).lower() and not isinstance(err, ImportError):
                    raise
                scheme = uri.split("://", 1)[0].lower()
                hint = STORAGE_EXTRAS.get(scheme, "install the Airflow provider that registers this filesystem")
                raise StorageSupportMissingError(
                    f"Checkpoint {self.checkpoint!r}: no filesystem is installed for {scheme}:// ({err}); {hint}."
                ) from err
            self._root = root
        return self._root

    def sibling(self, hook_class: type[CheckpointStorageHook]) -> CheckpointStorageHook:
        """Another hook over the same checkpoint that reuses this one's resolved storage root."""
        if isinstance(self, hook_class):
            return self
        other = hook_class(self.checkpoint, self.storage_conn_id)
        other._root = self._root
        return other

    # --- the storage primitives every hook over a checkpoint reads and writes through ---------------

    def storage_path(self, *parts: str) -> str:
        """The path of ``parts`` under the checkpoint as ``root.fs`` methods take it (no scheme)."""
        return posixpath.join(self.root.path, *parts)

    def describe(self, *parts: str) -> str:
        """The location of ``parts`` under the checkpoint as error messages name it (with its scheme)."""
        return posixpath.join(str(self.root), *parts)

    def forget_listings(self, *parts: str) -> None:
        """Drop the filesystem's cached listing of a folder under the checkpoint (s3fs keeps listings per
        instance, and a poll made while the query ran must not hide what it wrote since)."""
        invalidate = getattr(self.root.fs, "invalidate_cache", None)
        if invalidate is not None:
            invalidate(self.storage_path(*parts))

    def list_names(self, *parts: str) -> list[str]:
        """The entry names of a folder under the checkpoint, from one fresh listing (no per-entry stat).

        A missing folder lists as empty.
        """
        self.forget_listings(*parts)  # s3fs would answer from a listing cached while the query ran
        try:
            entries = self.root.fs.ls(self.storage_path(*parts), detail=False)
        except FileNotFoundError:
            return []
        return [posixpath.basename(str(e).rstrip("/")) for e in entries]

    def modified_time(self, *parts: str) -> float | None:
        """When a file under the checkpoint was last written (epoch seconds), if the storage says."""
        return mtime_of(self.root.fs.info(self.storage_path(*parts)))

    def _refuse_special_file(self, *parts: str) -> None:
        """Refuse a local FIFO, device or socket before opening it (opening a FIFO blocks; /dev/zero never ends).

        Object stores hold only regular objects, so only local checkpoints are checked (one ``stat``).
        """
        if not is_local_uri(self.checkpoint):
            return
        path = local_path(self.checkpoint).joinpath(*parts)
        try:
            mode = path.stat().st_mode  # follows symlinks: a link to /dev/zero is judged by its target
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise CorruptCheckpointFileError(
                    f"{self.describe(*parts)} is a symlink loop; replace it with the file Spark wrote."
                ) from err
            raise  # FileNotFoundError and the like keep their meaning for the callers
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            raise NotARegularFileError(
                f"{self.describe(*parts)} is not a regular file (a FIFO, device or socket, or a symlink to one); "
                "it was not read. Replace it with the file Spark wrote, or restore the checkpoint."
            )

    def read_bytes(self, *parts: str, limit: int | None = None) -> bytes:
        """A file under the checkpoint: at most ``limit`` bytes; without one, the whole file up to
        :data:`MAX_METADATA_BYTES`, else :class:`CheckpointFileTooLargeError`.

        A local FIFO, device or socket is refused (:class:`NotARegularFileError`) and a symlink loop is
        :class:`CorruptCheckpointFileError`; a missing file raises ``FileNotFoundError``.
        """
        path = self.storage_path(*parts)
        self._refuse_special_file(*parts)
        cap = MAX_METADATA_BYTES if limit is None else limit
        try:
            with self.root.fs.open(path, "rb") as handle:
                data = handle.read(cap + 1 if limit is None else cap)
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
            raise CorruptCheckpointFileError(
                f"{self.describe(*parts)} is a symlink loop; replace it with the file Spark wrote."
            ) from err
        if limit is None and len(data) > cap:
            raise CheckpointFileTooLargeError(
                f"{self.describe(*parts)} is larger than {cap // (1024 * 1024)} MiB, far more than Spark writes in a "
                "checkpoint metadata file; it was not read. The file is corrupt or not Spark's: restore the checkpoint."
            )
        return data

    def read_metadata_text(self, *parts: str) -> str:
        """A checkpoint metadata file's text, read with the bounds and type checks of :meth:`read_bytes`."""
        return self.read_bytes(*parts).decode("utf-8", errors="replace")

    # --- the old private names, kept for one release: call the public methods above instead ---------

    def _path(self, *parts: str) -> str:
        """Deprecated private name of :meth:`storage_path`."""
        return self.storage_path(*parts)

    def _describe(self, *parts: str) -> str:
        """Deprecated private name of :meth:`describe`."""
        return self.describe(*parts)

    def _read(self, *parts: str, limit: int | None = None) -> bytes:
        """Deprecated private name of :meth:`read_bytes`."""
        return self.read_bytes(*parts, limit=limit)
