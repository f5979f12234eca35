"""The downstream_on_commit example DAG: its own watcher's trigger over a real ingest, then its aggregate."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.support.triggerer_harness import InMemoryAssetStateStore, TriggerLoop, revive

EXAMPLE = Path(__file__).resolve().parents[3] / "example_dags" / "downstream_on_commit.py"


def append(table: Path, rows: list[tuple[str, int]]) -> None:
    from deltalake import write_deltalake

    frame = pd.DataFrame({"region": [r for r, _ in rows], "amount": [a for _, a in rows]})
    write_deltalake(str(table), frame, mode="append")


@pytest.fixture(scope="module")
def lake():
    # The session-wide lake root (tests/conftest.py): every DAG parse in the session, by any test,
    # registers the example's "orders_delta" asset under this one URI.
    root = Path(os.environ["SPARK_STREAMING_LAKE_ROOT"])
    shutil.rmtree(root / "orders", ignore_errors=True)
    append(root / "orders", [("eu", 1000)])  # version 0, before the watcher starts
    return root


def example_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE))
    assert bag.import_errors == {}
    return bag.dags["downstream_on_commit"]


def test_one_run_input_per_append_none_for_optimize_then_the_aggregate(airflow_db, lake):
    from deltalake import DeltaTable

    dag = example_dag()
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    store = InMemoryAssetStateStore()
    trigger = revive(watcher.trigger, store)
    trigger.poll_interval = 0.2  # the DAG polls every 30 s; the test does not wait that long
    table = lake / "orders"

    async def ingest_while_watching():
        loop = TriggerLoop(trigger).start()
        await loop.until(lambda: store.values, what="the first poll")
        append(table, [("eu", 1), ("us", 2)])  # 1
        append(table, [("us", 3)])  # 2
        DeltaTable(str(table)).optimize.compact()  # 3: wakes nothing
        append(table, [("eu", 4), ("apac", 5), ("apac", 6)])  # 4
        await loop.until(lambda: next(iter(store.values.values()))["position"] == 4, what="version 4")
        await loop.stop()
        return loop.events

    events = asyncio.run(ingest_while_watching())
    assert [(e["version"], e["operation"], e["rows_added"]) for e in events] == [
        (1, "WRITE", 2),
        (2, "WRITE", 1),
        (4, "WRITE", 3),
    ]

    run = dag.test(run_conf={"versions": [e["version"] for e in events]})
    assert run.state == "success"
    result = run.get_task_instance("aggregate_new_versions").xcom_pull(task_ids="aggregate_new_versions")
    assert result["rows"] == 6  # the compacted files of version 3 and version 0's row are not new data
    assert result["by_region"] == {
        "eu": {"rows": 2, "amount": 5},
        "us": {"rows": 2, "amount": 5},
        "apac": {"rows": 2, "amount": 11},
    }


def test_airflow_registers_the_watcher_without_import_errors(airflow_db, lake):
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE.parent)}
    env.pop("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", None)
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "reserialize"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "list-import-errors", "--output", "json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert [json.loads(x) for x in listed.stdout.splitlines() if x.startswith(("[{", "[]"))] in ([], [[]])

    # Airflow registers watchers of unpaused DAGs only; it stores the trigger by classpath.
    for command in (["dags", "unpause", "downstream_on_commit"], ["dags", "reserialize"]):
        done = subprocess.run([sys.executable, "-m", "airflow", *command], env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        uri = f"file://{lake / 'orders'}"
        model = session.query(AssetModel).filter(AssetModel.name == "orders_delta", AssetModel.uri == uri).one()
        (watcher,) = model.watchers
        assert watcher.name == "orders_new_versions"
        assert watcher.trigger.classpath == "airflow_spark_streaming.triggers.events.DeltaVersionEventTrigger"
        # Stored encrypted with the Fernet key the CLI and this process share (tests/conftest.py).
        assert watcher.trigger.kwargs["table_uri"] == str(lake / "orders")
        assert sorted(watcher.trigger.kwargs["operations"]) == ["STREAMING UPDATE", "WRITE"]
