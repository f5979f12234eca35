"""What a hook or operator needs from ``storage_conn_id`` for one location: delta-rs options, Spark settings.

Kept apart from :mod:`.storage` (the connection mapping) so operators can ask one
question per engine: "given this connection and these paths, what do I pass?".
Local paths, and S3 paths without a connection, get nothing added: the engines
then use their own default credential chains.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from airflow_spark_streaming.storage.locations import is_s3_uri


def delta_rs_options(
    location: str, storage_conn_id: str | None, storage_options: Mapping[str, str] | None = None
) -> dict[str, str] | None:
    """delta-rs ``storage_options`` for ``location``: the connection's, with ``storage_options`` on top."""
    if storage_conn_id and is_s3_uri(location):
        from airflow_spark_streaming.hooks.storage import StorageHook

        return StorageHook(storage_conn_id, storage_options=storage_options).delta_storage_options()
    return dict(storage_options) if storage_options else None


@dataclass(frozen=True)
class SparkStorage:
    """Spark settings and packages a job needs for its paths. ``secret_conf`` goes to the 0600 file only."""

    s3: bool
    conf: dict[str, str] = field(default_factory=dict)
    secret_conf: dict[str, str] = field(default_factory=dict, repr=False)


def spark_storage(storage_conn_id: str | None, paths: Iterable[str | None]) -> SparkStorage:
    """S3A settings from ``storage_conn_id`` when any of ``paths`` is on S3 (or a connection is given)."""
    s3 = any(is_s3_uri(p) for p in paths)
    if not storage_conn_id or not s3:
        return SparkStorage(s3=s3)
    from airflow_spark_streaming.hooks.storage import StorageHook

    conf = StorageHook(storage_conn_id).spark_conf()
    return SparkStorage(s3=True, conf=dict(conf.settings), secret_conf=dict(conf.secret_settings))


def spark_spec(spec: dict) -> dict:
    """A copy of a stream spec with its checkpoint, source and sink paths spelled for Spark (``s3a://``)."""
    from airflow_spark_streaming.storage.locations import SPARK, uri_for

    spec = {**spec, "source": dict(spec["source"]), "sink": dict(spec["sink"])}
    spec["checkpoint_location"] = uri_for(spec["checkpoint_location"], SPARK)
    for side in ("source", "sink"):
        if isinstance(spec[side].get("path"), str):
            spec[side]["path"] = uri_for(spec[side]["path"], SPARK)
    return spec


def spec_paths(spec: dict | None) -> list[str | None]:
    """The storage locations a stream spec touches."""
    if not spec:
        return []
    return [spec.get("checkpoint_location"), spec["source"].get("path"), spec["sink"].get("path")]
