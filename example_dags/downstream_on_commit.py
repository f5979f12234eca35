"""Downstream on commit: run when the streaming Delta table gets new data, not on a clock.

The ``orders`` table asset is watched by :class:`DeltaVersionEventTrigger`: each
append (``WRITE``/``STREAMING UPDATE``) version becomes one asset event, and an
OPTIMIZE or VACUUM wakes nothing. Each run aggregates exactly the rows the
triggering versions added (the files those versions added), per region.

The table is ``$SPARK_STREAMING_LAKE_ROOT/orders`` (set it in the scheduler's and
triggerer's environment; ``$SPARK_STREAMING_STORAGE_CONN_ID`` names the storage
connection for object stores; ``$SPARK_STREAMING_EVENT_POLL_INTERVAL`` the seconds
between reads of the table's log, 30 by default). A manual run can pass ``{"versions": [3, 4]}``.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_spark_streaming.triggers.events import DeltaVersionEventTrigger

LAKE_ROOT = os.environ.get("SPARK_STREAMING_LAKE_ROOT", "s3://lake").rstrip("/")
STORAGE_CONN_ID = os.environ.get("SPARK_STREAMING_STORAGE_CONN_ID") or None
ORDERS_URI = f"{LAKE_ROOT}/orders"
POLL_INTERVAL = float(os.environ.get("SPARK_STREAMING_EVENT_POLL_INTERVAL", "30"))

# [START howto_delta_version_event_trigger]
orders = Asset(
    name="orders_delta",
    uri=ORDERS_URI if "://" in ORDERS_URI else f"file://{ORDERS_URI}",
    watchers=[
        AssetWatcher(
            name="orders_new_versions",
            trigger=DeltaVersionEventTrigger(
                table_uri=ORDERS_URI,
                storage_conn_id=STORAGE_CONN_ID,
                operations=["WRITE", "STREAMING UPDATE"],
                poll_interval=POLL_INTERVAL,
            ),
        )
    ],
)
# [END howto_delta_version_event_trigger]


def added_rows_by_region(table_uri: str, versions: list[int], storage_options: dict | None = None) -> dict:
    """Rows and amount per region among the files the given versions added (appends only add files)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    from deltalake import DeltaTable

    files: set[str] = set()
    for version in sorted(set(versions)):
        now = set(DeltaTable(table_uri, version=version, storage_options=storage_options).file_uris())
        before = (
            set(DeltaTable(table_uri, version=version - 1, storage_options=storage_options).file_uris())
            if version > 0
            else set()
        )
        files |= now - before
    if not files:
        return {"versions": sorted(set(versions)), "rows": 0, "by_region": {}}
    table = ds.dataset(sorted(files), format="parquet").to_table(columns=["region", "amount"])
    grouped = table.group_by("region").aggregate([("amount", "count"), ("amount", "sum")])
    by_region = {
        region: {"rows": int(count), "amount": int(total)}
        for region, count, total in zip(
            grouped["region"].to_pylist(),
            grouped["amount_count"].to_pylist(),
            grouped["amount_sum"].to_pylist(),
            strict=True,
        )
    }
    return {
        "versions": sorted(set(versions)),
        "rows": int(pc.sum(grouped["amount_count"]).as_py()),
        "by_region": by_region,
    }


with DAG(
    dag_id="downstream_on_commit",
    description="Aggregate each new version of the streaming orders table as soon as it commits",
    schedule=[orders],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["spark-streaming", "delta", "events", "example"],
) as dag:

    @task(inlets=[orders])
    def aggregate_new_versions(triggering_asset_events=None, dag_run=None) -> dict:
        events = triggering_asset_events.get(orders, []) if triggering_asset_events else []
        versions = [e.extra["payload"]["version"] for e in events if "payload" in (e.extra or {})]
        versions += list((dag_run.conf or {}).get("versions", [])) if dag_run else []
        options = None
        if STORAGE_CONN_ID:
            from airflow_spark_streaming.hooks.delta_history import storage_options_from_connection

            options = storage_options_from_connection(STORAGE_CONN_ID)
        return added_rows_by_region(ORDERS_URI, versions, options)

    aggregate_new_versions()
