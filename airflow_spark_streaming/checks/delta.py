"""The small-files check: does compacting a Delta table pay off."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.checks._base import SensorCheck
from airflow_spark_streaming.conditions.verdict import Verdict, VerdictState
from airflow_spark_streaming.exceptions import DeltaMaintenanceError
from airflow_spark_streaming.utils import params

if TYPE_CHECKING:
    from airflow_spark_streaming.conditions.compaction import CompactionPolicy


@dataclass(kw_only=True)
class SmallFilesCheck(SensorCheck):
    """Read a Delta table's file statistics and decide whether compaction is warranted.

    ``met`` when it is, ``waiting`` when not; the payload is
    ``{"stats": ..., "decision": ...}``. Errors reading the table are raised:
    ``DeltaSmallFilesSensor`` has no trigger to carry them. Carries no state.

    :param table_uri: the Delta table location.
    :param policy: the compaction thresholds.
    :param storage_options: delta-rs object store options (override the connection's).
    :param storage_conn_id: an ``aws`` connection for an ``s3://``/``s3a://`` table.
    :param readers: checkpoints of downstream streams; their positions and lag go to the payload.
    :param reader_roots: folders to search for more reader checkpoints (by the table id).
    :param exclude_readers: checkpoints to leave out.
    :param min_log_retention_headroom_seconds: raise :class:`ReaderLogRetentionError` when the oldest
        reader is closer than this to the table's ``delta.logRetentionDuration``.
    """

    error_class = DeltaMaintenanceError

    table_uri: str
    policy: CompactionPolicy
    storage_options: dict[str, str] | None = None
    storage_conn_id: str | None = None
    readers: list[str] = field(default_factory=list)
    reader_roots: list[str] = field(default_factory=list)
    exclude_readers: list[str] = field(default_factory=list)
    min_log_retention_headroom_seconds: float | None = None

    @classmethod
    def from_kwargs(
        cls, *, owner: str, table_uri: Any = None, policy: Any = None, storage_options: Any = None, **kwargs: Any
    ) -> SmallFilesCheck:
        from airflow_spark_streaming.conditions.compaction import CompactionPolicy
        from airflow_spark_streaming.utils.redaction import mask_mapping_secrets

        mask_mapping_secrets(storage_options)  # before any check can print it
        return cls(
            table_uri=cls._location(owner, "Delta table", table_uri),
            policy=cls._dataclass(owner, "policy fields", CompactionPolicy, policy),
            storage_options=params.mapping(owner, "storage_options", storage_options, optional=True) or None,
            **kwargs,
        )

    def evaluate(self) -> Verdict:
        from airflow_spark_streaming.conditions.compaction import decide_compaction
        from airflow_spark_streaming.hooks.delta import DeltaTableHook

        hook = DeltaTableHook(
            self.table_uri, storage_options=self.storage_options, storage_conn_id=self.storage_conn_id
        )
        stats = hook.get_stats(small_file_bytes=self.policy.small_file_bytes)
        decision = decide_compaction(stats, self.policy)
        payload = {"stats": stats.to_dict(), "decision": decision.to_dict()}
        lag = ""
        if self.readers or self.reader_roots:
            payload["readers"] = self._readers(hook)
            lag = "; readers: " + (
                ", ".join(
                    f"{r['name']} {r['lag_versions']} versions / {r['lag_seconds'] / 3600:.1f}h behind"
                    for r in payload["readers"]
                )
                or "none found"
            )
        return Verdict(
            VerdictState.MET if decision.warranted else VerdictState.WAITING,
            f"{self.table_uri}: {stats.num_files} files, {stats.small_files} small "
            f"({100 * stats.small_file_share:.0f}%); {decision.reason}{lag}",
            payload,
        )

    def _readers(self, hook) -> list[dict[str, Any]]:
        """The downstream streams and their lag; raises when one is too close to the log retention."""
        from airflow_spark_streaming.conditions.reader_retention import log_retention_headroom
        from airflow_spark_streaming.exceptions import ReaderLogRetentionError
        from airflow_spark_streaming.hooks.delta_readers import DeltaReadersHook

        readers = DeltaReadersHook(hook, storage_conn_id=self.storage_conn_id).get_readers(
            self.readers, roots=self.reader_roots, exclude=self.exclude_readers
        )
        headroom = log_retention_headroom(readers, hook.get_log_retention_seconds())
        if self.min_log_retention_headroom_seconds is not None and headroom is not None:
            oldest, seconds = headroom
            if seconds < self.min_log_retention_headroom_seconds:
                raise ReaderLogRetentionError(
                    f"Reader {oldest.name} of {self.table_uri} is {oldest.lag_seconds / 3600:.1f}h behind (version "
                    f"{oldest.next_version}): {seconds / 3600:.1f}h before delta.logRetentionDuration lets a "
                    f"checkpoint clean up commits it needs, less than min_log_retention_headroom "
                    f"({self.min_log_retention_headroom_seconds / 3600:g}h). Restart or speed up the reader, or "
                    "raise the table's delta.logRetentionDuration."
                )
        return [r.to_dict() for r in readers]
