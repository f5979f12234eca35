"""The checkpoint lease's logic through the local store, with faults injected into the store (no JVM)."""

from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest

from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.runner import lease as L
from tests.support.lease_race import race_two_takers

NOW_MS = 1_800_000_000_000


class FaultyStore:
    """The local store with injected faults: failing writes, and random jitter to widen races."""

    def __init__(self, inner: L.LocalLeaseStore, jitter: float = 0.0):
        self.inner, self.jitter = inner, jitter
        self.failing_overwrites = 0  # the next n rewrites raise
        self.always_fail = False
        self.overwrites = 0
        self.lock = threading.Lock()

    def _pause(self) -> None:
        if self.jitter:
            time.sleep(random.uniform(0, self.jitter))

    def list_names(self, folder):
        self._pause()
        return self.inner.list_names(folder)

    def read(self, name, limit):
        self._pause()
        return self.inner.read(name, limit)

    def create_exclusive(self, name, data):
        self._pause()
        return self.inner.create_exclusive(name, data)

    def overwrite(self, name, data):
        with self.lock:
            if self.always_fail or self.failing_overwrites > 0:
                self.failing_overwrites -= 1
                raise L.LeaseStoreError("injected: the store is unreachable")
            self.overwrites += 1
        self.inner.overwrite(name, data)

    def delete(self, name):
        self.inner.delete(name)


def _record(**fields) -> bytes:
    body = {"owner": "other", "heartbeat_ms": NOW_MS, "ttl_ms": 30_000, "host": "h", "pid": 7, "app_id": "app-1"}
    return json.dumps({**body, **fields}).encode()


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.mark.parametrize("stale_predecessor", [False, True])
def test_two_takers_at_the_same_moment_exactly_one_wins(tmp_path, stale_predecessor):
    for trial in range(200):
        store = FaultyStore(L.LocalLeaseStore(str(tmp_path / f"ckpt-{trial}")), jitter=0.002)
        if stale_predecessor:  # a dead driver's lease, to be taken over by one of the two
            store.create_exclusive(L.generation_name(4), _record(heartbeat_ms=int(time.time() * 1000) - 60_000))
        outcomes = race_two_takers(store)
        winners = [g for g in outcomes if g is not None]
        assert len(winners) == 1, f"trial {trial}: {outcomes}"
        assert winners[0] == (5 if stale_predecessor else 1)
        assert L.generations(store.list_names(L.LEASE_DIR)) == winners  # the stale generation was pruned


def test_renewal_failures_are_retried_within_the_ttl(tmp_path):
    store = FaultyStore(L.LocalLeaseStore(str(tmp_path)))
    lost = []
    runner = L.RunnerLease(store, ttl_ms=3_000, on_lost=lost.append)
    runner.acquire()
    store.failing_overwrites = 3  # about 0.2 + 0.4 + 0.8 s of retries, well inside 3 s
    runner.start_renewing()
    _wait_for(lambda: store.overwrites >= 2)
    runner.release()
    assert store.failing_overwrites <= 0 and not lost and not runner.lost.is_set()


def test_renewal_failing_for_a_whole_ttl_loses_the_lease(tmp_path):
    store = FaultyStore(L.LocalLeaseStore(str(tmp_path)))
    lost = []
    runner = L.RunnerLease(store, ttl_ms=1_000, on_lost=lost.append)
    runner.acquire()
    store.always_fail = True
    runner.start_renewing()
    assert runner.lost.wait(10)
    assert len(lost) == 1 and "could not be renewed within its TTL" in lost[0] and "injected" in lost[0]
    runner._thread.join(5)
    assert not runner._thread.is_alive()  # the heartbeat is over: nothing writes the lease again
    store.always_fail = False
    runner.release()
    assert store.overwrites == 0


def test_a_torn_lease_is_held_for_a_ttl_from_when_it_was_first_seen():
    torn = b'{"owner": "x", "heartbeat_'
    held = L.judge(torn, 3, now_ms=NOW_MS, first_seen_ms=NOW_MS, fallback_ttl_ms=10_000)
    assert held.held and held.reason == "unreadable" and held.record is None
    assert L.judge(torn, 3, now_ms=NOW_MS + 9_999, first_seen_ms=NOW_MS, fallback_ttl_ms=10_000).held
    assert not L.judge(torn, 3, now_ms=NOW_MS + 10_000, first_seen_ms=NOW_MS, fallback_ttl_ms=10_000).held
    # A reader seeing it for the first time is bounded by when the store says it was written.
    written_long_ago = NOW_MS - 10_000 - L.MAX_CLOCK_SKEW_MS
    assert not L.judge(torn, 3, now_ms=NOW_MS, written_ms=written_long_ago, fallback_ttl_ms=10_000).held
    for garbage in (b"", b"\xff\xfe", b"[1, 2]", b'{"heartbeat_ms": "soon", "ttl_ms": 5}', b"x" * 70_000):
        assert L.judge(garbage, 3, now_ms=NOW_MS, fallback_ttl_ms=10_000).reason == "unreadable"


def test_a_runner_waits_out_a_torn_lease_then_takes_over(tmp_path):
    store = L.LocalLeaseStore(str(tmp_path))
    store.create_exclusive(L.generation_name(1), b'{"owner": "dying", "heartbe')
    runner = L.RunnerLease(store, ttl_ms=1_000)
    started = time.monotonic()
    assert runner.acquire().generation == 2
    assert time.monotonic() - started >= 0.9  # held for its TTL since first seen, not taken for free


def test_a_heartbeat_from_the_future_cannot_keep_a_dead_lease_alive(tmp_path):
    future = _record(heartbeat_ms=NOW_MS + 10**9)
    assert L.judge(future, 1, now_ms=NOW_MS).held  # just seen: treated as now + the skew bound
    later = NOW_MS + L.MAX_CLOCK_SKEW_MS + 30_000
    assert not L.judge(future, 1, now_ms=later, first_seen_ms=NOW_MS).held
    assert not L.judge(future, 1, now_ms=NOW_MS, written_ms=NOW_MS - L.MAX_CLOCK_SKEW_MS - 30_000).held

    # The Airflow side: a lease file written a minute ago whose heartbeat says next year.
    (tmp_path / "_lease").write_bytes(_record(heartbeat_ms=int(time.time() * 1000) + 365 * 86_400_000))
    a_minute_ago = time.time() - 60
    os.utime(tmp_path / "_lease", (a_minute_ago, a_minute_ago))
    assert RunnerControlHook(str(tmp_path)).get_lease() is None


def test_a_huge_ttl_is_clamped(tmp_path):
    huge = _record(heartbeat_ms=NOW_MS - 2 * 3_600_000, ttl_ms=10**15)
    state = L.judge(huge, 1, now_ms=NOW_MS)
    assert not state.held and state.ttl_ms == L.MAX_TTL_MS
    assert L.judge(_record(ttl_ms=10**15), 1, now_ms=NOW_MS + 3_599_000).held  # within the clamped hour

    (tmp_path / "_lease").write_bytes(_record(heartbeat_ms=int(time.time() * 1000) - 2 * 3_600_000, ttl_ms=10**15))
    assert RunnerControlHook(str(tmp_path)).get_lease() is None


def test_release_joins_the_heartbeat_and_marks_only_its_own_generation(tmp_path):
    store = L.LocalLeaseStore(str(tmp_path))
    runner = L.RunnerLease(store, ttl_ms=1_000, identity={"app_id": "app-a", "host": "h", "pid": 1})
    runner.acquire()
    runner.start_renewing()
    lease = RunnerControlHook(str(tmp_path)).get_lease()
    assert lease is not None and lease.app_id == "app-a" and lease.ttl_seconds == 1
    runner.release()
    assert not runner._thread.is_alive()  # joined: no ghost heartbeat can follow the release
    state = L.read_lease_state(store)
    assert not state.held and state.reason == "released" and state.generation == 1
    assert RunnerControlHook(str(tmp_path)).get_lease() is None

    # A runner whose lease was taken over releases nothing of the new owner's.
    first = L.RunnerLease(store, ttl_ms=1_000)
    first.acquire()
    newer = _record(owner="newer", heartbeat_ms=int(time.time() * 1000))
    assert store.create_exclusive(L.generation_name(first.generation + 1), newer)
    first.release()
    assert store.read(L.generation_name(first.generation or 3), L.MAX_RECORD_BYTES)[0] == newer
    assert L.read_lease_state(store).held


def test_a_paused_owner_resuming_after_a_takeover_stops_and_clobbers_nothing(tmp_path):
    store = L.LocalLeaseStore(str(tmp_path))
    lost = []
    paused = L.RunnerLease(store, ttl_ms=1_000, on_lost=lost.append)
    paused.acquire()  # ... and then its JVM stops for longer than the TTL: no renewal happens

    later = L.RunnerLease(store, ttl_ms=1_000, clock=lambda: time.time() + 5)  # its clock reads 5 s on
    assert later.acquire().generation == 2
    taken = store.read(L.generation_name(2), L.MAX_RECORD_BYTES)[0]

    with pytest.raises(L.LeaseLost, match="generation 2 > 1"):
        paused.renew_once()
    assert not paused.confirm() and "generation 2 > 1" in lost[0]  # checked now, from the runner's own thread
    paused.start_renewing()
    paused._thread.join(5)  # the heartbeat thread sees the loss and ends without writing
    assert not paused._thread.is_alive() and lost == [paused.lost_reason]
    paused.release()
    assert store.read(L.generation_name(2), L.MAX_RECORD_BYTES)[0] == taken  # the new owner's file is intact
    assert L.generations(store.list_names(L.LEASE_DIR)) == [2]  # the paused owner's file was pruned on takeover


def test_a_pause_longer_than_the_ttl_loses_the_lease_even_without_a_taker(tmp_path):
    store = L.LocalLeaseStore(str(tmp_path))
    lost = []
    runner = L.RunnerLease(store, ttl_ms=1_000, on_lost=lost.append)
    runner.acquire()
    assert runner.confirm()
    written = store.read(L.generation_name(1), L.MAX_RECORD_BYTES)[0]
    runner._last_renewed -= 2  # the pause, as the process's own monotonic clock saw it
    runner.start_renewing()
    assert runner.lost.wait(5) and "was the process paused?" in lost[0] and not runner.confirm()
    runner.release()
    assert store.read(L.generation_name(1), L.MAX_RECORD_BYTES)[0] == written  # nothing written after the loss


def test_a_live_legacy_lease_still_refuses_a_start(tmp_path):
    store = L.LocalLeaseStore(str(tmp_path))
    (tmp_path / "_lease").write_bytes(_record(heartbeat_ms=int(time.time() * 1000)))
    with pytest.raises(L.CheckpointInUse, match="app-1"):
        L.RunnerLease(store, ttl_ms=1_000).acquire()


def test_the_local_store_refuses_special_files_and_caps_reads(tmp_path):
    store = L.LocalLeaseStore(str(tmp_path))
    os.makedirs(tmp_path / "_leases")
    os.mkfifo(tmp_path / "_leases" / L.generation_name(1).split("/")[1])
    with pytest.raises(L.LeaseStoreError, match="not a regular file"):
        store.read(L.generation_name(1), 10)
    assert store.create_exclusive("_leases/big", b"x" * 100)
    assert len(store.read("_leases/big", 10)[0]) == 11  # limit + 1: the caller knows it was cut
    assert not store.create_exclusive("_leases/big", b"other")
    assert [n for n in store.list_names("_leases") if n.endswith(".tmp")] == []


# --- planted files (the lake is untrusted input) ---


def _plant(root, name: str, body: bytes | None = None) -> None:
    folder = root / "_leases"
    folder.mkdir(parents=True, exist_ok=True)
    stale = {"owner": "planted", "heartbeat_ms": 1, "ttl_ms": 1000, "released": False}
    (folder / name).write_bytes(json.dumps(stale).encode() if body is None else body)


@pytest.mark.parametrize(
    "name",
    [
        "99999999999999999999",
        "100000000000000000000",
        "²",
        "٣",
        "0000000000000000000١",
        "1",
        "lease",
        "00000000000000000001x",
    ],
)
def test_a_planted_name_that_is_no_canonical_generation_holds_the_lease(tmp_path, name):
    _plant(tmp_path, name)
    store = L.LocalLeaseStore(str(tmp_path))
    state = L.read_lease_state(store)
    assert state.held and state.reason == "foreign" and name in state.foreign
    with pytest.raises(L.CheckpointInUse, match="that no runner wrote"):
        L.RunnerLease(store, ttl_ms=1_000).acquire(attempts=3, poll=0.01)
    assert sorted(p.name for p in (tmp_path / "_leases").iterdir()) == [name]  # nothing taken, nothing pruned


def test_the_largest_generation_is_refused_not_wrapped_into_an_unlistable_name(tmp_path):
    _plant(tmp_path, L.generation_name(L.MAX_GENERATION).rsplit("/", 1)[1])
    with pytest.raises(L.CheckpointInUse, match="exhausted"):
        L.RunnerLease(L.LocalLeaseStore(str(tmp_path)), ttl_ms=1_000).acquire()


def test_a_planted_name_during_a_hold_makes_the_holder_give_up_not_share(tmp_path):
    store = L.LocalLeaseStore(str(tmp_path))
    holder = L.RunnerLease(store, ttl_ms=5_000)
    holder.acquire()
    _plant(tmp_path, "99999999999999999999")
    with pytest.raises(L.LeaseLost, match="99999999999999999999"):
        holder.renew_once()
    with pytest.raises(L.CheckpointInUse):
        L.RunnerLease(store, ttl_ms=5_000).acquire(attempts=2, poll=0.01)


def test_store_temporaries_do_not_hold_the_lease(tmp_path):
    _plant(tmp_path, ".00000000000000000001.3f2a.tmp", b"torn")
    store = L.LocalLeaseStore(str(tmp_path))
    assert not L.read_lease_state(store).held
    assert L.RunnerLease(store, ttl_ms=1_000).acquire().generation == 1


@pytest.mark.parametrize(
    "body",
    [b"[" * 60_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000, b'{"heartbeat_ms": ' + b"9" * 5_000 + b', "ttl_ms": 1}',
     b'{"heartbeat_ms": 1e999999, "ttl_ms": NaN}', b"\xff\xfe"],
)  # fmt: skip
def test_a_hostile_record_reads_as_unreadable_never_as_a_crash(tmp_path, body):
    _plant(tmp_path, L.generation_name(3).rsplit("/", 1)[1], body)
    state = L.read_lease_state(L.LocalLeaseStore(str(tmp_path)))
    assert state.reason == "unreadable" and state.held and state.record is None
    assert L.judge(body, 3, now_ms=NOW_MS, written_ms=NOW_MS - 3_600_000).reason == "unreadable-stale"
