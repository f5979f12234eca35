"""What a ``spark_connect`` connection cannot run is refused at the start of execute, before anything is written."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.exceptions import InvalidParameterError, SparkConnectUnsupportedError
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator


@pytest.fixture
def connect_conn(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CONNECT_HERE", json.dumps({"conn_type": "spark_connect", "host": "127.0.0.1",
                                                                "port": 9}))  # fmt: skip
    return "connect_here"


def _spec(tmp_path, trigger):
    return {"query_name": "q", "checkpoint_location": str(tmp_path / "checkpoint"),
            "source": {"format": "rate", "options": {"rowsPerSecond": 1}},
            "sink": {"format": "delta", "path": str(tmp_path / "table")}, "trigger": trigger}  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"trigger": {"processing_time": "5 seconds"}}, "long-running query .* 'spark' connection"),
        ({"deploy_mode": "cluster"}, "deploy_mode is a spark-submit setting"),
        ({"extra_packages": ["org.example:lib:1.0"]}, "extra_packages is a spark-submit setting"),
        ({"submit_kwargs": {"verbose": True}}, "submit_kwargs is a spark-submit setting"),
    ],
)
def test_refused_before_anything_starts(connect_conn, tmp_path, kwargs, named):
    trigger = kwargs.pop("trigger", {"available_now": True})
    operator = SparkStreamingSubmitOperator(task_id="ingest", spec=_spec(tmp_path, trigger),
                                            spark_conn_id=connect_conn, **kwargs)  # fmt: skip
    with pytest.raises(SparkConnectUnsupportedError, match=named) as refused:
        operator.execute({})
    assert isinstance(refused.value, InvalidParameterError)
    assert "connect_here" in str(refused.value) and "spark_connect connection" in str(refused.value)
    assert not (tmp_path / "checkpoint").exists()


def test_an_application_is_refused(connect_conn, tmp_path):
    operator = SparkStreamingSubmitOperator(task_id="app", application=str(tmp_path / "job.py"),
                                            checkpoint=str(tmp_path / "checkpoint"), spark_conn_id=connect_conn)  # fmt: skip
    with pytest.raises(SparkConnectUnsupportedError, match="application runs only through spark-submit"):
        operator.execute({})
