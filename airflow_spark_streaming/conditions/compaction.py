"""When compacting a Delta table pays off: explicit thresholds after Delta's and Iceberg's heuristics (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.exceptions import DeltaMaintenanceError

if TYPE_CHECKING:
    from airflow_spark_streaming.delta.models import DeltaTableStats

MIB = 1024 * 1024
# Delta auto compaction: files under 64 MiB are small; 50 of them in a partition trigger it.
DEFAULT_SMALL_FILE_BYTES = 64 * MIB
DEFAULT_TARGET_FILE_BYTES = 128 * MIB

#: The heuristics the thresholds are modelled on.
RULES = {
    # Delta auto compaction: >= 50 files under 64 MiB in a partition.
    "delta": {"small_file_fraction": None, "small_file_bytes": DEFAULT_SMALL_FILE_BYTES, "min_small_files": 50},
    # Iceberg's rewrite planner: >= 5 files under 75% of the target size in a partition.
    "iceberg": {"small_file_fraction": 0.75, "small_file_bytes": None, "min_small_files": 5},
}


@dataclass
class CompactionPolicy:
    """Explicit thresholds deciding whether compacting a table pays off.

    A partition qualifies when it holds at least ``min_small_files`` files
    smaller than ``small_file_bytes``; compaction is warranted when any
    partition qualifies. :meth:`from_rule` fills the numbers from the Delta
    (``delta``) or Iceberg (``iceberg``) heuristics.
    """

    small_file_bytes: int
    min_small_files: int
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES
    rule: str = "custom"

    def __post_init__(self) -> None:
        if self.small_file_bytes <= 0 or self.min_small_files < 2 or self.target_file_bytes <= 0:
            raise DeltaMaintenanceError(
                "Compaction thresholds must be positive and min_small_files at least 2 (one file has nothing to "
                f"merge with); got small_file_bytes={self.small_file_bytes}, min_small_files={self.min_small_files}, "
                f"target_file_bytes={self.target_file_bytes}."
            )

    @classmethod
    def from_rule(
        cls,
        rule: str = "delta",
        *,
        target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
        small_file_bytes: int | None = None,
        min_small_files: int | None = None,
    ) -> CompactionPolicy:
        if rule not in RULES:
            raise DeltaMaintenanceError(f"Unknown compaction rule {rule!r}; use one of {sorted(RULES)}.")
        base = RULES[rule]
        default_small = base["small_file_bytes"] or int(base["small_file_fraction"] * target_file_bytes)
        return cls(
            small_file_bytes=small_file_bytes or default_small,
            min_small_files=min_small_files or base["min_small_files"],
            target_file_bytes=target_file_bytes,
            rule=rule,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CompactionDecision:
    """Whether to compact, why, and which partitions would be rewritten."""

    warranted: bool
    reason: str
    policy: CompactionPolicy
    partitions: list[dict[str, str | None]]
    candidate_files: int
    candidate_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_compaction(stats: DeltaTableStats, policy: CompactionPolicy) -> CompactionDecision:
    """Apply ``policy`` to ``stats`` (pure). ``stats`` must be read with ``policy.small_file_bytes``."""
    if stats.small_file_bytes != policy.small_file_bytes:
        raise DeltaMaintenanceError(
            f"The statistics count files under {stats.small_file_bytes} bytes as small, the policy under "
            f"{policy.small_file_bytes}; read them with get_stats(small_file_bytes={policy.small_file_bytes})."
        )
    qualifying = [p for p in stats.partitions if p.small_files >= policy.min_small_files]
    worst = max(stats.partitions, key=lambda p: p.small_files, default=None)
    if qualifying:
        reason = (
            f"{len(qualifying)} of {len(stats.partitions)} partitions hold at least {policy.min_small_files} files "
            f"under {policy.small_file_bytes:,} bytes ({policy.rule} rule)"
        )
    else:
        most = worst.small_files if worst else 0
        reason = (
            f"no partition holds {policy.min_small_files} files under {policy.small_file_bytes:,} bytes "
            f"(at most {most}); compaction would not pay off ({policy.rule} rule)"
        )
    return CompactionDecision(
        warranted=bool(qualifying),
        reason=reason,
        policy=policy,
        partitions=[p.partition for p in qualifying],
        candidate_files=sum(p.small_files for p in qualifying),
        candidate_bytes=sum(p.small_bytes for p in qualifying),
    )
