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


# --- one path, three S3 clients -----------------------------------------------------------------
# Spark reaches S3 through Hadoop's S3A (``s3a://``); Airflow's ObjectStoragePath (s3fs) and
# delta-rs use ``s3://``. Users may write either; each consumer gets its own scheme from here.

S3_URI_SCHEMES = ("s3", "s3a", "s3n")
SPARK = "spark"
FSSPEC = "fsspec"
DELTA_RS = "delta-rs"


def is_s3_uri(location: str | None) -> bool:
    """``s3://``, ``s3a://`` or ``s3n://``."""
    if not isinstance(location, str) or "://" not in location:
        return False
    return location.split("://", 1)[0].strip().lower() in S3_URI_SCHEMES


def uri_for(location: str, consumer: str) -> str:
    """``location`` spelled for ``consumer``: ``s3a://`` for ``spark``, ``s3://`` for ``fsspec`` and ``delta-rs``.

    Anything that is not an S3 URI is returned unchanged.
    """
    if consumer not in (SPARK, FSSPEC, DELTA_RS):
        raise ValueError(f"consumer must be one of {SPARK!r}, {FSSPEC!r}, {DELTA_RS!r}; got {consumer!r}")
    if not is_s3_uri(location):
        return location
    rest = location.strip().split("://", 1)[1]
    return f"{'s3a' if consumer == SPARK else 's3'}://{rest}"
