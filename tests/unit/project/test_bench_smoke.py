"""Benchmarks run in smoke mode: they work and report; nothing here is about time."""

from __future__ import annotations

import json

from bench import __main__ as bench_main
from bench import checkpoint_status
from bench.common import RESULTS


def test_checkpoint_status_reads_the_same_files_however_many_batches(capsys):
    assert bench_main.main(["--smoke", "checkpoint_status"]) == 0
    assert "CheckpointHook.get_status() vs retained batches" in capsys.readouterr().out
    result = json.loads((RESULTS / "checkpoint_status.smoke.json").read_text())
    rows = result["rows"]
    assert [r["retained_batches"] for r in rows] == list(checkpoint_status.SMOKE_SIZES)
    # One listing per log folder and the same few files, at 10 and at 100 batches.
    assert len({json.dumps(r["calls"], sort_keys=True) for r in rows}) == 1
    # metadata, offsets N and N-1 (Spark reads both on restart), commits N, and the source's head: all bounded opens.
    assert rows[0]["calls"]["ls"] == 4 and rows[0]["calls"]["open"] == 5
    assert result["machine"]["cpus"] >= 1


def test_import_cost_benchmark_reports_both_paths_and_no_heavy_module():
    from bench import import_cost

    rows = import_cost.run(smoke=True)
    assert [r["path"] for r in rows] == ["dag-parse path", "every Airflow-side module"]
    assert all(r["heavy_modules_loaded"] == "none" for r in rows)
    assert rows[1]["modules"] == len(import_cost.provider_modules()) > rows[0]["modules"]
    # The provider's own imports were timed inside the interpreter: a positive figure per path.
    assert all(r["provider_import_ms"] > 0 for r in rows)


def test_waiting_cost_benchmark_fires_each_trigger_once():
    from bench import waiting_cost

    (row,) = waiting_cost.run(smoke=True)  # asserts inside: every trigger yielded exactly one "met" event
    assert row["deferred_sensors"] == waiting_cost.SMOKE_SENSORS
    assert row["wait_s"] >= waiting_cost.SMOKE_WAIT_SECONDS and row["triggerer_cpu_s"] > 0


def test_streams_page_benchmark_reads_every_card_and_serves_the_second_list_from_the_cache():
    from bench import streams_page

    cold, warm, history = streams_page.run(smoke=True)  # asserts inside: every card read its last batch
    assert (
        cold["streams"] == streams_page.SMOKE_STREAMS and history["progress_events_each"] == streams_page.SMOKE_BATCHES
    )
    assert warm["median_s"] < cold["median_s"]
