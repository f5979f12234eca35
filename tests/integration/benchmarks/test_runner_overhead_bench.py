"""The runner-overhead benchmark in smoke mode: both jobs write the same rows."""

from __future__ import annotations

from bench import runner_overhead


def test_runner_and_handwritten_job_ingest_the_same_rows():
    (row,) = runner_overhead.run(smoke=True)  # asserts inside: each Delta table holds every input row
    assert row["rows"] == runner_overhead.SMOKE_FILES * runner_overhead.SMOKE_ROWS_PER_FILE
    assert row["runner_rows_per_s"] > 0 and row["handwritten_rows_per_s"] > 0
