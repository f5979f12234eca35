"""Runner overhead: the declarative stream runner against an equivalent hand-written PySpark job.

Both run with spark-submit on ``local[2]`` over the same JSON files (read 5
files per micro-batch) into a fresh Delta table, alternately, and the rows per
second of each (rows / wall time of the whole spark-submit) are compared. The
runner adds its spec parsing, its progress listener and its checkpoint lease.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import bench_main

FILES, SMOKE_FILES = 40, 10
ROWS_PER_FILE, SMOKE_ROWS_PER_FILE = 25_000, 2_000


def write_input(folder: Path, files: int, rows: int) -> int:
    folder.mkdir(parents=True)
    rng = random.Random(7)
    for f in range(files):
        lines = (json.dumps({"id": f * rows + i, "region": rng.choice("abcd"), "amount": rng.random() * 100,
                             "note": "x" * 20}) for i in range(rows))  # fmt: skip
        (folder / f"part-{f:04d}.json").write_text("\n".join(lines))
    return files * rows


def _spark_submit(app: str, args: list[str]) -> float:
    from airflow_spark_streaming.spark.jvm import resolve_jvm_dependencies

    deps = resolve_jvm_dependencies(delta=True, resolver="packages")
    conf = [a for k, v in {**deps.conf, "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}.items()
            for a in ("--conf", f"{k}={v}")]  # fmt: skip
    command = [os.path.join(os.environ["SPARK_HOME"], "bin", "spark-submit"), "--master", "local[2]",
               "--packages", ",".join(deps.packages), *conf, app, *args]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{app} failed:\n{done.stderr[-3000:]}")
    return elapsed


def run(smoke: bool = False, repeats: int | None = None) -> list[dict]:
    from deltalake import DeltaTable

    from airflow_spark_streaming.runner.jobs import job_path

    repeats = repeats or (1 if smoke else 2)
    handwritten = str(Path(__file__).parent / "jobs" / "handwritten_ingest.py")
    timings: dict[str, list[float]] = {"runner": [], "handwritten": []}
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as work:
        rows = write_input(Path(work) / "input", SMOKE_FILES if smoke else FILES,
                           SMOKE_ROWS_PER_FILE if smoke else ROWS_PER_FILE)  # fmt: skip
        for attempt in range(repeats):
            for kind in ("runner", "handwritten"):
                table, checkpoint = Path(work) / f"{kind}-{attempt}", Path(work) / f"{kind}-{attempt}-ckpt"
                if kind == "runner":
                    spec = {
                        "query_name": "bench_runner", "checkpoint_location": str(checkpoint),
                        "source": {"format": "json", "path": str(Path(work) / "input"),
                                   "schema": "id BIGINT, region STRING, amount DOUBLE, note STRING",
                                   "options": {"maxFilesPerTrigger": 5}},
                        "transform_sql": "SELECT id, upper(region) AS region, amount * 1.2 AS gross, note FROM source",
                        "sink": {"format": "delta", "path": str(table), "output_mode": "append"},
                        "trigger": {"available_now": True},
                    }  # fmt: skip
                    elapsed = _spark_submit(job_path("stream_runner"), ["--spec", json.dumps(spec)])
                else:
                    elapsed = _spark_submit(handwritten, [str(Path(work) / "input"), str(table), str(checkpoint)])
                assert DeltaTable(str(table)).to_pyarrow_table(columns=["id"]).num_rows == rows
                timings[kind].append(elapsed)
    runner, hand = statistics.median(timings["runner"]), statistics.median(timings["handwritten"])
    return [{
        "rows": rows, "runs_each": repeats, "runner_s": round(runner, 2), "handwritten_s": round(hand, 2),
        "runner_rows_per_s": round(rows / runner), "handwritten_rows_per_s": round(rows / hand),
        "runner_vs_handwritten": round(hand / runner, 3),
    }]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, doc=__doc__, name="runner_overhead",
                      title="Declarative runner vs hand-written PySpark (rows per second of the whole spark-submit)",
                      run=lambda args: run(args.smoke), notes="local[2], JSON files to Delta, availableNow")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
