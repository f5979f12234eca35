"""Two lease takers released at the same instant, for the unit (local store) and integration (Hadoop store) tests."""

from __future__ import annotations

import threading

from airflow_spark_streaming.runner import lease as L


def race_two_takers(store, ttl_ms: int = 10_000) -> list[int | None]:
    """Two runners acquire the lease on ``store`` behind one barrier; each outcome is a generation, or None on refusal."""
    barrier, outcomes = threading.Barrier(2), []

    def take() -> None:
        runner = L.RunnerLease(store, ttl_ms=ttl_ms)
        barrier.wait()
        try:
            outcomes.append(runner.acquire().generation)
        except L.CheckpointInUse:
            outcomes.append(None)

    threads = [threading.Thread(target=take) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
