"""What the Connect route writes and reports from the server's answers, without a server."""

from __future__ import annotations

import json

from airflow_spark_streaming.hooks.stream_connect import _cause, _with_totals


def test_progress_gets_the_totals_the_drivers_json_carries():
    event = {"batchId": 3, "sources": [{"numInputRows": 40, "inputRowsPerSecond": 2.0, "processedRowsPerSecond": 8.0},
                                       {"numInputRows": 2, "inputRowsPerSecond": 1.0, "processedRowsPerSecond": 1.5}]}  # fmt: skip
    written = json.loads(_with_totals(json.dumps(event)))
    assert (written["numInputRows"], written["inputRowsPerSecond"], written["processedRowsPerSecond"]) == (42, 3.0, 9.5)
    assert written["sources"] == event["sources"]


def test_totals_the_server_sent_are_kept():
    event = {"batchId": 0, "numInputRows": 7, "sources": [{"numInputRows": 40}]}
    assert json.loads(_with_totals(json.dumps(event)))["numInputRows"] == 7


def test_a_failure_keeps_its_first_line_and_causes_without_stack_frames_or_secrets():
    spec = {"source": {"kafka_connection": {"secret_values": ["s3cr3t-pw"]}}, "sink": {}}
    text = ("[STREAM_FAILED] Query [id = 1] terminated with exception: login failed for s3cr3t-pw\n"
            "\tat org.apache.spark.sql.execution.streaming.StreamExecution.run(StreamExecution.scala:1)\n"
            "Caused by: org.apache.kafka.common.errors.SaslAuthenticationException: Authentication failed\n"
            "\tat java.base/java.lang.Thread.run(Thread.java:840)\n")  # fmt: skip
    cause = _cause(text, spec)
    assert cause.startswith("[STREAM_FAILED] Query [id = 1] terminated with exception: login failed for ***")
    assert "SaslAuthenticationException: Authentication failed" in cause
    assert "s3cr3t-pw" not in cause and "Thread.java" not in cause and "StreamExecution.scala" not in cause
