"""Where a location lives: one answer to "is this URI on this host's disk", used by hooks and operators. Stdlib only."""

from __future__ import annotations

import posixpath
from pathlib import Path

SPARK_FILE_SINK_LOG = "_spark_metadata"  # the file log of Spark's file sink (Parquet, JSON, ... output)
DELTA_LOG = "_delta_log"


def is_local_uri(location: str) -> bool:
    """A plain path or a ``file:`` URI: readable with this host's file APIs."""
    return "://" not in location or location.startswith("file:")


def local_path(location: str) -> Path:
    """The filesystem path of a local location (``file:///x``, ``file:/x`` or ``/x``)."""
    return Path(location.removeprefix("file://").removeprefix("file:"))


def storage_uri(location: str) -> str:
    """A URI for ``ObjectStoragePath``: remote URIs as given, local paths as absolute ``file://`` URIs."""
    return location if "://" in location else f"file://{posixpath.abspath(str(local_path(location)))}"


def has_spark_file_sink_log(location: str) -> bool:
    """A local folder with Spark's file-sink log, ``_spark_metadata``.

    Remote locations answer ``False``: only a local folder can be looked into without a connection.
    """
    return is_local_uri(location) and (local_path(location) / SPARK_FILE_SINK_LOG).is_dir()


def is_spark_file_sink_output(location: str) -> bool:
    """A local folder written by Spark's file sink (it has ``_spark_metadata``) that is not a Delta table."""
    return has_spark_file_sink_log(location) and not (local_path(location) / DELTA_LOG).is_dir()
