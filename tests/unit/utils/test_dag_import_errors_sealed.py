"""DAG import errors name the problem and never a credential, as Airflow's own DagBag records and logs them.

Each DAG file below hands a constructor a bad value beside credentials of every
kind the provider recognises (``tests/support/secret_kinds.py``): the four probes
of issue 23 (the submit operator's ``conf``, the Delta operators' ``storage_options``
and ``spark_conf``, the small-files sensor's ``storage_options``) and a stream spec.
The credentials reach the DAG file as a deployment would hand them over (an
environment variable read at parse time), so they are not in the file's source
that a traceback quotes. Import errors are not masked by Airflow: the text must
hold no value at all.
"""

from __future__ import annotations

import json
import logging
import re

import pytest

from airflow_spark_streaming.utils.redaction import is_secret_key
from tests.support.secret_kinds import SECRET_KEY_ALTERNATIVES, SPARK_CONF_NAMES, STORAGE_OPTION_NAMES, needles
from tests.support.secret_kinds import secret_settings as settings

_HEADER = """
import json, os
from airflow.sdk import DAG
from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator, DeltaVacuumOperator
from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
from airflow_spark_streaming.sensors.delta import DeltaSmallFilesSensor

SECRETS = json.loads(os.environ["SEALED_PROBE_{name}"])
SPEC = {{"query_name": "q", "checkpoint_location": "/tmp/c", "source": {{"format": "rate"}},
        "sink": {{"format": "console"}}, "trigger": {{"available_now": True}}}}
with DAG("sealed_probe_{name}", schedule=None):
"""

#: name -> (the constructor call, with SECRETS the credentials; the values it is given; what the error must say)
PROBES = {
    "submit_conf": (
        "SparkStreamingSubmitOperator(task_id='p', spec=SPEC, conf={**SECRETS, 7: 'a key that is not a string'})",
        "spark", r"conf=<a dict, values not shown> must be a mapping of string keys.*not strings: 7",
    ),
    "submit_conf_json_text": (
        "SparkStreamingSubmitOperator(task_id='p', spec=SPEC, conf=json.dumps(SECRETS))",
        "spark", r"conf=<a str, not shown> must be a mapping",
    ),
    "delta_storage_options": (
        "DeltaOptimizeOperator(task_id='p', table_uri='/t', storage_options={**SECRETS, ('a', 'tuple'): 'x'})",
        "storage", r"storage_options=<a dict, values not shown> must be a mapping.*not strings: <a tuple>",
    ),
    "delta_spark_conf": (
        "DeltaVacuumOperator(task_id='p', table_uri='/t', engine='spark', spark_conf=[SECRETS])",
        "spark", r"spark_conf=<a list, not shown> must be a mapping",
    ),
    "sensor_storage_options": (
        "DeltaSmallFilesSensor(task_id='p', table_uri='/t', storage_options={**SECRETS, 3.5: 'x'})",
        "storage", r"storage_options=<a dict, values not shown> must be a mapping.*not strings: 3.5",
    ),
    "spec_options": (
        "SparkStreamingSubmitOperator(task_id='p', spec={**SPEC, 'source': {'format': 'rate', 'options': SECRETS},"
        " 'trigger': {'every_now_and_then': True}})",
        "spark", r"trigger",
    ),
}  # fmt: skip


def test_every_alternative_of_the_secret_pattern_has_a_kind():
    names = SPARK_CONF_NAMES + STORAGE_OPTION_NAMES
    assert all(map(is_secret_key, names))
    uncovered = [alt for alt in SECRET_KEY_ALTERNATIVES if not any(re.search(alt, n, re.I) for n in names)]
    assert uncovered == []


@pytest.fixture
def dag_folder(tmp_path, monkeypatch):
    """One DAG file per probe, each with fresh values (the secrets masker is process-wide)."""
    values = {}
    for name, (call, kind, _) in PROBES.items():
        secrets = settings(SPARK_CONF_NAMES if kind == "spark" else STORAGE_OPTION_NAMES, f"{name}-")
        values[name] = secrets
        monkeypatch.setenv(f"SEALED_PROBE_{name}", json.dumps(secrets))
        (tmp_path / f"probe_{name}.py").write_text(_HEADER.format(name=name) + f"    {call}\n")
    return tmp_path, values


def test_dagbag_import_errors_name_the_problem_and_hold_no_credential(dag_folder, caplog, capfd):
    from airflow.dag_processing.dagbag import DagBag

    folder, values = dag_folder
    caplog.set_level(logging.DEBUG)
    bag = DagBag(dag_folder=str(folder))
    logged = caplog.text + "".join(capfd.readouterr())

    assert bag.dags == {}
    errors = {path.rsplit("probe_", 1)[-1].removesuffix(".py"): text for path, text in bag.import_errors.items()}
    assert sorted(errors) == sorted(PROBES)
    for name, (_, _, problem) in PROBES.items():
        assert "InvalidParameterError" in errors[name] or "InvalidStreamSpecError" in errors[name], errors[name]
        leaked = {kind for value, kind in needles(values[name]).items() if value in errors[name] or value in logged}
        assert leaked == set(), f"{name}: {sorted(leaked)} in the import error or the log"
        assert re.search(problem, errors[name], re.DOTALL), errors[name]
    assert sum(len(v) for v in values.values()) >= 5 * len(SPARK_CONF_NAMES) // 2  # every kind in several probes
