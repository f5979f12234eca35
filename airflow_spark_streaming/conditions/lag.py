"""When a query's Kafka lag is low enough, and when it has been too high for too long (pure)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.checkpoint.models import BATCH_BASES as BASES
from airflow_spark_streaming.conditions.verdict import Verdict, VerdictState
from airflow_spark_streaming.exceptions import KafkaLagError, KafkaRetentionHeadroomError, LaggingQueryStoppedError

if TYPE_CHECKING:
    from airflow_spark_streaming.kafka.models import LagReport


@dataclass
class LagCriteria:
    """When lag is low enough, and when it has been too high for too long.

    :param max_total_lag: met when the total lag is at or below this.
    :param max_partition_lag: met when every partition's lag is at or below this.
    :param ceiling: alert threshold on the total lag.
    :param ceiling_seconds: fail when the total lag stays above ``ceiling``
        for longer than this.
    :param basis: ``committed`` or ``planned`` (see :meth:`KafkaLagHook.get_lag`).
    :param max_time_lag_seconds: met when no partition's oldest unprocessed
        record is older than this; an unknown time lag counts as not met.
    :param min_retention_headroom_seconds: fail as soon as retention would
        delete unread records within less than this.
    :param fail_if_stopped: fail, instead of waiting, while the lag is not low
        enough and the provider's runner holds no live lease on the checkpoint.
    """

    max_total_lag: int | None = None
    max_partition_lag: int | None = None
    ceiling: int | None = None
    ceiling_seconds: float | None = None
    basis: str = "committed"
    max_time_lag_seconds: float | None = None
    min_retention_headroom_seconds: float | None = None
    fail_if_stopped: bool = False

    @property
    def needs_time_lag(self) -> bool:
        return self.max_time_lag_seconds is not None or self.min_retention_headroom_seconds is not None

    def __post_init__(self) -> None:
        if (self.max_total_lag is None and self.max_partition_lag is None and self.ceiling is None
                and not self.needs_time_lag):  # fmt: skip
            raise KafkaLagError(
                "Give max_total_lag, max_partition_lag, max_time_lag, min_retention_headroom or a ceiling: "
                "otherwise there is nothing to wait for."
            )
        for name in ("max_total_lag", "max_partition_lag", "ceiling", "ceiling_seconds",
                     "max_time_lag_seconds", "min_retention_headroom_seconds"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value < 0:
                raise KafkaLagError(f"{name} must be zero or more, got {value!r}.")
        if (self.ceiling is None) != (self.ceiling_seconds is None):
            raise KafkaLagError(
                "ceiling and ceiling_seconds go together: set both to alert on sustained lag, or neither."
            )
        if self.basis not in BASES:
            raise KafkaLagError(f"basis must be one of {BASES}, got {self.basis!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_lag(
    report: LagReport, criteria: LagCriteria, above_since: float | None, now: float | None = None
) -> tuple[Verdict, float | None]:
    """Decide on one report (pure). Returns the verdict and when the lag went over the ceiling."""
    now = time.time() if now is None else now
    total, worst = report.total_lag, report.max_lag
    summary = f"total lag {total:,}, max partition lag {worst:,} over {len(report.partitions)} partitions"
    if criteria.ceiling is not None and total > criteria.ceiling:
        above_since = above_since if above_since is not None else now
        if now - above_since > criteria.ceiling_seconds:
            return (
                Verdict(
                    VerdictState.ALERT,
                    f"{report.checkpoint}: {summary}; above the ceiling {criteria.ceiling:,} for "
                    f"{now - above_since:.0f}s, longer than {criteria.ceiling_seconds:.0f}s.",
                    report.to_dict(),
                ),
                above_since,
            )
    else:
        above_since = None
    headroom, least = criteria.min_retention_headroom_seconds, report.min_retention_headroom_seconds
    if headroom is not None and least is not None and least < headroom:
        return (
            Verdict(
                VerdictState.ERROR,
                f"{report.checkpoint}: {summary}; retention deletes unread records in {least:.0f}s, less than "
                f"min_retention_headroom {headroom:.0f}s (time lag {report.max_time_lag_seconds or 0:.0f}s). "
                "Speed the query up, or raise the topic's retention.ms before the records are lost.",
                report.to_dict(),
                error=KafkaRetentionHeadroomError.__name__,
            ),
            above_since,
        )
    thresholds = [
        (criteria.max_total_lag, total, "total"),
        (criteria.max_partition_lag, worst, "max partition"),
    ]
    unmet = [
        f"{what} lag {value:,} > {limit:,}" for limit, value, what in thresholds if limit is not None and value > limit
    ]
    if criteria.max_time_lag_seconds is not None:
        unknown = report.unknown_time_lag_partitions or []
        oldest = report.max_time_lag_seconds
        if unknown:
            unmet.append(f"time lag unknown for {', '.join(unknown)}")
        elif oldest is not None and oldest > criteria.max_time_lag_seconds:
            unmet.append(f"time lag {oldest:.0f}s > {criteria.max_time_lag_seconds:.0f}s")
        else:
            summary += f", time lag {oldest or 0:.0f}s"
    if criteria.max_total_lag is None and criteria.max_partition_lag is None and criteria.max_time_lag_seconds is None:
        unmet.append("alert-only wait")  # only a ceiling: keep watching until the alert or the timeout
    if unmet and criteria.fail_if_stopped and report.query_running is False:
        return (
            Verdict(
                VerdictState.ERROR,
                f"{report.checkpoint}: {summary}; {'; '.join(unmet)}. The query is not running (its runner holds "
                "no live lease), so its lag cannot fall: start it again, or leave fail_if_stopped off to wait "
                "for its next run.",
                report.to_dict(),
                error=LaggingQueryStoppedError.__name__,
            ),
            above_since,
        )
    if unmet:
        return Verdict(
            VerdictState.WAITING, f"{report.checkpoint}: {summary}; {'; '.join(unmet)}", report.to_dict()
        ), above_since
    return Verdict(VerdictState.MET, f"{report.checkpoint}: {summary}", report.to_dict()), above_since
