"""Clock skew between lease holders, takers and the store, with every clock injected (no sleeping).

The lease compares a heartbeat written with the holder's wall clock against a
reader's wall clock, bounded by the store's modification time (S3's
Last-Modified, whole seconds). The rule under test (docs/security.md):

* within the bound (the skew between holder and reader, or the store lagging
  more than ``MAX_CLOCK_SKEW_MS`` behind, stays under 2/3 of the TTL minus the
  renewal's lateness), a live holder is never judged stale, so never stolen from;
* a dead holder's lease is free at most ``TTL + MAX_CLOCK_SKEW_MS`` after its
  last write, however far ahead its clock ran;
* beyond the bound a taker may take a live lease; the holder then finds the
  newer generation at its next renewal and stops, writing nothing more.
"""

from __future__ import annotations

import math
import os

import pytest

from airflow_spark_streaming.runner import lease as L

TTL_S = 30.0
SKEW_S = L.MAX_CLOCK_SKEW_MS / 1000
T0 = 1_800_000_000.5  # half a second past a whole one: the store's whole-second stamps lag by 0.5 s


class World:
    """True time, and each party's clocks as offsets from it."""

    def __init__(self) -> None:
        self.now = T0

    def wall(self, offset: float):
        return lambda: self.now + offset

    def monotonic(self):
        return lambda: self.now  # a process's own elapsed time does not depend on its wall clock's setting


class StampedStore(L.LocalLeaseStore):
    """The local store whose modification times come from the store's clock, in whole seconds like S3's."""

    def __init__(self, root: str, clock) -> None:
        super().__init__(root)
        self.clock = clock

    def _stamp(self, name: str) -> None:
        stamp = math.floor(self.clock())
        os.utime(self._path(name), (stamp, stamp))

    def create_exclusive(self, name: str, data: bytes) -> bool:
        created = super().create_exclusive(name, data)
        if created:
            self._stamp(name)
        return created

    def overwrite(self, name: str, data: bytes) -> None:
        super().overwrite(name, data)
        self._stamp(name)


def _holder(world: World, store, offset: float) -> L.RunnerLease:
    holder = L.RunnerLease(store, ttl_ms=int(TTL_S * 1000), clock=world.wall(offset), monotonic=world.monotonic())
    assert holder.acquire().generation == 1
    return holder


def _take(world: World, store, offset: float = 0.0) -> int | None:
    """A fresh taker (a new runner: nothing seen before) with its own clock; the generation it took, or None."""
    taker = L.RunnerLease(store, ttl_ms=int(TTL_S * 1000), clock=world.wall(offset), monotonic=world.monotonic())
    try:
        return taker.acquire(attempts=1).generation
    except L.CheckpointInUse:
        return None


@pytest.mark.parametrize("store_offset", [-SKEW_S - 10, -SKEW_S, 0.0, SKEW_S, 600.0])
@pytest.mark.parametrize("holder_offset", [-15.0, -SKEW_S, 0.0, SKEW_S, 3_600.0])
def test_within_the_bound_a_live_holder_is_never_stolen_from(tmp_path, holder_offset, store_offset):
    """Holder and store clocks off the taker's by up to 15 s (TTL 30 s: the bound is 20 s less lateness)."""
    world = World()
    store = StampedStore(str(tmp_path), world.wall(store_offset))
    holder = _holder(world, store, holder_offset)
    for _ in range(4):
        world.now += TTL_S / 3 + 1  # the renew thread's interval, and a second late
        assert _take(world, store) is None  # the taker's clock is the reference
        assert _take(world, store, offset=-SKEW_S) is None
        assert L.read_lease_state(store, now=world.now).held  # the Airflow side's reading, same rule
        holder.renew_once()  # still its own: no newer generation appeared
    assert holder.confirm() and L.generations(store.list_names(L.LEASE_DIR)) == [1]


@pytest.mark.parametrize("holder_offset", [-SKEW_S, 0.0, SKEW_S - 1, 3_600.0, 10**7])
def test_a_dead_holder_is_free_within_ttl_plus_the_skew_bound_however_far_ahead_its_clock(tmp_path, holder_offset):
    """The heartbeat is never believed beyond the store's modification time plus MAX_CLOCK_SKEW_MS."""
    world = World()
    store = StampedStore(str(tmp_path), world.wall(0.0))
    _holder(world, store, holder_offset)  # ... and then it dies: no renewal, no release
    world.now += TTL_S - SKEW_S - 1
    assert _take(world, store) is None  # held for its TTL (less a clock behind), never shorter than this
    world.now = T0 + TTL_S + SKEW_S + 1
    assert _take(world, store) == 2


def test_a_heartbeat_an_hour_ahead_counts_from_the_stores_time_plus_the_bound(tmp_path):
    """A holder an hour ahead keeps a live lease by renewing, but each write buys only TTL + 5 s of store time."""
    world = World()
    store = StampedStore(str(tmp_path), world.wall(0.0))
    holder = _holder(world, store, 3_600.0)
    state = L.read_lease_state(store, now=world.now)
    assert state.held and state.heartbeat_age_ms == 0  # an hour ahead reads as "just now", not "in an hour"
    world.now += TTL_S / 3
    holder.renew_once()
    renewed = world.now
    world.now = renewed + TTL_S  # a renewal missed twice over: the heartbeat is still believed up to store time + 5 s
    assert L.read_lease_state(store, now=world.now).held
    world.now = renewed + TTL_S + SKEW_S + 1
    assert not L.read_lease_state(store, now=world.now).held  # not an hour later


@pytest.mark.parametrize(
    ("holder_offset", "store_offset"),
    [(-25.0, 0.0), (0.0, -SKEW_S - 25)],
    ids=["holder-clock-25s-behind", "store-clock-30s-behind"],
)
def test_beyond_the_bound_the_holder_loses_at_its_next_renewal_and_writes_nothing_more(
    tmp_path, holder_offset, store_offset
):
    world = World()
    store = StampedStore(str(tmp_path), world.wall(store_offset))
    lost = []
    holder = L.RunnerLease(store, ttl_ms=int(TTL_S * 1000), clock=world.wall(holder_offset),
                           monotonic=world.monotonic(), on_lost=lost.append)  # fmt: skip
    holder.acquire()
    world.now += TTL_S / 3  # renewing on time, but its heartbeat reads 25 s older to the taker
    assert _take(world, store) == 2  # skew beyond the bound: the live lease is taken
    taken = store.read(L.generation_name(2), L.MAX_RECORD_BYTES)[0]
    with pytest.raises(L.LeaseLost, match="generation 2 > 1"):
        holder.renew_once()  # the holder's next renewal, at most TTL/3 later: it gives up
    assert not holder.confirm() and "generation 2 > 1" in lost[0]
    holder.release()
    assert store.read(L.generation_name(2), L.MAX_RECORD_BYTES)[0] == taken  # the new owner's file untouched
    assert L.generations(store.list_names(L.LEASE_DIR)) == [2]


def test_the_holders_own_loss_of_the_lease_uses_its_monotonic_clock_not_its_wall_clock(tmp_path):
    """A wall clock stepped by an hour (NTP) neither loses nor extends the holder's own lease."""
    world = World()
    store = StampedStore(str(tmp_path), world.wall(0.0))
    wall_offset = [0.0]
    holder = L.RunnerLease(store, ttl_ms=int(TTL_S * 1000), clock=lambda: world.now + wall_offset[0],
                           monotonic=world.monotonic())  # fmt: skip
    holder.acquire()
    wall_offset[0] = -3_600.0  # stepped back an hour
    world.now += TTL_S / 3
    assert holder._silence_reason() is None and holder.confirm()
    holder.renew_once()
    wall_offset[0] = 3_600.0
    world.now += TTL_S  # now truly silent for a whole TTL: lost, whatever the wall clock says
    assert "not renewed for" in (holder._silence_reason() or "")
