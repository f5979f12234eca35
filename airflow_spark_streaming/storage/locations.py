"""Where a location lives: one answer to "is this URI on this host's disk", used by hooks and operators. Stdlib only."""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

SPARK_FILE_SINK_LOG = "_spark_metadata"  # the file log of Spark's file sink (Parquet, JSON, ... output)
DELTA_LOG = "_delta_log"


def is_local_uri(location: str) -> bool:
    """A plain path or a ``file:`` URI: readable with this host's file APIs."""
    return "://" not in location or location.startswith("file:")


def local_path(location: str) -> Path:
    """The filesystem path of a local location (``file:///x``, ``file:/x`` or ``/x``)."""
    return Path(location.removeprefix("file://").removeprefix("file:"))


def from_spark_location(location: str) -> str:
    """A location as Spark reports it (``file:/lake/t``, ``s3a://b/t``), spelled for the Airflow side: a local one
    as its absolute path, any other unchanged (hooks pick the scheme each consumer reads)."""
    return str(local_path(location)) if location.startswith("file:") else location


def storage_uri(location: str) -> str:
    """A URI for ``ObjectStoragePath``: remote URIs as given, local paths as absolute ``file://`` URIs."""
    return location if "://" in location else f"file://{posixpath.abspath(str(local_path(location)))}"


#: ``scheme:`` at the start of a URI (two or more characters, so a Windows drive letter is not one).
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:")


def is_absolute_location(location: str) -> bool:
    """An absolute path (``/x``) or a URI with a scheme and an absolute path (``s3://b/x``, ``file:/x``).

    A relative path resolves against the current directory, which differs between the Airflow worker, the
    triggerer and the Spark driver, so they would read and write different places.
    """
    if location.startswith("/"):
        return True
    scheme = _SCHEME.match(location)
    return scheme is not None and location[scheme.end() :].startswith("/")


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


# --- is a file inside a table? (the VACUUM plan is read from an untrusted log) ----------------------

#: ``s3://``, ``s3a://`` and ``s3n://`` name the same objects.
_SAME_SCHEME = {"s3a": "s3", "s3n": "s3"}
#: How often a path is percent-decoded when looking for ``..``: a consumer that decodes once more than
#: Delta does must not find one either.
_DECODE_ROUNDS = 3


def _decodings(path: str) -> list[str]:
    """``path`` and its percent-decodings, until decoding changes nothing (at most a few rounds)."""
    seen = [path]
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(seen[-1])
        if decoded == seen[-1]:
            break
        seen.append(decoded)
    return seen


def _place(location: str) -> tuple[str, str, str]:
    """``(scheme, authority, path)``; local paths (``/x``, ``file:/x``, ``file:///x``) are ``("file", "", "/x")``."""
    if is_local_uri(location):
        if location.startswith("file:"):
            parts = urlsplit(location)
            return "file", "", parts.path if parts.netloc in ("", "localhost") else f"//{parts.netloc}{parts.path}"
        return "file", "", location
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    return _SAME_SCHEME.get(scheme, scheme), parts.netloc, parts.path


def same_store(location: str, other: str) -> bool:
    """Both on this host's disk, or both in one bucket (or container) of one object store
    (``s3://``, ``s3a://`` and ``s3n://`` alike)."""
    (scheme, authority, _), (other_scheme, other_authority, _) = _place(location), _place(other)
    return scheme == other_scheme and authority.lower() == other_authority.lower()


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def files_outside_root(table_uri: str, files: list[str]) -> list[str]:
    """Paths of a VACUUM plan that do not lie under the table root.

    A relative path is taken under the root. A path is outside when it, or any percent-decoding of it
    (``%2e%2e``, ``%2F``), has a ``..`` segment or names another scheme, bucket or folder (``/abs``,
    ``file:/abs`` and ``file:///abs`` alike), or, for a local table, when its real path (symlinks resolved)
    leaves the table's real path.
    """
    root_scheme, root_authority, root_path = _place(table_uri)
    root_path = posixpath.normpath(root_path)
    real_root = os.path.realpath(root_path) if root_scheme == "file" else None
    return [file for file in files if not all(_inside(form, root_scheme, root_authority, root_path, real_root)
                                              for form in _decodings(file))]  # fmt: skip


def _inside(path: str, root_scheme: str, root_authority: str, root_path: str, real_root: str | None) -> bool:
    """One spelling of a planned file: no ``..`` segment, same store, under the root, and (locally) really so."""
    if ".." in path.replace("\\", "/").split("/"):
        return False
    if path.startswith("/") or _SCHEME.match(path):
        scheme, authority, path = _place(path)
    else:
        scheme, authority, path = root_scheme, root_authority, f"{root_path}/{path}"
    path = posixpath.normpath(path)
    if (scheme, authority) != (root_scheme, root_authority) or not _under(path, root_path):
        return False
    return real_root is None or _under(os.path.realpath(path), real_root)  # no symlink leads out of the table
