"""The outcome of one check by a sensor: shared by its poke and its trigger, so both decide alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MET, WAITING, STALE, ALERT, ERROR = "met", "waiting", "stale", "alert", "error"


@dataclass
class Verdict:
    """``met``, ``waiting``, ``stale`` (no progress for too long), ``alert`` (over a ceiling for too long) or ``error``.

    ``payload`` is what the sensor pushes to XCom (a status or report as a
    dict); ``error`` names the project error class of an ``error`` verdict,
    so a trigger event can be raised again as the same error in the worker.
    """

    state: str
    message: str
    payload: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_error(cls, err: Exception) -> Verdict:
        return cls(ERROR, str(err), error=type(err).__name__)

    def raise_for_state(self) -> None:
        """Raise the named project error for ``stale``, ``alert`` and ``error`` verdicts."""
        from airflow_spark_streaming import exceptions

        if self.state == STALE:
            raise exceptions.StreamStaleError(self.message)
        if self.state == ALERT:
            raise exceptions.KafkaLagCeilingError(self.message)
        if self.state == ERROR:
            error_class = getattr(exceptions, self.error or "", None)
            if not (isinstance(error_class, type) and issubclass(error_class, exceptions.SparkStreamingError)):
                error_class = exceptions.SparkStreamingError
            raise error_class(self.message)
