"""Secrets sealed everywhere: one secret-key pattern, masked rendered fields, escaped properties, safe SQL text."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.exceptions import PartitionFilterError, TransformSqlError
from airflow_spark_streaming.hooks.delta import partition_filters_sql
from airflow_spark_streaming.kafka.options import SECRET_OPTIONS
from airflow_spark_streaming.runner.spec import validate_stream_spec
from airflow_spark_streaming.utils.redaction import escape_property, is_secret_key, secret_values
from tests.support.secret_kinds import CREDENTIAL_KEYS, NOT_CREDENTIALS


@pytest.mark.parametrize("key", CREDENTIAL_KEYS)
def test_every_credential_key_is_secret(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", NOT_CREDENTIALS)
def test_switches_and_class_names_are_not_secret(key):
    assert not is_secret_key(key)  # masking 'true' or a class name would blank it out of every log


def test_kafka_and_s3_secrets_agree_with_the_one_pattern():
    from airflow_spark_streaming.hooks.storage import SparkStorageConf, StorageHook  # noqa: F401

    assert all(map(is_secret_key, SECRET_OPTIONS))
    assert all(map(is_secret_key, ["fs.s3a.access.key", "fs.s3a.secret.key", "fs.s3a.session.token"]))


def test_secret_values_are_found_in_nested_and_json_string_specs():
    spec = {"source": {"options": {"kafka.sasl.jaas.config": 'x password="p1-secret";', "subscribe": "t"}},
            "conf": {"spark.openlineage.transport.auth.apiKey": "ol-key-123"}}  # fmt: skip
    # the JAAS config whole, and its password alone
    assert set(secret_values(spec)) == {'x password="p1-secret";', "p1-secret", "ol-key-123"}
    assert set(secret_values(json.dumps(spec))) == {'x password="p1-secret";', "p1-secret", "ol-key-123"}


def test_a_jaas_password_is_a_secret_value_as_written_and_unescaped():
    jaas = 'PlainLoginModule required username="svc" password="a\\"b\\\\c" clientSecret=bare-secret;'
    values = set(secret_values({"kafka.sasl.jaas.config": jaas}))
    assert values == {jaas, 'a\\"b\\\\c', 'a"b\\c', "bare-secret"}
    assert "svc" not in values  # the user name is not a credential


def test_the_masker_hides_a_jaas_password_quoted_on_its_own():
    from airflow.sdk.log import _secrets_masker

    from airflow_spark_streaming.utils.redaction import mask_secrets

    jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="Jq7-alone-pw";'
    mask_secrets({"options": {"kafka.sasl.jaas.config": jaas}})
    shown = str(_secrets_masker().redact("SASL login failed for password Jq7-alone-pw; config was cut"))
    assert "Jq7-alone-pw" not in shown


def test_redact_mapping_hides_every_secret_at_any_depth_and_the_control_key():
    from airflow_spark_streaming.runner.spec import redact_spec

    spec = {"control_key": "k" * 32, "source": {"options": {"subscribe": "t", "kafka.sasl.jaas.config": "j"},
            "kafka_connection": {"options": {"kafka.ssl.key.password": "p"}, "secret_values": ["p"]}}}  # fmt: skip
    shown = redact_spec(spec)
    assert shown["control_key"] == "***" and shown["source"]["options"] == {
        "subscribe": "t",
        "kafka.sasl.jaas.config": "***",
    }
    assert shown["source"]["kafka_connection"] == {"options": {"kafka.ssl.key.password": "***"}, "secret_values": "***"}
    assert spec["control_key"] == "k" * 32  # a copy


# --- rendered template fields, as the task runner stores them for the UI ------------------------

JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="ingest" password="jaas-pw-1";'
KEY_PASSWORD = "ssl-key-pw-2"
AZURE_KEY = "YXp1cmUtYWNjb3VudC1rZXk="


def _spec(jaas: str, key_password: str) -> dict:
    return {
        "query_name": "q",
        "checkpoint_location": "/tmp/cp",
        "source": {"format": "kafka", "options": {"kafka.bootstrap.servers": "b:9092", "subscribe": "t",
                                                   "kafka.sasl.jaas.config": jaas,
                                                   "kafka.ssl.key.password": key_password}},
        "sink": {"format": "delta", "path": "/tmp/t"},
    }  # fmt: skip


def _rendered(operator, **context) -> str:
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    operator.render_template_fields({"params": context, **context})
    return json.dumps(_serialize_rendered_fields(operator))


@pytest.mark.parametrize("form", ["dict", "json"])
@pytest.mark.parametrize("templated", [False, True], ids=["literal", "templated"])
def test_rendered_fields_show_no_secret(form, templated):
    from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator

    tag = f"{form}-{templated}"  # fresh values: the masker is process-wide
    jaas, key_password, azure = JAAS.replace("jaas-pw-1", f"jaas-{tag}"), f"{KEY_PASSWORD}-{tag}", f"{AZURE_KEY}{tag}"
    values = {"jaas": jaas, "key_password": key_password, "azure": azure}
    if templated:
        spec = _spec("{{ jaas }}", "{{ key_password }}")
        conf = {"spark.hadoop.fs.azure.account.key.lake.dfs.core.windows.net": "{{ azure }}"}
    else:
        spec = _spec(jaas, key_password)
        conf = {"spark.hadoop.fs.azure.account.key.lake.dfs.core.windows.net": azure}
    text = json.dumps(spec).replace('"{{ jaas }}"', "{{ jaas | tojson }}")  # a JAAS config holds quotes
    operator = SparkStreamingSubmitOperator(
        task_id=f"t_{form}_{templated}", spec=spec if form == "dict" else text, conf=conf
    )
    shown = _rendered(operator, **values)
    assert "***" in shown
    for secret in (jaas, json.dumps(jaas)[1:-1], key_password, azure, "jaas-" + tag):
        assert secret not in shown


# --- Java properties escaping --------------------------------------------------------------------


def test_properties_escape_line_breaks_separators_and_non_latin1():
    assert escape_property("a\rb.c=d", key=False) == "a\\rb.c\\=d"
    assert escape_property(" lead", key=False) == "\\ lead"
    assert escape_property("a b", key=True) == "a\\ b"
    assert escape_property("é€😀#!:\\\n\t", key=False) == "\\u00E9\\u20AC\\uD83D\\uDE00\\#\\!\\:\\\\\\n\\t"


# --- partition filters in Spark SQL --------------------------------------------------------------


def test_partition_filters_refuse_operators_outside_the_whitelist():
    for op in ("= 'eu' OR 1=1 --", "LIKE", "; DROP", "=="):
        with pytest.raises(PartitionFilterError, match="not one of"):
            partition_filters_sql([("region", op, "eu")])
    with pytest.raises(PartitionFilterError, match="needs a list"):
        partition_filters_sql([("region", "in", "eu")])
    with pytest.raises(PartitionFilterError, match="triple"):
        partition_filters_sql([("region", "=")])


def test_partition_filter_values_are_quoted_literals():
    where = partition_filters_sql([("region", "=", "eu' OR 1=1 --"), ("d`ay", "NOT IN", ["a\\", "b"])])
    assert where == "`region` = 'eu\\' OR 1=1 --' AND `d``ay` NOT IN ('a\\\\', 'b')"


# --- transform_sql at parse time ----------------------------------------------------------------

_SPEC = {"query_name": "q", "checkpoint_location": "/tmp/cp", "source": {"format": "rate"},
         "sink": {"format": "console"}}  # fmt: skip


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM source; DROP TABLE t",
        "SELECT * FROM source;",
        "DROP TABLE source",
        "INSERT INTO t SELECT * FROM source",
        "SELECT 1 -- FROM source",
        "SELECT 'source' AS s",
        "",
    ],
)
def test_transform_sql_must_be_one_select_over_source(sql):
    with pytest.raises(TransformSqlError):
        validate_stream_spec({**_SPEC, "transform_sql": sql})


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT value, ';' AS semi FROM source -- trailing; comment",
        "WITH s AS (SELECT * FROM `source`) SELECT * FROM s",
        "  /* lead */ select * from SOURCE",
    ],
)
def test_transform_sql_accepts_one_query(sql):
    assert validate_stream_spec({**_SPEC, "transform_sql": sql})["transform_sql"] == sql


def test_quote_identifier_doubles_backquotes_so_a_name_cannot_end_its_quoting():
    from airflow_spark_streaming.delta.sql import quote_identifier
    from airflow_spark_streaming.exceptions import DeltaMaintenanceError

    assert quote_identifier("customer_id") == "`customer_id`"
    assert quote_identifier("a`) ; DROP TABLE t; --") == "`a``) ; DROP TABLE t; --`"
    assert quote_identifier("``") == "``````"
    for bad in ("", None, 3):
        with pytest.raises(DeltaMaintenanceError, match="non-empty string"):
            quote_identifier(bad)
