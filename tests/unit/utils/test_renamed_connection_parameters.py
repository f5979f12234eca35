"""The old connection parameter names of the submission hook and operators work for one release, with a warning."""

from __future__ import annotations

import pytest

from airflow_spark_streaming.hooks.submission import StreamingSubmitHook
from airflow_spark_streaming.operators.stop import StopStreamingQueryOperator
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.utils.deprecation import ConflictingParametersError, ProviderDeprecationWarning

APP = {"application": "/opt/jobs/app.py", "checkpoint": "/tmp/ckpt"}


def _submit(**kwargs):
    return SparkStreamingSubmitOperator(task_id="start", **APP, **kwargs)


def _stop(**kwargs):
    return StopStreamingQueryOperator(task_id="stop", checkpoint="/tmp/ckpt", **kwargs)


def _hook(**kwargs):
    return StreamingSubmitHook(**kwargs)


CASES = [
    (_submit, "conn_id", "spark_conn_id"),
    (_submit, "checkpoint_conn_id", "storage_conn_id"),
    (_stop, "conn_id", "spark_conn_id"),
    (_stop, "checkpoint_conn_id", "storage_conn_id"),
    (_hook, "conn_id", "spark_conn_id"),
]


@pytest.mark.parametrize(("make", "old", "new"), CASES)
def test_the_old_name_still_works_and_warns_naming_the_new_one(make, old, new):
    with pytest.warns(ProviderDeprecationWarning, match=rf"{old} is deprecated .* pass {new} instead"):
        made = make(**{old: "my_conn"})
    assert getattr(made, new) == "my_conn"


@pytest.mark.parametrize(("make", "old", "new"), CASES)
def test_both_names_together_are_refused(make, old, new):
    with pytest.raises(ConflictingParametersError, match=rf"both {old}='a' and {new}='b'"):
        make(**{old: "a", new: "b"})


@pytest.mark.parametrize(("make", "old", "new"), CASES)
def test_the_new_name_does_not_warn(make, old, new, recwarn):
    assert getattr(make(**{new: "my_conn"}), new) == "my_conn"
    assert not [w for w in recwarn if issubclass(w.category, ProviderDeprecationWarning)]


def test_defaults_are_unchanged():
    assert _submit().spark_conn_id == "spark_default" and _submit().storage_conn_id is None
    assert _hook().spark_conn_id == "spark_default"
    assert _stop().spark_conn_id is None  # the one the driver was submitted with
