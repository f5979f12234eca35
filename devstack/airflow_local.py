"""``./dev airflow``: a local Airflow deployment running the example DAGs against a local Kafka broker and lake.

It starts a Kafka broker (KRaft, 127.0.0.1), then an API server, a scheduler, a DAG processor and a
triggerer (LocalExecutor, SQLite) with the example DAGs, the connections they use (``spark_default``
on ``local[2]``, ``kafka_default``, the control key) and a lake under ``.airflow-local/lake``. It prints
the UI's address and a login, and stops everything it started on Ctrl-C (or when this process ends).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from devstack import airflow_deployment, kafka

    work = Path(os.environ.get("AIRFLOW_LOCAL_WORK") or REPO_ROOT / ".airflow-local").resolve()
    work.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print("airflow-local: starting a Kafka broker ...", flush=True)
    broker = kafka.start(work / "kafka", port=0)
    deployment = None
    try:
        lake = work / "lake"
        env = {
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
            "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
                {"conn_type": "kafka", "extra": {"bootstrap.servers": broker.bootstrap_servers}}
            ),
            "AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT": json.dumps(
                {"conn_type": "generic", "password": secrets.token_hex(32)}
            ),
            "AIRFLOW_VAR_SPARK_STREAMING_LAKE_ROOT": str(lake),
            "SPARK_STREAMING_LAKE_ROOT": str(lake),
        }
        print("airflow-local: starting the API server, scheduler, DAG processor and triggerer ...", flush=True)
        deployment = airflow_deployment.start(
            work / "airflow",
            bundles={"provider_examples": REPO_ROOT / "example_dags"},
            extra_env=env,
            watch_pid=os.getpid(),
        )
        print(f"airflow-local: Airflow UI at {deployment.api_url}")
        print(f"airflow-local: log in as {deployment.username} with password {deployment.password}")
        print(f"airflow-local: Kafka at {broker.bootstrap_servers}; lake at {lake}; Ctrl-C stops everything")
        sys.stdout.flush()
        try:
            while not stopping.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        print("\nairflow-local: stopping ...", flush=True)
        return 0
    finally:
        if deployment is not None:
            deployment.stop()
        kafka.stop(Path(broker.home))
        print("airflow-local: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
