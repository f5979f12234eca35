"""The outcome of one check by a sensor: shared by its poke and its trigger, so both decide alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from airflow_spark_streaming import exceptions


class VerdictState(StrEnum):
    MET = "met"
    WAITING = "waiting"
    STALE = "stale"  # no progress for too long
    ALERT = "alert"  # over a ceiling for too long
    ERROR = "error"


def _error_classes() -> dict[str, type[exceptions.SparkStreamingError]]:
    """Every project error, keyed by its code: the class name, which is public API and so stable."""
    found, pending = {}, [exceptions.SparkStreamingError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def error_code(err: Exception) -> str:
    """The code a verdict carries for ``err``; project errors keep their own, others fall back to the base."""
    if isinstance(err, exceptions.SparkStreamingError):
        return type(err).__name__
    return exceptions.SparkStreamingError.__name__


def error_class(code: str | None) -> type[exceptions.SparkStreamingError]:
    """The project error for ``code``; an unknown code (an older or foreign event) gives the base class."""
    return _error_classes().get(code or "", exceptions.SparkStreamingError)


@dataclass
class Verdict:
    """``met``, ``waiting``, ``stale``, ``alert`` or ``error`` (see :class:`VerdictState`).

    ``payload`` is what the sensor pushes to XCom (a status or report as a
    dict); ``error`` is the code of an ``error`` verdict's project error
    (:func:`error_code`), so a trigger event can be raised again as the same
    error in the worker.
    """

    state: VerdictState
    message: str
    payload: dict[str, Any] | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        self.state = VerdictState(self.state)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state.value}

    @classmethod
    def from_error(cls, err: Exception) -> Verdict:
        return cls(VerdictState.ERROR, str(err), error=error_code(err))

    def raise_for_state(self) -> None:
        """Raise the project error of ``stale``, ``alert`` and ``error`` verdicts."""
        if self.state == VerdictState.STALE:
            raise exceptions.StreamStaleError(self.message)
        if self.state == VerdictState.ALERT:
            raise exceptions.KafkaLagCeilingError(self.message)
        if self.state == VerdictState.ERROR:
            raise error_class(self.error)(self.message)
