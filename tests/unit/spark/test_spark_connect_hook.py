"""The Spark Connect path of Delta maintenance, without a server: connection choice, refused settings, bounded connect."""

from __future__ import annotations

import json
import time

import pytest

from airflow_spark_streaming.exceptions import DeltaMaintenanceError, SparkConnectError, SparkConnectUnreachableError
from airflow_spark_streaming.hooks.spark_connect import DeltaConnectHook, is_spark_connect_connection
from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator
from devstack.process import free_port


@pytest.fixture
def connections(monkeypatch):
    def make(conn_id: str, **connection) -> str:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        return conn_id

    return make


def test_only_a_spark_connect_connection_selects_connect(connections):
    connections("sc", conn_type="spark_connect", host="127.0.0.1", port=15002)
    connections("submit", conn_type="spark", host="local[2]")
    assert is_spark_connect_connection("sc")
    assert not is_spark_connect_connection("submit")
    assert not is_spark_connect_connection("no_such_connection")  # the spark-submit path reports it, as before
    assert not is_spark_connect_connection(None)


@pytest.mark.parametrize("key", ["spark.hadoop.fs.s3a.secret.key", "spark.jars.packages", "spark.driver.memory"])
def test_storage_credentials_and_static_settings_are_not_sent_to_the_server(connections, key):
    connections("sc", conn_type="spark_connect", host="127.0.0.1", port=free_port())
    with pytest.raises(SparkConnectError, match=f"{key}.*server's own start-up settings") as raised:
        DeltaConnectHook("sc").run({"action": "optimize", "table": "/t"}, conf={key: "s3cr3t-value"})
    assert "s3cr3t-value" not in str(raised.value)


def test_unknown_action_is_refused_before_connecting(connections):
    connections("sc", conn_type="spark_connect", host="127.0.0.1", port=free_port())
    with pytest.raises(DeltaMaintenanceError, match="'drop' is not one of"):
        DeltaConnectHook("sc").run({"action": "drop", "table": "/t"})


def test_a_server_that_does_not_answer_is_a_named_error_within_the_connect_timeout(connections):
    connections("sc", conn_type="spark_connect", host="127.0.0.1", port=free_port(), password="tok3n-value")
    started = time.monotonic()
    with pytest.raises(
        SparkConnectUnreachableError, match=r"'sc' at 127\.0\.0\.1:\d+ did not answer within 1s"
    ) as raised:
        DeltaConnectHook("sc", connect_timeout=1).run({"action": "optimize", "table": "/t"})
    assert time.monotonic() - started < 10
    assert "tok3n-value" not in str(raised.value)


def test_a_connection_with_a_path_is_a_named_error(connections):
    connections("sc", conn_type="spark_connect", host="sc://127.0.0.1:15002/path")
    with pytest.raises(SparkConnectError, match="cannot be read as a server address"):
        DeltaConnectHook("sc").run({"action": "optimize", "table": "/t"})


def test_extra_jars_cannot_ride_a_connect_connection(connections, tmp_path):
    connections("sc", conn_type="spark_connect", host="127.0.0.1", port=free_port())
    task = DeltaOptimizeOperator(task_id="o", table_uri=str(tmp_path), engine="spark", spark_conn_id="sc",
                                 extra_packages=["org.example:lib:1.0"])  # fmt: skip
    with pytest.raises(SparkConnectError, match="start the Connect server with them"):
        task._run_spark_job({"action": "optimize", "table": str(tmp_path)})


def test_a_handoff_to_a_live_stream_never_uses_connect(connections, tmp_path, monkeypatch):
    """On S3 beside a live stream the stream's own driver runs the OPTIMIZE, whatever connection spark_conn_id names."""
    import pyarrow as pa
    from deltalake import write_deltalake

    table = tmp_path / "table"
    for batch in range(3):
        write_deltalake(str(table), pa.table({"id": [batch]}), mode="append")
    connections("sc", conn_type="spark_connect", host="127.0.0.1", port=free_port())
    handed = []

    def stream_runner_optimizes(self, target, request):
        handed.append(request["action"])
        from deltalake import DeltaTable

        DeltaTable(str(table)).optimize.compact()  # what the live runner's driver would commit

    monkeypatch.setattr(DeltaOptimizeOperator, "_plan_handoff", lambda self, action, hook: object())
    monkeypatch.setattr(DeltaOptimizeOperator, "_hand_off", stream_runner_optimizes)
    monkeypatch.setattr(DeltaConnectHook, "run", lambda *a, **k: pytest.fail("Connect used beside a live stream"))
    result = DeltaOptimizeOperator(task_id="o", table_uri=str(table), engine="spark", spark_conn_id="sc").execute({})
    assert handed == ["optimize"]
    assert result["spark_transport"] == "stream-runner" and result["files_after"] == 1


# --- a pipeline flow's table, located through the server's catalog -------------------------------------------


def test_table_names_are_quoted_part_by_part_and_anything_else_is_refused():
    from airflow_spark_streaming.exceptions import InvalidParameterError
    from airflow_spark_streaming.hooks.spark_connect import quoted_table_name

    assert quoted_table_name("spark_catalog.default.orders") == "`spark_catalog`.`default`.`orders`"
    assert quoted_table_name("orders-2") == "`orders-2`"
    for bad in ("a.b.c.d", "", "or`ders", "orders; DROP TABLE x", "a..b", None):
        with pytest.raises(InvalidParameterError, match="cannot be asked of a Spark Connect server"):
            quoted_table_name(bad)


def test_describe_table_refuses_a_bad_name_before_connecting(connections):
    from airflow_spark_streaming.exceptions import InvalidParameterError

    connections("sc", conn_type="spark_connect", host="127.0.0.1", port=free_port())
    started = time.monotonic()
    with pytest.raises(InvalidParameterError, match="'x y' is not a plain name"):
        DeltaConnectHook("sc", connect_timeout=5).describe_table("default.x y")
    assert time.monotonic() - started < 2  # no channel was waited for


def test_the_servers_location_is_checked_before_it_is_used():
    from airflow_spark_streaming.hooks.spark_connect import MAX_TABLE_LOCATION_CHARS, _checked_location

    assert _checked_location("t", "h:1", "file:/w/orders") == "file:/w/orders"
    assert _checked_location("t", "h:1", "s3a://lake/w/orders") == "s3a://lake/w/orders"
    for bad in (None, "", "w/orders", "file:/w/or\nders", "/" + "a" * MAX_TABLE_LOCATION_CHARS, 7):
        with pytest.raises(SparkConnectError, match="gave no usable location for table t"):
            _checked_location("t", "h:1", bad)


def test_a_spark_location_is_spelled_for_the_airflow_side():
    from airflow_spark_streaming.storage.locations import from_spark_location

    assert from_spark_location("file:/w/orders") == "/w/orders"
    assert from_spark_location("file:///w/orders") == "/w/orders"
    assert from_spark_location("s3a://lake/w/orders") == "s3a://lake/w/orders"


@pytest.mark.parametrize("operator", ["DeltaOptimizeOperator", "DeltaVacuumOperator"])
def test_without_table_uri_the_table_is_the_pipeline_flows_located_over_connect(operator, connections, tmp_path):
    from airflow_spark_streaming.exceptions import InvalidParameterError
    from airflow_spark_streaming.operators import delta

    made = getattr(delta, operator)
    with pytest.raises(InvalidParameterError, match="^m: give table_uri .* or a Spark Declarative Pipeline's flow"):
        made(task_id="m")
    task = made(task_id="m", pipeline_storage=str(tmp_path), flow="orders")  # parsed: located when it runs
    assert task.table_uri is None and task.get_openlineage_facets_on_start() is None
    connections("spark_default", conn_type="spark", host="local[2]")
    with pytest.raises(InvalidParameterError, match="spark_conn_id='spark_default' is not a spark_connect connection"):
        task.execute({})


def test_a_query_failed_by_a_stopping_server_is_the_server_going_even_while_its_port_answers(connections, monkeypatch):
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.hooks.stream_connect import STOPPED_CONTEXT, StreamConnectHook

    hook = StreamConnectHook(
        connections("connect_local", conn_type="spark_connect", host="127.0.0.1", port=free_port())
    )
    probes = []
    monkeypatch.setattr(hook, "_wait_for_channel", lambda *a, **k: probes.append(a))  # the port still answers
    control = RunnerControlHook("/tmp/ckpt")
    stopping = RuntimeError(f"(java.lang.IllegalStateException) {STOPPED_CONTEXT}.")
    assert isinstance(hook._gone_after(stopping, control), SparkConnectUnreachableError)
    assert probes == []  # no probe needed: only a stopping server fails a query that way
    assert hook._gone_after(RuntimeError("[DIVIDE_BY_ZERO] Division by zero."), control) is None
    assert len(probes) == 1  # a query's own failure is judged by probing the server
