"""Decide from a Delta table's small-file statistics whether compaction pays off."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_spark_streaming.exceptions import InvalidParameterError
from airflow_spark_streaming.sensors._base import check_sensor_timing, optional_int
from airflow_spark_streaming.utils import params
from airflow_spark_streaming.utils.redaction import mask_mapping_secrets

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_spark_streaming.checks.delta import SmallFilesCheck
    from airflow_spark_streaming.conditions.compaction import CompactionPolicy


class DeltaSmallFilesSensor(BaseSensorOperator):
    """Succeed when a Delta table has enough small files for compaction to pay off.

    The thresholds are explicit (see :class:`~airflow_spark_streaming.conditions.compaction.CompactionPolicy`):

    - ``rule="delta"`` (default), after Delta's auto compaction: a partition
      with at least 50 files under 64 MiB;
    - ``rule="iceberg"``, after Iceberg's rewrite planner: a partition with at
      least 5 files under 75% of ``target_file_bytes``.

    ``small_file_bytes`` and ``min_small_files`` override the rule's numbers.
    With ``skip_when_not_needed`` (the default) the sensor checks once and, if
    compaction is not warranted, skips itself and so the compaction downstream;
    otherwise it keeps poking until it is. The statistics and the decision go
    to XCom (``{"stats": ..., "decision": ...}``).

    :param table_uri: the Delta table location. (templated)
    :param rule: ``delta`` or ``iceberg``.
    :param target_file_bytes: the compaction target size (default 128 MiB).
    :param small_file_bytes: files under this size count as small. (templated)
    :param min_small_files: small files a partition needs to qualify. (templated)
    :param skip_when_not_needed: skip instead of waiting when compaction is not warranted.
    :param storage_options: delta-rs object store options for remote tables (override the connection's).
    :param storage_conn_id: an ``aws`` connection for an ``s3://``/``s3a://`` table.
    :param readers: checkpoints of the streams that read the table; each one's lag in versions and time goes
        to XCom under ``readers``. (templated)
    :param reader_roots: folders to search for more reader checkpoints, matched by the table id. (templated)
    :param exclude_readers: checkpoints to leave out. (templated)
    :param min_log_retention_headroom: fail with :class:`ReaderLogRetentionError` when the oldest reader is
        closer than this to the table's ``delta.logRetentionDuration``, before a checkpoint cleans up the
        commits it needs to restart (like ``min_retention_headroom`` on Kafka).
    """

    template_fields: Sequence[str] = (
        "table_uri", "small_file_bytes", "min_small_files", "readers", "reader_roots", "exclude_readers",
    )  # fmt: skip

    def __init__(
        self,
        *,
        table_uri: str,
        rule: str = "delta",
        target_file_bytes: int | None = None,
        small_file_bytes: int | None = None,
        min_small_files: int | None = None,
        skip_when_not_needed: bool = True,
        storage_options: dict[str, str] | None = None,
        storage_conn_id: str | None = None,
        readers: Sequence[str] | None = None,
        reader_roots: Sequence[str] | None = None,
        exclude_readers: Sequence[str] | None = None,
        min_log_retention_headroom: timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        mask_mapping_secrets(storage_options)  # before any check can print it
        check_sensor_timing(kwargs.get("task_id", type(self).__name__), kwargs)
        super().__init__(**kwargs)
        self.readers = params.absolute_locations(self.task_id, "readers", readers)
        self.reader_roots = params.absolute_locations(self.task_id, "reader_roots", reader_roots)
        self.exclude_readers = params.absolute_locations(self.task_id, "exclude_readers", exclude_readers)
        self.min_log_retention_headroom = params.seconds(
            self.task_id, "min_log_retention_headroom", min_log_retention_headroom, optional=True
        )
        if self.min_log_retention_headroom is not None and not (self.readers or self.reader_roots):
            raise InvalidParameterError(
                f"{self.task_id}: min_log_retention_headroom needs readers or reader_roots to measure."
            )
        self.rule = rule
        self.target_file_bytes = target_file_bytes
        self.small_file_bytes = small_file_bytes
        self.min_small_files = min_small_files
        self.storage_options = params.mapping(self.task_id, "storage_options", storage_options, optional=True) or None
        if not any(params.is_template(v) for v in (small_file_bytes, min_small_files)):
            self._policy()  # bad thresholds fail when the DAG is parsed, unless they are templated
        self.table_uri = params.unless_template(params.location, self.task_id, "table_uri", table_uri)
        self.skip_when_not_needed = params.strict_bool(self.task_id, "skip_when_not_needed", skip_when_not_needed)
        self.storage_conn_id = storage_conn_id

    def _policy(self) -> CompactionPolicy:
        from airflow_spark_streaming.conditions.compaction import DEFAULT_TARGET_FILE_BYTES, CompactionPolicy

        # 0 is refused (minimum 1), not silently read as "the rule's default".
        target = optional_int(self.task_id, "target_file_bytes", self.target_file_bytes, minimum=1)
        return CompactionPolicy.from_rule(
            self.rule,
            target_file_bytes=DEFAULT_TARGET_FILE_BYTES if target is None else target,
            small_file_bytes=optional_int(self.task_id, "small_file_bytes", self.small_file_bytes, minimum=1),
            min_small_files=optional_int(self.task_id, "min_small_files", self.min_small_files, minimum=1),
        )

    def _new_check(self) -> SmallFilesCheck:
        """The check from the (rendered) fields; it carries no state, so every poke makes its own."""
        from airflow_spark_streaming.checks.delta import SmallFilesCheck

        params.location(self.task_id, "table_uri", self.table_uri)  # as rendered
        for name in ("readers", "reader_roots", "exclude_readers"):  # templated ones are checked once rendered
            setattr(self, name, params.absolute_locations(self.task_id, name, getattr(self, name)))
        return SmallFilesCheck(
            table_uri=self.table_uri, policy=self._policy(), storage_options=self.storage_options,
            storage_conn_id=self.storage_conn_id, readers=list(self.readers), reader_roots=list(self.reader_roots),
            exclude_readers=list(self.exclude_readers),
            min_log_retention_headroom_seconds=self.min_log_retention_headroom,
        )  # fmt: skip

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_spark_streaming.conditions.verdict import VerdictState

        verdict = self._new_check().evaluate()
        self.log.info("%s", verdict.message)
        context["ti"].xcom_push(key="small_files", value=verdict.payload)
        warranted = verdict.state == VerdictState.MET
        if not warranted and self.skip_when_not_needed:
            reason = verdict.payload["decision"]["reason"]
            raise AirflowSkipException(f"Compaction of {self.table_uri} is not needed: {reason}.")
        return PokeReturnValue(is_done=warranted, xcom_value=verdict.payload)
