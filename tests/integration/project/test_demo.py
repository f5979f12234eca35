"""The README's main command, with the lake on the local S3 server: ``python -m devstack.demo --s3``.

It runs the example DAGs as a user would (``airflow dags test`` in fresh
processes, a broker and an S3 server of its own), so it catches what the
DAG-level tests cannot: the example ``delta_maintenance`` DAG must name the
stream's checkpoint to compact a table a stream wrote minutes ago on S3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devstack import kafka, s3
from devstack.process import free_port
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.s3]

RECORDS = 20_000


def test_demo_on_s3_ingests_everything_then_compacts_beside_the_stream(tmp_path, java_major):
    # The demo builds its own Airflow home: nothing of this session's Airflow settings may leak into it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(KAFKA_LOCAL_PORT=str(free_port()), S3_LOCAL_PORT=str(free_port()))
    work = tmp_path / "demo"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "devstack.demo", "--work", str(work), "--records", str(RECORDS), "--s3"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        # The demo stops its own broker and server; read before the clean-up below can.
        left_running = [name for name, svc in (("kafka", kafka), ("s3", s3)) if svc.read_state(work / name)]
    finally:
        # A demo killed by the timeout has no chance to stop them.
        kafka.stop(work / "kafka")
        s3.stop(work / "s3")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    # The terminal shows the demo's own lines only: its header, its steps and its summary. Airflow's
    # line per connection lookup (dozens on S3) is kept in the run's log instead.
    assert "credentials retrieved" not in done.stdout.lower(), done.stdout[-4000:]
    demo_lines = ("airflow-spark-streaming demo:", "  ", "Demo summary")
    assert all(not line or line.startswith(demo_lines) for line in done.stdout.splitlines()), done.stdout[-4000:]
    assert done.stderr == "", done.stderr[-4000:]
    assert "credentials retrieved from login and password" in (work / "logs" / "demo.log").read_text()
    summary = json.loads((work / "summary.json").read_text())
    assert summary["table"] == "s3a://demo-lake/lake/demo_orders"
    assert summary["rows_ingested"] == RECORDS and summary["lag_before"] == RECORDS and summary["lag_after"] == 0
    assert summary["batches_committed"] >= 1
    assert summary["compacted"] and summary["files_after_compaction"] < summary["files_before_compaction"]
    maintenance_log = (work / "logs" / "delta_maintenance.log").read_text()
    assert "UnprotectedConcurrentWriteError" not in maintenance_log
    assert not left_running, f"the demo left {left_running} running"
