"""What a submission is and what state its driver is in: plain data, shared by the hook, its backends and operators."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class DriverState(StrEnum):
    """A driver's state, in one vocabulary for every cluster manager.

    Standalone Master and YARN states keep their names; Kubernetes pod phases
    map to the same words in upper case. ``EXITED`` is a detached client-mode
    driver whose process ended: its exit status is not known, so it is not a
    success (bounded runs are never detached). ``UNRECOGNISED`` is a state this
    provider does not know; it counts as ended, so nothing waits on it forever.
    """

    SUBMITTED = "SUBMITTED"
    NEW = "NEW"
    NEW_SAVING = "NEW_SAVING"
    ACCEPTED = "ACCEPTED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RELAUNCHING = "RELAUNCHING"
    UNKNOWN = "UNKNOWN"  # the standalone Master lost touch with the driver's worker; it may come back
    FINISHED = "FINISHED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ERROR = "ERROR"
    EXITED = "EXITED"
    NOT_FOUND = "NOT_FOUND"  # the cluster manager no longer knows the driver
    ON_OTHER_HOST = "ON_OTHER_HOST"  # a client-mode driver on a host this worker cannot see
    UNRECOGNISED = "UNRECOGNISED"

    @classmethod
    def parse(cls, raw: str) -> DriverState:
        try:
            return cls(raw.upper())
        except ValueError:
            return cls.UNRECOGNISED

    @property
    def is_active(self) -> bool:
        """The driver is alive, or its cluster manager is still placing it."""
        return self in ACTIVE_STATES

    @property
    def is_success(self) -> bool:
        """The driver exited cleanly, as its cluster manager reports it."""
        return self in SUCCEEDED_STATES


ACTIVE_STATES = frozenset(
    {
        DriverState.SUBMITTED, DriverState.NEW, DriverState.NEW_SAVING, DriverState.ACCEPTED, DriverState.PENDING,
        DriverState.RUNNING, DriverState.RELAUNCHING, DriverState.UNKNOWN,
    }
)  # fmt: skip
SUCCEEDED_STATES = frozenset({DriverState.FINISHED, DriverState.SUCCEEDED})


@dataclass(frozen=True)
class SparkSubmission:
    """One submitted driver: where it runs and how to reach it. JSON-serialisable (``to_dict`` for XCom).

    ``submission_id`` is what the cluster manager calls it: a standalone driver
    id, a YARN application id, ``namespace:pod`` on Kubernetes, or ``host:pid``
    of the detached spark-submit process in client mode. ``tag`` is a random id
    that the stream runner writes into the checkpoint's lease, so a lease can be
    matched to the submission that started it. ``pid_start`` is the detached
    process's start time (clock ticks after boot): a kill by pid checks it, so a
    reused pid is never signalled.
    """

    deployment: str  # "client", "standalone", "yarn" or "kubernetes": the backend's name
    submission_id: str
    tag: str
    conn_id: str
    master: str
    submitted_at: float
    host: str | None = None
    pid: int | None = None
    driver_log: str | None = None
    committed_before: int = -1
    owner: str | None = None
    pid_start: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SparkSubmission:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class SparkJob:
    """What to run: an application, its arguments, and what must stay off the command line.

    ``spec`` (the stream runner's spec) reaches the driver as a private file,
    and ``secret_conf`` (Spark settings holding credentials) heads the private
    properties file that carries every Spark setting of the submission; both are
    0600 and removed once the driver has read them.
    """

    application: str
    application_args: Sequence[str] = ()
    spec: Mapping[str, Any] | None = field(default=None, repr=False)
    secret_conf: Mapping[str, str] = field(default_factory=dict, repr=False)
    label: str = "job"  # names a detached driver's private folder


@dataclass(frozen=True)
class SubmissionRequest:
    """What a run asks of its backend before anything is resolved, staged or submitted.

    A backend's ``review`` refuses what it cannot keep safe and adjusts the rest (see
    :meth:`~airflow_spark_streaming.spark.submission.backends.base.SubmissionBackend.review`).
    """

    who: str  # the task, named in a refusal
    secret_keys: tuple[str, ...] = ()  # Spark settings holding credentials (names only)
    jvm_resolver: str | None = None  # None: ``[spark_streaming] jvm_resolver``
