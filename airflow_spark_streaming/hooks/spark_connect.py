"""Delta maintenance on a warm Spark Connect server: OPTIMIZE, Z-ORDER, VACUUM and conversion as SQL, no spark-submit.

The statements and their checks are those the spark-submit maintenance job runs
(:mod:`airflow_spark_streaming.delta.spark_maintenance`): its functions take any SparkSession, so
here they get a Connect session instead of a spark-submit driver's. The same
partition-predicate check, Z-ORDER quoting, retention floor (the table's
``delta.deletedFileRetentionDuration``) and restore of the session's retention check (in a
``finally``) apply.

The server reaches the table with its own Hadoop settings: no storage credential is sent over the
session (see docs/spark-connect.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseHook

from airflow_spark_streaming.exceptions import (
    CatalogTableNotFoundError,
    DeltaMaintenanceError,
    InvalidParameterError,
    SparkConnectError,
    SparkConnectUnreachableError,
    UnsafeRetentionError,
)

CONN_TYPE = "spark_connect"
#: Seconds to wait for the server's gRPC channel before giving up with :class:`SparkConnectUnreachableError`.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Retries of a failed call (pyspark's default tolerates about 10 minutes of an unreachable server).
DEFAULT_MAX_RETRIES = 3
#: Spark settings a Connect session must not carry: storage credentials stay in the server's own Hadoop conf.
FORBIDDEN_SESSION_PREFIXES = ("spark.hadoop.", "spark.jars", "spark.driver.", "spark.executor.")


@dataclass(frozen=True)
class ConnectJobResult:
    """One maintenance action run on a Connect server.

    :param action: ``optimize``, ``vacuum`` or ``convert``.
    :param table_uri: the table as the server reached it (``s3a://`` for S3).
    :param server: the server's ``host:port`` (no token).
    :param seconds: wall time of the action, connection included.
    """

    action: str
    table_uri: str
    server: str
    seconds: float


def _extend_redaction(spark: Any) -> None:
    """Extend the session's SQL redaction (what the server or ``conf`` set, else Spark's default) with every
    setting name the provider treats as a credential: Kafka options travel in the plans the server logs and
    records. ``spark.redaction.regex`` is the server's own, fixed at its start."""
    from airflow_spark_streaming.utils.redaction import SPARK_STRING_REDACTION_FALLBACK, spark_redaction_conf

    current = {}
    for key in ("spark.sql.redaction.options.regex", "spark.sql.redaction.string.regex",
                SPARK_STRING_REDACTION_FALLBACK):  # fmt: skip
        value = spark.conf.get(key, None)
        if value is not None:
            current[key] = value
    for key, value in spark_redaction_conf(current, session_only=True).items():
        spark.conf.set(key, value)


#: The longest table location taken from a server's answer (a real one is a few hundred characters).
MAX_TABLE_LOCATION_CHARS = 4096
#: Spark's error conditions for a table (or its database) the catalog does not hold.
TABLE_NOT_FOUND_CONDITIONS = frozenset({"TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND", "DELTA_TABLE_NOT_FOUND"})


@dataclass(frozen=True)
class CatalogTable:
    """A catalog table as a Spark Connect server describes it (``DESCRIBE DETAIL``).

    :param name: the table's name as asked (``[catalog.][database.]table``).
    :param location: where its files are, as the server reaches them (``file:/...``, ``s3a://...``).
    :param format: its format (``delta``, ``parquet`` ...).
    :param table_id: the Delta table's id (``None`` for other formats).
    :param partition_columns: its partition columns.
    :param num_files: files in its current version (``None`` when the server does not say).
    :param size_in_bytes: bytes in its current version (``None`` when the server does not say).
    :param server: the server's ``host:port`` (no token).
    """

    name: str
    location: str
    format: str | None
    table_id: str | None
    partition_columns: tuple[str, ...]
    num_files: int | None
    size_in_bytes: int | None
    server: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "location": self.location, "format": self.format, "table_id": self.table_id,
                "partition_columns": list(self.partition_columns), "num_files": self.num_files,
                "size_in_bytes": self.size_in_bytes, "server": self.server}  # fmt: skip


def quoted_table_name(name: str) -> str:
    """``[catalog.][database.]table`` quoted part by part for SQL, else :class:`InvalidParameterError`: only plain
    ASCII names (letters, digits, ``_``, ``-``) are taken, so nothing can leave its quotes."""
    from airflow_spark_streaming.pipelines.flows import check_identifier

    parts = name.split(".") if isinstance(name, str) else []
    problems = [f"{part[:64]!r} {check_identifier(part)}" for part in parts if check_identifier(part)]
    if not 1 <= len(parts) <= 3 or problems:
        shown = repr(name[:120]) if isinstance(name, str) else f"a {type(name).__name__}"
        why = "; ".join(problems) or "it is not one to three dot-separated parts"
        raise InvalidParameterError(f"The table name {shown} cannot be asked of a Spark Connect server: {why}.")
    return ".".join(f"`{part}`" for part in parts)


def is_spark_connect_connection(conn_id: str | None) -> bool:
    """Whether ``conn_id`` names a ``spark_connect`` connection (a missing connection is not one)."""
    if not conn_id:
        return False
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id).conn_type == CONN_TYPE
    except AirflowNotFoundException:
        return False


class SparkConnectSessionHook(BaseHook):
    """Sessions of their own on the Spark Connect server of a ``spark_connect`` connection, bounded in time.

    The base of :class:`DeltaConnectHook` and ``hooks/stream_connect.StreamConnectHook``.

    :param spark_connect_conn_id: the ``spark_connect`` connection (host, port; login is the user id,
        password the token, extra ``use_ssl``), read with the Spark provider's ``SparkConnectHook``.
    :param connect_timeout: seconds to wait for the server to accept the channel.
    :param max_retries: retries of a call the server could not answer (bounded, unlike pyspark's default).
    """

    conn_name_attr = "spark_connect_conn_id"
    default_conn_name = "spark_connect_default"
    conn_type = CONN_TYPE
    hook_name = "Spark Connect session"

    def __init__(
        self,
        spark_connect_conn_id: str = default_conn_name,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        super().__init__()
        self.spark_connect_conn_id = spark_connect_conn_id
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.server: str | None = None

    def _url(self) -> str:
        """The connection's ``sc://`` URL; it may hold the token, so it is masked and never logged."""
        from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook
        from airflow.sdk.log import mask_secret

        try:
            url = SparkConnectHook(self.spark_connect_conn_id).get_connection_url()
        except ValueError as err:
            raise SparkConnectError(
                f"The spark_connect connection {self.spark_connect_conn_id!r} cannot be read as a server address "
                f"({err}); set its host (and port) to the server, for example 127.0.0.1 and 15002."
            ) from err
        if ";" in url:  # parameters: the user id and the token
            mask_secret(url)
        return url

    @contextmanager
    def session(self, conf: dict[str, str] | None = None) -> Iterator[Any]:
        """A Connect SparkSession of its own on the server, released when the block ends.

        :param conf: runtime SQL settings for this session (not storage credentials or static settings).
        """
        from pyspark.sql.connect.client import DefaultChannelBuilder

        forbidden = sorted(k for k in conf or {} if k.startswith(FORBIDDEN_SESSION_PREFIXES))
        if forbidden:
            raise SparkConnectError(
                f"spark_conf keys {forbidden} cannot be sent to the Spark Connect server of "
                f"{self.spark_connect_conn_id!r}: storage credentials, jars and driver settings belong in the "
                "server's own start-up settings (see docs/spark-connect.md); remove them from spark_conf."
            )
        url = self._url()
        channel = DefaultChannelBuilder(url)
        self.server = channel.endpoint  # host:port, without the token
        self._wait_for_channel(channel, self.server)
        from pyspark.sql.connect.client.retries import DefaultPolicy
        from pyspark.sql.connect.session import SparkSession

        spark = SparkSession(connection=url)
        spark.client.set_retry_policies([DefaultPolicy(max_retries=self.max_retries, max_backoff=5000)])
        try:
            for key, value in (conf or {}).items():
                spark.conf.set(key, value)  # this session only; released with it
            _extend_redaction(spark)
            yield spark
        finally:
            spark.stop()

    def _wait_for_channel(self, builder: Any, server: str, timeout: float | None = None) -> None:
        import grpc

        channel = builder.toChannel()
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout or self.connect_timeout)
        except grpc.FutureTimeoutError:
            raise SparkConnectUnreachableError(
                f"The Spark Connect server of connection {self.spark_connect_conn_id!r} at {server} did not "
                f"answer within {timeout or self.connect_timeout:g}s; start it (scripts/connect-local start) or fix the "
                "connection's host and port."
            ) from None
        finally:
            channel.close()

    def unreachable_or_none(self, err: BaseException, during: str) -> SparkConnectUnreachableError | None:
        """:class:`SparkConnectUnreachableError` when ``err`` is the server going away (after the bounded
        retries), else ``None``."""
        import grpc
        from pyspark.errors.exceptions.connect import SparkConnectGrpcException

        text = str(err)
        if isinstance(err, SparkConnectGrpcException | grpc.RpcError) and "UNAVAILABLE" in text.upper():
            first = text.strip().splitlines()[0][:300] if text.strip() else type(err).__name__
            return SparkConnectUnreachableError(
                f"The Spark Connect server at {self.server or '?'} went away during {during} and did not come back "
                f"within {self.max_retries} retries: {first}"
            )
        return None

    def describe_table(self, name: str) -> CatalogTable:
        """Where the server's catalog keeps the table ``name`` (``[catalog.][database.]table``), and what it is.

        :raises CatalogTableNotFoundError: the catalog has no such table (or no such database).
        :raises SparkConnectError: the server failed the statement, or answered with no usable location.
        """
        quoted = quoted_table_name(name)
        with self.session() as spark:
            server = self.server or "?"
            try:
                rows = spark.sql(f"DESCRIBE DETAIL {quoted}").limit(2).collect()
            except Exception as err:
                condition = _error_condition(err)
                if condition in TABLE_NOT_FOUND_CONDITIONS:
                    raise CatalogTableNotFoundError(
                        f"The catalog of the Spark Connect server at {server} has no table {name} ({condition}); "
                        "check the name (catalog.database.table), or run the pipeline that creates it first."
                    ) from None
                gone = self.unreachable_or_none(err, f"DESCRIBE DETAIL {name}")
                if gone is not None:
                    raise gone from err
                first = str(err).strip().splitlines()[0][:500] if str(err).strip() else type(err).__name__
                raise SparkConnectError(
                    f"DESCRIBE DETAIL {name} failed on the Spark Connect server at {server}: {first}"
                ) from err
        if len(rows) != 1:
            raise SparkConnectError(f"DESCRIBE DETAIL {name} on {server} returned {len(rows)} rows, not one.")
        detail = rows[0].asDict()
        return CatalogTable(
            name=name,
            location=_checked_location(name, server, detail.get("location")),
            format=_text_or_none(detail.get("format")),
            table_id=_text_or_none(detail.get("id")),
            partition_columns=tuple(str(c)[:255] for c in (detail.get("partitionColumns") or ())[:64]),
            num_files=_int_or_none(detail.get("numFiles")),
            size_in_bytes=_int_or_none(detail.get("sizeInBytes")),
            server=server,
        )


def _error_condition(err: BaseException) -> str | None:
    """Spark's error condition (``TABLE_OR_VIEW_NOT_FOUND`` ...) of a server error, if it carries one."""
    for name in ("getCondition", "getErrorClass"):
        getter = getattr(err, name, None)
        if callable(getter):
            try:
                condition = getter()
            except Exception:  # an exception type without the server's error details
                condition = None
            if condition:
                return str(condition).split(".", 1)[0]
    return None


def _checked_location(name: str, server: str, value: Any) -> str:
    """The table location from the server's answer: an absolute path or URI, bounded, without control
    characters; anything else is :class:`SparkConnectError` (the value is not shown)."""
    from airflow_spark_streaming.storage.locations import is_absolute_location

    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_TABLE_LOCATION_CHARS
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
        or not is_absolute_location(value)
    ):
        raise SparkConnectError(
            f"The Spark Connect server at {server} gave no usable location for table {name} (an absolute path or "
            f"URI of at most {MAX_TABLE_LOCATION_CHARS} characters); give the table's location as table_uri."
        )
    return value


def _text_or_none(value: Any) -> str | None:
    return str(value)[:255] if value not in (None, "") else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class DeltaConnectHook(SparkConnectSessionHook):
    """Run Delta maintenance SQL on the Spark Connect server of a ``spark_connect`` connection."""

    hook_name = "Delta Lake over Spark Connect"

    def run(self, spec: dict[str, Any], *, conf: dict[str, str] | None = None) -> ConnectJobResult:
        """Run one maintenance ``spec`` (as the spark-submit job reads it) on the server; wait for it.

        :raises UnsafeRetentionError: a VACUUM below the table's retention without ``retention_override``.
        :raises DeltaMaintenanceError: a spec the job refuses (a ``where`` that is not a partition predicate ...).
        :raises SparkConnectError: the server failed the statement.
        """
        from airflow_spark_streaming.delta import spark_maintenance

        actions = spark_maintenance.ACTIONS
        action = spec.get("action")
        if action not in actions:
            raise DeltaMaintenanceError(f"maintenance action {action!r} is not one of {sorted(actions)}.")
        started = time.monotonic()
        with self.session(conf) as spark:
            server = self.server or "?"
            try:
                spark_maintenance.run(spark, spec)
            except spark_maintenance.MaintenanceRefused as err:
                refused = UnsafeRetentionError if "retention" in str(err) else DeltaMaintenanceError
                raise refused(f"{action.upper()} of {spec.get('table')} refused: {err}; nothing was changed.") from err
            except Exception as err:
                raise self._translate(err, action, spec.get("table"), server) from err
        return ConnectJobResult(action=action, table_uri=spec.get("table", ""), server=server,
                                seconds=round(time.monotonic() - started, 3))  # fmt: skip

    def _translate(self, err: Exception, action: str, table: str | None, server: str) -> Exception:
        from airflow_spark_streaming.exceptions import SparkStreamingError

        if isinstance(err, SparkStreamingError):
            return err
        gone = self.unreachable_or_none(err, f"{action.upper()} of {table}")
        if gone is not None:
            return gone
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return SparkConnectError(
            f"{action.upper()} of {table} failed on the Spark Connect server at {server}: {first_line[:500]}"
        )
