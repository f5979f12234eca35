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
    DeltaMaintenanceError,
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
