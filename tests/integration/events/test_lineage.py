"""OpenLineage events emitted by the real OpenLineage provider and client (file transport) for
operators wired to airflow_spark_streaming.lineage.datasets, run with dag.test()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from deltalake import write_deltalake

HERE = Path(__file__).parent


def read_events(path: Path, want: int, timeout: float = 120.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
        if len(events) >= want or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def test_operators_emit_inputs_and_outputs(airflow_db, spark_connect_server, tmp_path):
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "tests",
        "AIRFLOW__OPENLINEAGE__DISABLED": "False",
        # The ingest's bounded run goes to the shared Spark Connect server: the events, not the submission, are
        # the subject here (one spark-submit less).
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
            {"conn_type": "spark_connect", "host": "127.0.0.1", "port": spark_connect_server.port}
        ),
    }
    table, sink, source = tmp_path / "orders", tmp_path / "lake" / "orders", tmp_path / "in"
    source.mkdir()
    (source / "part-0.json").write_text("".join(f'{{"id": {n}, "region": "eu"}}\n' for n in range(5)))
    for n in range(3):  # versions 0..2, one file each: the OPTIMIZE makes version 3
        write_deltalake(str(table), pd.DataFrame({"id": [n, n + 10]}), mode="append")
    done = subprocess.run(
        [sys.executable, str(HERE / "lineage_run.py"), str(table), str(sink), str(source)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert "STATE success" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    # START and COMPLETE for each of the two tasks.
    events = read_events(events_file, want=4)
    by_task = {}
    for event in events:
        if event.get("job", {}).get("name", "").startswith("lineage_probe."):
            by_task.setdefault(event["job"]["name"].split(".", 1)[1], {})[event["eventType"]] = event
    assert set(by_task) == {"ingest", "compact"}, [e.get("job") for e in events]
    assert set(by_task["ingest"]) >= {"START", "COMPLETE"}

    ingest = by_task["ingest"]["COMPLETE"]
    # The real SparkStreamingSubmitOperator ran its spec (a file source into Delta) on the Connect server.
    assert [(d["namespace"], d["name"]) for d in ingest["inputs"]] == [("file", str(source))]
    assert [(d["namespace"], d["name"]) for d in ingest["outputs"]] == [("file", str(sink))]
    from deltalake import DeltaTable

    assert sorted(DeltaTable(str(sink)).to_pandas()["id"].tolist()) == [0, 1, 2, 3, 4]

    compact = by_task["compact"]["COMPLETE"]
    assert [(d["namespace"], d["name"]) for d in compact["inputs"]] == [("file", str(table))]
    (output,) = compact["outputs"]
    assert (output["namespace"], output["name"]) == ("file", str(table))
    assert output["facets"]["version"]["datasetVersion"] == "3"
    facet = output["facets"]["sparkStreaming_deltaCommit"]
    assert (facet["operation"], facet["version"], facet["filesAdded"], facet["filesRemoved"]) == ("OPTIMIZE", 3, 1, 3)
    start = by_task["compact"]["START"]
    assert [(d["namespace"], d["name"]) for d in start["outputs"]] == [("file", str(table))]
