"""Test-wide settings: an isolated Airflow home and Spark found from the pinned pyspark wheel.

These are set before anything imports Airflow, because Airflow reads its
configuration once, at import time.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# Everything the session's child processes leave behind goes into one directory, removed when
# the session ends: a SIGKILLed Spark driver keeps its ~100-700 MB of jars under its local dir,
# and a few dozen of those filled a shared disk. This process keeps the system temp dir, so
# pytest's own tmp_path folders survive for inspection.
_session_tmp = Path(tempfile.mkdtemp(prefix="ass-session-"))
os.environ["TMPDIR"] = str(_session_tmp)
os.environ["SPARK_LOCAL_DIRS"] = str(_session_tmp)
# The driver JVM of a client-mode spark-submit is the spark-submit JVM: these options start it faster.
# A test's jobs are short, and on two cores C2's compiler threads only compete with them: C1 alone
# (TieredStopAtLevel=1) halves the JIT's share of a start-up. Spark settings given as -D are the lowest
# defaults (spark-defaults.conf, the properties file and --conf win): no UI, and Delta's state
# reconstruction in 2 partitions, not 50. (A test-wide SPARK_CONF_DIR would do the same but put a folder
# on the class path, which the class-data archive of tests/integration/conftest.py cannot share.)
os.environ["SPARK_SUBMIT_OPTS"] = " ".join(
    filter(
        None,
        [
            os.environ.get("SPARK_SUBMIT_OPTS"),
            f"-Djava.io.tmpdir={_session_tmp}",
            "-XX:TieredStopAtLevel=1",
            "-Dspark.ui.enabled=false",
            "-Dspark.databricks.delta.snapshotPartitions=2",
        ],
    )
)

_airflow_home = Path(
    os.environ.get("ASS_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="airflow-home-", dir=_session_tmp)
)
os.environ["AIRFLOW_HOME"] = str(_airflow_home)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# spark-submit's Ivy resolution (--packages) costs 2-6 s per submit here; the Maven resolver's cached jars
# cost nothing after the first. The Ivy path keeps its own tests (resolver="packages" where it is the subject).
os.environ.setdefault("AIRFLOW__SPARK_STREAMING__JVM_RESOLVER", "maven")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "example_dags"))
# Two bundles: the shipped example DAGs, and DAGs that exist only for tests.
os.environ.setdefault(
    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
    json.dumps(
        [
            {
                "name": name,
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(path), "refresh_interval": 0},
            }
            for name, path in (
                ("provider_examples", REPO_ROOT / "example_dags"),
                ("test_dags", REPO_ROOT / "tests" / "dags"),
            )
        ]
    ),
)
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_airflow_home / 'airflow.db'}")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# One Fernet key for the test process and the Airflow CLI it runs: trigger kwargs that an
# 'airflow dags reserialize' subprocess encrypts must decrypt in every later dag.test().
if not os.environ.get("AIRFLOW__CORE__FERNET_KEY"):
    from cryptography.fernet import Fernet

    os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()
# The control key (a fresh random one per session) that signs the records the provider acts on:
# long-running streams, stops that kill and the maintenance hand-off need it.
if not os.environ.get("AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT"):
    import secrets

    os.environ["AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT"] = json.dumps(
        {"conn_type": "generic", "password": secrets.token_hex(32)}
    )
# Every parse of the example DAGs in one session gives downstream_on_commit's "orders_delta" asset
# the same URI: Airflow deactivates an asset whose name is already active under another URI.
os.environ.setdefault("SPARK_STREAMING_LAKE_ROOT", str(_airflow_home / "lake"))

# spark-submit and spark-class from the pyspark wheel need to know their home
# and which Python has pyspark, whether or not the virtualenv is activated.
from airflow_spark_streaming.spark.jvm import spark_home  # noqa: E402

_spark_home = spark_home()
if _spark_home is not None:
    os.environ.setdefault("SPARK_HOME", str(_spark_home))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), str(_spark_home / "bin"), os.environ["PATH"]]
    )
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import logging  # noqa: E402

# py4j logs while the interpreter shuts down, after pytest closed its streams.
logging.getLogger("py4j").setLevel(logging.WARNING)


def pytest_unconfigure(config):
    # After every session fixture (brokers, clusters) has stopped.
    import shutil

    shutil.rmtree(_session_tmp, ignore_errors=True)
