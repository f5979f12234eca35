"""The deployment layer: tests through a real Airflow deployment (API server, scheduler, DAG processor, triggerer).

One deployment (``devstack.airflow_deployment``) serves the whole session: the example DAGs and the
test DAGs of ``dags/`` against the session's Kafka broker, ``local[2]`` Spark and a lake in its home.
A test that needs the session's standalone cluster creates its connection through the REST API, so the
deployment never waits for a cluster it may not use.
Every test here is marked ``deployment``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from tests.support.folder_markers import mark_folder

HERE = Path(__file__).parent
REPO_ROOT = HERE.parents[2]
#: The DAGs the tests run; the fixture waits until the DAG processor has parsed them.
DAG_IDS = (
    "streaming_supervisor",
    "downstream_on_commit",
    "orders_stream_start",
    "orders_stream_stop",
    "on_orders_batch",
    "deferred_sensors",
    "cluster_supervisor",
)
#: Spark defaults for every driver of the deployment, as a cluster admin sets them: small shuffles and Delta
#: snapshots (50 partitions each by default) for a two-core machine, and no UI.
SPARK_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
}


def pytest_collection_modifyitems(items):
    mark_folder(items, HERE, pytest.mark.deployment)


@pytest.fixture(scope="session")
def airflow_deployment(kafka_broker, java_major, tmp_path_factory):
    """A running deployment (``AirflowDeployment``), its lake at ``<home>/lake``; stopped, with all it started."""
    from devstack import airflow_deployment

    home = tmp_path_factory.mktemp("airflow-deployment")
    spark_conf = home / "spark-conf"
    spark_conf.mkdir()
    (spark_conf / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in SPARK_DEFAULTS.items()))
    lake = home / "lake"
    env = {
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_broker.bootstrap_servers}}
        ),
        # The session's control key (tests/conftest.py): the deployment signs the records beside a checkpoint
        # (submission, lease) with it, and this process reads them with it.
        "AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT": os.environ.get("AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT")
        or json.dumps({"conn_type": "generic", "password": secrets.token_hex(32)}),
        "AIRFLOW_VAR_SPARK_STREAMING_LAKE_ROOT": str(lake),
        # What the event-driven DAGs read when they are parsed: their tables, and a short poll.
        "SPARK_STREAMING_LAKE_ROOT": str(lake),
        "SPARK_STREAMING_EVENT_POLL_INTERVAL": "1",
        "AIRFLOW_SPARK_STREAMING_CACHE": str(home / "spark-streaming-cache"),
        "SPARK_CONF_DIR": str(spark_conf),
        # A retried task (streaming_supervisor's start_stream) starts again after 3 s, not the default 5 min.
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "3",
    }
    deployment = airflow_deployment.start(
        home,
        bundles={"provider_examples": REPO_ROOT / "example_dags", "deployment_tests": HERE / "dags"},
        extra_env=env,
        parallelism=4,
        watch_pid=os.getpid(),
    )
    try:
        deployment.api().wait_for_dags(DAG_IDS)
        yield deployment
    finally:
        deployment.stop()
        left = airflow_deployment.marked_processes(deployment.marker)
        assert left == [], f"processes of the deployment outlived it: {left}"


@pytest.fixture(scope="session")
def airflow_api(airflow_deployment):
    return airflow_deployment.api()


@pytest.fixture(scope="session")
def lake(airflow_deployment) -> Path:
    return Path(airflow_deployment.home) / "lake"
