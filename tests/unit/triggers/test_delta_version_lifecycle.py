"""DeltaVersionEventTrigger over a table's life: not there yet, created, deleted, created again, overwritten.

Real Delta tables written with delta-rs, the trigger driven as the triggerer drives it.
"""

from __future__ import annotations

import asyncio
import shutil

import pandas as pd
import pytest

from airflow_spark_streaming.triggers.events import DeltaVersionEventTrigger
from tests.support.triggerer_harness import InMemoryAssetStateStore, TriggerLoop, revive

POLL = 0.1


def write(table, ids, mode="append"):
    from deltalake import write_deltalake

    write_deltalake(str(table), pd.DataFrame({"id": list(ids)}), mode=mode)


def cursor(store: InMemoryAssetStateStore) -> dict | None:
    (value,) = store.values.values() or [None]
    return value


@pytest.fixture
def reads(monkeypatch):
    """Every read the trigger makes: ``(after, position read)``."""
    done: list[tuple[int | None, int | None]] = []
    original = DeltaVersionEventTrigger.read_after

    def recording(self, after, up_to=None):
        try:
            read = original(self, after, up_to)
        except Exception as err:
            done.append((after, type(err).__name__))
            raise
        done.append((after, read[0]))
        return read

    monkeypatch.setattr(DeltaVersionEventTrigger, "read_after", recording)
    return done


async def polls(reads: list, count: int = 2) -> None:
    """Wait until the trigger has read ``count`` more times."""
    target = len(reads) + count
    for _ in range(400):
        if len(reads) >= target:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the trigger did not poll {count} times; reads so far: {reads}")


def watch(table, store):
    trigger = DeltaVersionEventTrigger(str(table), operations=None, poll_interval=POLL)
    trigger.asset_state_store = store
    return trigger


def test_a_watcher_started_before_the_table_exists_reports_its_first_version(tmp_path, reads):
    table, store = tmp_path / "orders", InMemoryAssetStateStore()
    trigger = watch(table, store)

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await polls(reads, 3)  # nothing there: no event; the cursor waits before the first version
        assert loop.events == [] and cursor(store) == {"position": -1, "last_event": None}
        table.mkdir()  # a writer creates the folder before its first commit
        await polls(reads)
        write(table, [1, 2], mode="error")  # version 0 creates the table
        await loop.until(lambda: len(loop.events) == 1, what="version 0")
        write(table, [3])
        write(table, [4, 5, 6])
        await loop.until(lambda: len(loop.events) == 3, what="versions 1 and 2")
        await polls(reads)
        await loop.stop()
        restarted = TriggerLoop(revive(trigger, store)).start()  # nothing new: nothing repeats
        await polls(reads, 3)
        write(table, [7])
        await restarted.until(lambda: len(restarted.events) == 1, what="version 3 after the restart")
        await polls(reads)
        await restarted.stop()
        return loop.events, restarted.events

    first, second = asyncio.run(scenario())
    assert [(e["version"], e["operation"], e["rows_added"]) for e in first] == [
        (0, "WRITE", 2), (1, "WRITE", 1), (2, "WRITE", 3)
    ]  # fmt: skip
    assert [e["previous_event_version"] for e in first] == [None, 0, 1]
    assert [(e["version"], e["previous_event_version"]) for e in second] == [(3, 2)]


def test_a_watcher_started_before_the_table_exists_and_restarted_after_it_was_created_misses_nothing(tmp_path, reads):
    table, store = tmp_path / "orders", InMemoryAssetStateStore()
    trigger = watch(table, store)

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await polls(reads, 2)
        await loop.stop()
        assert cursor(store)["position"] == -1  # it began before the first commit, and remembers it
        write(table, [1])  # created while the triggerer is down
        write(table, [2, 3])
        restarted = TriggerLoop(revive(trigger, store)).start()
        await restarted.until(lambda: len(restarted.events) == 2, what="versions 0 and 1")
        await polls(reads, 3)
        await restarted.stop()
        return restarted.events

    assert [(e["version"], e["rows_added"]) for e in asyncio.run(scenario())] == [(0, 1), (1, 2)]


def test_a_watcher_started_on_an_existing_table_starts_at_its_current_version(tmp_path, reads):
    table, store = tmp_path / "orders", InMemoryAssetStateStore()
    for ids in ([1], [2], [3]):
        write(table, ids)
    trigger = watch(table, store)

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await loop.until(lambda: (cursor(store) or {}).get("position") == 2, what="the first poll")
        write(table, [4])
        await loop.until(lambda: len(loop.events) == 1, what="version 3")
        await polls(reads)
        await loop.stop()
        return loop.events

    assert [e["version"] for e in asyncio.run(scenario())] == [3]


def test_a_table_deleted_then_created_again_is_reported_from_its_first_version(tmp_path, reads):
    table, store = tmp_path / "orders", InMemoryAssetStateStore()
    for ids in ([1], [2], [3]):
        write(table, ids)
    trigger = watch(table, store)

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await loop.until(lambda: (cursor(store) or {}).get("position") == 2, what="the first poll")
        old_id = cursor(store)["identity"]
        shutil.rmtree(table)
        await polls(reads, 3)  # gone: the cursor waits
        assert loop.events == [] and cursor(store)["position"] == 2
        write(table, [10])  # a new table: version 0 again
        await loop.until(lambda: len(loop.events) == 1, what="the new table's version 0")
        write(table, [11, 12])
        await loop.until(lambda: len(loop.events) == 2, what="the new table's version 1")
        await polls(reads)
        await loop.stop()
        return loop.events, old_id, cursor(store)

    events, old_id, last = asyncio.run(scenario())
    assert [(e["version"], e["rows_added"], e["previous_event_version"]) for e in events] == [(0, 1, None), (1, 2, 0)]
    assert last["position"] == 1 and last["identity"] != old_id


def test_a_table_recreated_between_two_polls_with_more_versions_is_told_apart_by_its_id(tmp_path, reads):
    """Position alone cannot tell: the new table is already past the old cursor when the watcher looks."""
    table, store = tmp_path / "orders", InMemoryAssetStateStore()
    write(table, [1])
    write(table, [2])
    trigger = watch(table, store)

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await loop.until(lambda: (cursor(store) or {}).get("position") == 1, what="the first poll")
        await polls(reads)
        # Between two polls (nothing here yields to the event loop): deleted, then four versions of a new table.
        shutil.rmtree(table)
        for n in range(4):
            write(table, range(100 * n, 100 * n + n + 1))
        await loop.until(lambda: len(loop.events) == 4, what="the new table's four versions")
        await polls(reads)
        await loop.stop()
        # Same again while the triggerer is down: the restarted watcher tells it from the cursor's table id.
        shutil.rmtree(table)
        for n in range(6):
            write(table, [n])
        restarted = TriggerLoop(revive(trigger, store)).start()
        await restarted.until(lambda: len(restarted.events) == 6, what="the third table's six versions")
        await polls(reads)
        await restarted.stop()
        return loop.events, restarted.events

    live, after_restart = asyncio.run(scenario())
    assert [(e["version"], e["rows_added"]) for e in live] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert [e["version"] for e in after_restart] == [0, 1, 2, 3, 4, 5]
    assert after_restart[0]["previous_event_version"] == 3


def test_a_table_briefly_unreadable_or_overwritten_in_place_continues_without_replay(tmp_path, reads):
    table, store = tmp_path / "orders", InMemoryAssetStateStore()
    write(table, [1])
    write(table, [2])
    trigger = watch(table, store)

    async def scenario():
        loop = TriggerLoop(trigger).start()
        await loop.until(lambda: (cursor(store) or {}).get("position") == 1, what="the first poll")
        aside = tmp_path / "aside"
        table.rename(aside)  # the same table, out of reach for a few polls
        await polls(reads, 3)
        aside.rename(table)
        write(table, [3])
        await loop.until(lambda: len(loop.events) == 1, what="version 2")
        write(table, [4, 5], mode="overwrite")  # a new version of the same table (same id), not a new table
        await loop.until(lambda: len(loop.events) == 2, what="version 3")
        await polls(reads, 3)
        await loop.stop()
        return loop.events

    events = asyncio.run(scenario())
    assert [(e["version"], e["operation_parameters"]["mode"]) for e in events] == [(2, "Append"), (3, "Overwrite")]
