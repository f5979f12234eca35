"""When a stream-health wait is over: the status is one to wait for, or one to fail on (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_spark_streaming.conditions.stream_health import DEFAULT_WINDOW, STATUSES
from airflow_spark_streaming.conditions.verdict import Verdict, VerdictState
from airflow_spark_streaming.exceptions import StreamHealthError, StreamUnhealthyError

if TYPE_CHECKING:
    from airflow_spark_streaming.conditions.stream_health import StreamHealth

from airflow_spark_streaming.conditions.statuses import DEFAULT_FAIL_ON, DEFAULT_WAIT_FOR  # noqa: E402,F401


@dataclass
class HealthCriteria:
    """Which statuses end a wait: ``wait_for`` succeeds, ``fail_on`` fails, any other keeps waiting.

    :param window: how many of the newest batches the status is judged on.
    """

    window: int = DEFAULT_WINDOW
    wait_for: list[str] = field(default_factory=lambda: list(DEFAULT_WAIT_FOR))
    fail_on: list[str] = field(default_factory=lambda: list(DEFAULT_FAIL_ON))

    def __post_init__(self) -> None:
        if isinstance(self.wait_for, str) or isinstance(self.fail_on, str):
            raise StreamHealthError(
                f"wait_for and fail_on are sequences of statuses, e.g. ('OK',), got {self.wait_for!r} and {self.fail_on!r}."
            )
        self.wait_for, self.fail_on = [str(s).upper() for s in self.wait_for], [str(s).upper() for s in self.fail_on]
        unknown = sorted(set(self.wait_for + self.fail_on) - set(STATUSES))
        if unknown:
            raise StreamHealthError(
                f"Unknown stream status {', '.join(unknown)}; the statuses are {', '.join(STATUSES)}."
            )
        if not self.wait_for:
            raise StreamHealthError("wait_for is empty: name at least one status to wait for, e.g. ('OK',).")
        both = sorted(set(self.wait_for) & set(self.fail_on))
        if both:
            raise StreamHealthError(f"Status {', '.join(both)} is in both wait_for and fail_on; keep it in one.")
        if not isinstance(self.window, int) or self.window < 2:
            raise StreamHealthError(f"window must be an integer of at least 2 batches, got {self.window!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_health(checkpoint: str, health: StreamHealth, criteria: HealthCriteria) -> Verdict:
    """``met`` for a ``wait_for`` status, an ``error`` verdict for a ``fail_on`` one, else ``waiting``."""
    message = (f"{checkpoint}: {health.status} ({health.reason}); window {health.window.committed}/"
               f"{health.window.size} batches committed")  # fmt: skip
    payload = health.to_dict()
    if health.status in criteria.wait_for:
        return Verdict(VerdictState.MET, message, payload)
    if health.status in criteria.fail_on:
        return Verdict(
            VerdictState.ERROR,
            f"{message}. The sensor fails on {', '.join(criteria.fail_on)}: see the stream-health guide "
            "for what the status means and how to recover.",
            payload,
            error=StreamUnhealthyError.__name__,
        )
    return Verdict(VerdictState.WAITING, f"{message}; waiting for {', '.join(criteria.wait_for)}", payload)
