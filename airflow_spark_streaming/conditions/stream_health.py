"""A query's stream-health status from what the checkpoint and the brokers say (pure).

The **status** is judged without thresholds from the query's last batches (their
offsets and commit times), the brokers' latest offsets and the lease:
``REWOUND``, ``STOPPED``, ``STALLED``, ``LAGGING`` or ``OK``, worst first.
(A partition's time lag and retention headroom are :mod:`airflow_spark_streaming.kafka.time_lag`'s.)

Everything here is a pure function of dataclasses; ``now`` is always passed in.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_spark_streaming.conditions.statuses import (  # noqa: F401 - the vocabulary, re-exported
    DEFAULT_WINDOW,
    LAGGING,
    OK,
    REWOUND,
    STALLED,
    STATUSES,
    STOPPED,
)

SEVERITY = {status: rank for rank, status in enumerate(STATUSES)}
DEFAULT_CADENCE_FACTOR = 3.0
DEFAULT_MIN_ALLOWANCE_SECONDS = 5.0  # commit times are file mtimes: second resolution on object stores
MIN_LAG_SAMPLES = 3


@dataclass
class BatchOffsets:
    """One retained batch: its end offsets (``offsets/<id>``), commit time, and the broker's latest when planned.

    Offsets are keyed ``"topic:partition"``. ``latest_offsets`` comes from the
    batch's progress event (Kafka source ``latestOffset``); without it the
    batch gives no lag sample.
    """

    batch_id: int
    committed: bool
    commit_time: float | None
    end_offsets: dict[str, int]
    latest_offsets: dict[str, int] | None = None
    planned_time_ms: int | None = None


@dataclass
class HealthMark:
    """What an evaluation saw, kept by the caller to notice a checkpoint replaced by an older copy."""

    query_id: str
    batch_id: int | None
    offsets: dict[str, int]


@dataclass
class HealthInputs:
    """Everything a status needs, gathered by hooks.

    :param batches: the last retained batches, oldest first (at most ``window``).
    :param latest_offsets: the brokers' latest offsets now, ``"topic:partition"``.
    :param lease_alive: ``True``/``False`` when the query runs under the
        provider's runner (it keeps a lease); ``None`` when unknown.
    :param oldest_unprocessed_ms: timestamp of each lagging partition's oldest
        unprocessed record, if known: a stall is timed from it when the data
        arrived after the last commit (an idle query that just got data is not stalled).
    :param previous: the mark of the previous evaluation, if the caller kept it.
    """

    query_id: str
    batches: list[BatchOffsets]
    latest_offsets: dict[str, int]
    lease_alive: bool | None
    now: float
    window: int = DEFAULT_WINDOW
    oldest_unprocessed_ms: dict[str, int] = field(default_factory=dict)
    previous: HealthMark | None = None


@dataclass
class PartitionHealth:
    partition: str
    status: str
    reason: str
    lag: int | None
    lag_samples: list[int]


@dataclass
class WindowCompleteness:
    """How much of the window the checkpoint could fill: ``complete`` is committed batches / window size."""

    size: int
    batches: int
    committed: int
    lag_samples: int
    complete: float
    first_batch: int | None
    last_batch: int | None


@dataclass
class StreamHealth:
    """The status of one query and of each partition it reads. JSON-serialisable."""

    query_id: str
    status: str
    reason: str
    partitions: list[PartitionHealth]
    window: WindowCompleteness
    last_committed_batch: int | None
    seconds_since_last_commit: float | None
    cadence_seconds: float | None
    allowance_seconds: float | None
    lease_alive: bool | None
    mark: HealthMark
    evaluated_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamHealth:
        data = dict(data)
        data["partitions"] = [PartitionHealth(**p) for p in data["partitions"]]
        data["window"] = WindowCompleteness(**data["window"])
        data["mark"] = HealthMark(**data["mark"])
        return cls(**data)

    def status_of(self, partition: str) -> str:
        for p in self.partitions:
            if p.partition == partition:
                return p.status
        raise KeyError(partition)


def batch_cadence(batches: Sequence[BatchOffsets]) -> float | None:
    """Median seconds between consecutive commits of the window; ``None`` with fewer than two commits."""
    times = [b.commit_time for b in batches if b.committed and b.commit_time is not None]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False) if later >= earlier]
    return statistics.median(gaps) if gaps else None


def _decreases(batches: Sequence[BatchOffsets]) -> dict[str, str]:
    found = {}
    for earlier, later in zip(batches, batches[1:], strict=False):
        for name, offset in later.end_offsets.items():
            before = earlier.end_offsets.get(name)
            if before is not None and offset < before and name not in found:
                found[name] = (
                    f"offset went back from {before} to {offset} between batches {earlier.batch_id} and {later.batch_id}"
                )
        # fmt: skip
    return found


def _lag_samples(batches: Sequence[BatchOffsets], name: str, lag_now: int | None) -> list[int]:
    samples = [
        b.latest_offsets[name] - b.end_offsets[name]
        for b in batches
        if b.committed and b.latest_offsets and name in b.latest_offsets and name in b.end_offsets
    ]
    return samples + ([lag_now] if lag_now is not None else [])


def grew_across(samples: Sequence[int]) -> bool:
    """Lag stayed above zero in every sample, never fell, and ended above where it began.

    A caught-up sample anywhere breaks it: the query kept up at that point, and
    later lag is judged by the stall rule, which looks at the end of the window.
    """
    if len(samples) < MIN_LAG_SAMPLES or min(samples) <= 0:
        return False
    steps = zip(samples, samples[1:], strict=False)
    return all(later >= earlier for earlier, later in steps) and samples[-1] > samples[0]


def evaluate_stream_health(
    inputs: HealthInputs,
    *,
    cadence_factor: float = DEFAULT_CADENCE_FACTOR,
    min_allowance_seconds: float = DEFAULT_MIN_ALLOWANCE_SECONDS,
) -> StreamHealth:
    """Judge the query and each partition (pure). See ``docs/stream-health.md`` for the rules."""
    now = inputs.now
    batches = sorted(inputs.batches, key=lambda b: b.batch_id)[-inputs.window :] if inputs.window > 0 else []
    committed = [b for b in batches if b.committed]
    last = committed[-1] if committed else None
    last_commit = max((b.commit_time for b in committed if b.commit_time is not None), default=None)
    since_commit = max(0.0, now - last_commit) if last_commit is not None else None
    cadence = batch_cadence(batches)
    allowance = max(cadence_factor * cadence, min_allowance_seconds) if cadence is not None else None
    offsets = dict(last.end_offsets) if last else {}
    names = sorted(set(offsets) | set(inputs.latest_offsets))

    rewinds = _decreases(batches)
    previous = inputs.previous
    if previous is not None:
        for name, before in previous.offsets.items():
            if name in offsets and offsets[name] < before and name not in rewinds:
                rewinds[name] = f"offset {offsets[name]} is below {before}, seen before: the checkpoint was replaced"
    batch_rewound = (
        previous is not None and previous.query_id == inputs.query_id and previous.batch_id is not None
        and (last.batch_id if last else -1) < previous.batch_id
    )  # fmt: skip

    partitions = []
    for name in names:
        latest, position = inputs.latest_offsets.get(name), offsets.get(name)
        lag = None if latest is None else max(0, latest - (position or 0))
        if latest is not None and position is not None and position > latest and name not in rewinds:
            rewinds[name] = f"checkpoint offset {position} is beyond the broker's latest {latest}: the topic was reset"
        samples = _lag_samples(batches, name, lag)
        stall_start = last_commit
        arrived = inputs.oldest_unprocessed_ms.get(name)
        if arrived is not None and stall_start is not None:
            stall_start = max(stall_start, arrived / 1000.0)
        stalled_for = now - stall_start if stall_start is not None else None
        if name in rewinds:
            status, reason = REWOUND, rewinds[name]
        elif lag and allowance is not None and stalled_for is not None and stalled_for > allowance:
            status, reason = STALLED, f"lag {lag:,} and no commit for {stalled_for:.0f}s (allowance {allowance:.0f}s)"
        elif grew_across(samples):
            status, reason = LAGGING, f"lag grew across the window: {samples}"
        else:
            status, reason = OK, f"lag {lag:,}" if lag is not None else "not on the brokers"
        partitions.append(PartitionHealth(name, status, reason, lag, samples))

    total_lag = sum(p.lag or 0 for p in partitions)
    recent = since_commit is not None and allowance is not None and since_commit <= allowance
    worst = max(partitions, key=lambda p: SEVERITY[p.status], default=None)
    if batch_rewound or (worst and worst.status == REWOUND):
        status = REWOUND
        reason = (f"batch {last.batch_id if last else None} is below batch {previous.batch_id}, seen before: "
                  "the checkpoint was replaced by an older copy") if batch_rewound else f"{worst.partition}: {worst.reason}"  # fmt: skip
    elif inputs.lease_alive is False and not recent:
        status = STOPPED
        reason = "no live lease and " + (
            f"no commit for {since_commit:.0f}s (allowance {allowance:.0f}s)" if since_commit is not None and allowance
            else "no commit recent enough to judge" if since_commit is not None else "no commit at all"
        )  # fmt: skip
        for p in partitions:
            p.status, p.reason = STOPPED, "the query is stopped"
    elif worst and worst.status in (STALLED, LAGGING):
        status, reason = worst.status, f"{worst.partition}: {worst.reason}"
    elif total_lag == 0 and inputs.lease_alive:
        status, reason = OK, "caught up, lease alive (idle is healthy)"
    elif total_lag and allowance is None and inputs.lease_alive is not False:
        status, reason = OK, f"lag {total_lag:,}; too few commits in the window to know the cadence"
    else:
        status, reason = (
            OK,
            f"lag {total_lag:,}" + ("" if inputs.lease_alive is not None else "; liveness unknown (no lease)"),
        )

    lagged = [len(p.lag_samples) for p in partitions]
    return StreamHealth(
        query_id=inputs.query_id,
        status=status,
        reason=reason,
        partitions=partitions,
        window=WindowCompleteness(
            size=inputs.window,
            batches=len(batches),
            committed=len(committed),
            lag_samples=min(lagged, default=0),
            complete=round(len(committed) / inputs.window, 3) if inputs.window > 0 else 0.0,
            first_batch=batches[0].batch_id if batches else None,
            last_batch=batches[-1].batch_id if batches else None,
        ),
        last_committed_batch=last.batch_id if last else None,
        seconds_since_last_commit=since_commit,
        cadence_seconds=cadence,
        allowance_seconds=allowance,
        lease_alive=inputs.lease_alive,
        mark=_mark(inputs, last, offsets),
        evaluated_at=now,
    )


def _mark(inputs: HealthInputs, last: BatchOffsets | None, offsets: dict[str, int]) -> HealthMark:
    """What this evaluation saw. After a rewind it is the rewound position: REWOUND shows once per replacement."""
    return HealthMark(inputs.query_id, last.batch_id if last else None, offsets)


def worst_status(statuses: Iterable[str]) -> str:
    return max(statuses, key=SEVERITY.__getitem__, default=OK)


_MOVED_TO_KAFKA_TIME_LAG = frozenset(
    {"PartitionLagLike", "PartitionTimeLag", "TimeLagReport", "time_lag_seconds", "headroom_seconds", "assess_time_lag"}
)


def __getattr__(name: str):
    # Time lag moved to kafka.time_lag in 0.2; the old names resolve here for one release.
    if name not in _MOVED_TO_KAFKA_TIME_LAG:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from airflow_spark_streaming.kafka import time_lag
    from airflow_spark_streaming.utils.moved_modules import moved_module_warning

    moved_module_warning(f"{__name__}.{name}", f"{time_lag.__name__}.{name}")
    return getattr(time_lag, name)
