"""SparkStreamingSubmitOperator with ``kafka_config_id`` against the authenticated broker: one spark-submit each.

The SCRAM ingest is also where the secrets are checked: the process list is
polled during the run (spark-submit, the driver JVM, the Python worker), the
private spec file's mode is read while it exists, and the task's output, which
carries the driver's INFO log, is searched for the password.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest

from airflow_spark_streaming.exceptions import KafkaAuthenticationError
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from tests.integration.kafka_auth.conftest import produce
from tests.support.streaming_helpers import read_delta

pytestmark = pytest.mark.kafka

# spark-submit's start-up (~15 s) plus the refusal within the connection's bounded timeouts.
REFUSAL_BOUND_SECONDS = 90


@pytest.fixture
def spark_local(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))


def _spec(topic: str, tmp_path: Path) -> dict:
    return {
        "query_name": f"alice_ingest_{tmp_path.name[-12:]}_{secrets.token_hex(4)}",  # spark-submit's --name
        "checkpoint_location": str(tmp_path / "ckpt"),
        "source": {"format": "kafka", "options": {"subscribe": topic, "startingOffsets": "earliest",
                                                   "maxOffsetsPerTrigger": 25, "groupIdPrefix": "alice.spark"}},
        "transform_sql": "SELECT CAST(key AS STRING) AS key, CAST(value AS STRING) AS value, partition, offset "
                         "FROM source",
        "sink": {"format": "delta", "path": str(tmp_path / "table")},
        "trigger": {"available_now": True},
    }  # fmt: skip


class ProcessWatch:
    """Poll ``ps -eo args`` until stopped: this run's command lines (``marker``: its app name), every command line
    holding ``secret``, and the modes of the private spec files while they exist."""

    def __init__(self, marker: str, secret: str) -> None:
        self.marker, self.secret, self.lines, self.leaks, self.spec_modes = marker, secret, set(), set(), {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            listing = subprocess.run(["ps", "-eo", "args", "-ww"], capture_output=True, text=True, check=False)
            for line in listing.stdout.splitlines():
                if self.secret in line or "LoginModule" in line:  # the JAAS config
                    self.leaks.add(line)
                if self.marker in line:
                    self.lines.add(line)
                    parts = line.split()
                    if "--spec-file" in parts and parts.index("--spec-file") + 1 < len(parts):
                        path = parts[parts.index("--spec-file") + 1]
                        try:
                            self.spec_modes.setdefault(path, os.stat(path).st_mode & 0o777)
                        except FileNotFoundError:
                            self.spec_modes.setdefault(path, None)
            self._stop.wait(0.2)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def test_scram_ingest_through_the_operator_keeps_the_password_private(
    auth_broker, auth_topic, kafka_connection, spark_local, tmp_path, capfd
):
    config = auth_broker.client_config("alice", "SASL_PLAINTEXT", "SCRAM-SHA-512")
    password = config["sasl.password"]
    topic = auth_topic("alice", partitions=2)
    produce(config, topic, 60, partitions=2)
    spec = _spec(topic, tmp_path)
    operator = SparkStreamingSubmitOperator(
        task_id="ingest", spec=spec, kafka_config_id=kafka_connection("kafka_scram_ingest", config),
        conf={"spark.ui.enabled": "false"},
    )  # fmt: skip

    with ProcessWatch(spec["query_name"], password) as watch:
        result = operator.execute({})

    rows = read_delta(tmp_path / "table")
    assert sorted((r["key"], r["value"], r["partition"], r["offset"]) for r in rows) == sorted(
        (f"key-{i}", f"value-{i}", i % 2, i // 2) for i in range(60)
    )
    assert (result["batches_committed"], result["rows_processed"]) == (3, 60)  # 60 records at 25 a trigger
    assert result["committed_sources"] == [{topic: {"0": 30, "1": 30}}]
    # argv: the run was seen, and neither the password nor the JAAS config was on any command line.
    assert any("SparkSubmit" in line and "--spec-file" in line for line in watch.lines), watch.lines
    assert watch.leaks == set()
    # The spec file that carried the options was private while it existed, and is gone.
    assert watch.spec_modes and all(mode in (0o600, None) for mode in watch.spec_modes.values()), watch.spec_modes
    assert 0o600 in watch.spec_modes.values()
    assert not any(Path(path).exists() for path in watch.spec_modes)
    # The task log holds spark-submit's and the driver's INFO output, the redacted options, no password.
    log = "".join(capfd.readouterr())
    assert "Kafka options of the source, from its connection" in log and '"kafka.sasl.jaas.config": "***"' in log
    assert " INFO " in log and "sasl.jaas.config = [hidden]" in log
    assert password not in log
    # XCom and the (rendered) template fields.
    assert password not in json.dumps(result) and password not in json.dumps(operator.spec)


def test_wrong_password_fails_the_task_with_a_named_error_in_bounded_time(
    auth_broker, auth_topic, kafka_connection, spark_local, tmp_path, capfd
):
    wrong = "wrong-" + secrets.token_hex(6)
    config = {**auth_broker.client_config("alice", "SASL_PLAINTEXT", "SCRAM-SHA-512"), "sasl.password": wrong}
    operator = SparkStreamingSubmitOperator(
        task_id="ingest", spec=_spec(auth_topic("alice"), tmp_path),
        kafka_config_id=kafka_connection("kafka_wrong_password", config), conf={"spark.ui.enabled": "false"},
    )  # fmt: skip

    started = time.monotonic()
    with pytest.raises(KafkaAuthenticationError) as refused:
        operator.execute({})
    elapsed = time.monotonic() - started
    print(f"\nwrong password through the operator: {elapsed:.1f}s -> {str(refused.value)[:300]}")

    assert elapsed < REFUSAL_BOUND_SECONDS
    assert "'kafka_wrong_password'" in str(refused.value)
    assert wrong not in str(refused.value) and wrong not in "".join(capfd.readouterr())
