"""A refused parameter names the parameter and the problem, never a credential: DAG import errors are not masked.

Before issue 23, each of these printed the secret into the DAG import error: the
validators repeated the whole value, and the constructors registered it with the
secrets masker only after validating it.
"""

from __future__ import annotations

import json
from itertools import count

import pytest

from airflow_spark_streaming.exceptions import InvalidParameterError, SparkStreamingError
from airflow_spark_streaming.utils import params
from airflow_spark_streaming.utils.redaction import mask_mapping_secrets

_serial = count()


def _secret() -> str:
    return f"Sx9-never-echoed-{next(_serial)}"  # fresh per case: the masker is process-wide


def _hostile(secret: str) -> list:
    """Values a user can pass by mistake, each holding ``secret`` where a credential goes."""
    return [
        {"spark.hadoop.fs.s3a.secret.key": secret, 1: "a key that is not a string"},
        {"fs.azure.account.key.lake": secret},
        {"harmless.looking.name": secret, ("tuple", "key"): 1},  # a mapping's values are never shown
        json.dumps({"kafka.sasl.jaas.config": f'x password="{secret}";'}),
        [("day", "=", "x"), {"fs.s3a.secret.key": secret}],
        ({"AZURE_STORAGE_MASTER_KEY": secret},),
        {"nested": {"spark.openlineage.transport.headers.Authorization": f"Bearer {secret}"}},
    ]


def _validators():
    owner = "SomeOperator(t)"
    return {
        "mapping": lambda name, value: params.mapping(owner, name, value),
        "seconds": lambda name, value: params.seconds(owner, name, value),
        "integer": lambda name, value: params.integer(owner, name, value),
        "positive_integer": lambda name, value: params.positive_integer(owner, name, value),
        "string_list": lambda name, value: params.string_list(owner, name, value),
        "choice": lambda name, value: params.choice(owner, name, value, ("a", "b")),
        "strict_bool": lambda name, value: params.strict_bool(owner, name, value),
        "partition_filters": lambda name, value: params.partition_filters(owner, name, value),
        "maven_coordinates": lambda name, value: params.maven_coordinates(owner, name, value),
    }


@pytest.mark.parametrize("validator", sorted(_validators()))
@pytest.mark.parametrize("case", range(len(_hostile("x"))))
def test_no_validator_echoes_a_secret(validator, case):
    secret = _secret()
    value = _hostile(secret)[case]
    try:
        _validators()[validator]("conf", value)
    except SparkStreamingError as err:
        assert secret not in str(err)
        assert "conf" in str(err)  # the parameter is named
    # some hostile values are valid for some validators (a mapping for mapping): then nothing was printed


@pytest.mark.parametrize("validator", sorted(set(_validators()) - {"mapping"}))
def test_a_value_under_a_secret_name_is_never_shown(validator):
    secret = _secret()
    with pytest.raises(SparkStreamingError) as caught:
        _validators()[validator]("kafka.ssl.key.password", secret)
    assert secret not in str(caught.value) and "kafka.ssl.key.password" in str(caught.value)


@pytest.mark.parametrize("value", ["spark.hadoop.fs.s3a.secret.key=plain-properties-text", ["a", "b"], 3, "{not json"])
def test_mapping_never_shows_its_value_only_its_type(value):
    with pytest.raises(InvalidParameterError, match=r"conf=<a \w+, not shown> must be a mapping") as caught:
        params.mapping("o", "conf", value)
    assert "plain-properties-text" not in str(caught.value)


def test_mapping_names_the_keys_that_are_not_strings_and_no_value():
    with pytest.raises(InvalidParameterError) as caught:
        params.mapping("o", "storage_options", {"AWS_SECRET_ACCESS_KEY": "v-123456", 7: "w-123456", (1,): "x"})
    message = str(caught.value)
    assert "7" in message and "<a tuple>" in message
    assert not any(v in message for v in ("v-123456", "w-123456"))


def test_plain_values_are_still_shown_where_they_help():
    with pytest.raises(InvalidParameterError, match="poll_interval='30' is not a duration"):
        params.seconds("o", "poll_interval", "30")
    with pytest.raises(InvalidParameterError, match=r"zorder_by='user_id' must be a list"):
        params.string_list("o", "zorder_by", "user_id")
    assert params.shown("x", {"a": 1}) == "<a dict with keys 'a'; values not shown>"
    assert params.shown("x", "y" * 500) == "<a str of 500 characters>"


# --- the four probes of issue 23, through the real constructors ------------------------------


def _probes(secret: str):
    from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator
    from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator
    from airflow_spark_streaming.sensors.delta import DeltaSmallFilesSensor

    bad = {"spark.hadoop.fs.s3a.secret.key": secret, 1: "x"}
    spec = {"query_name": "q", "checkpoint_location": "/c", "source": {"format": "rate"}, "sink": {"format": "console"}}
    return {
        "submit conf": lambda: SparkStreamingSubmitOperator(task_id="p1", spec=spec, conf=bad),
        "submit conf as JSON text": lambda: SparkStreamingSubmitOperator(task_id="p1j", spec=spec, conf=json.dumps(
            {"spark.hadoop.fs.s3a.secret.key": secret})),
        "delta storage_options": lambda: DeltaOptimizeOperator(task_id="p2", table_uri="/t", storage_options=bad),
        "delta spark_conf": lambda: DeltaOptimizeOperator(task_id="p3", table_uri="/t", spark_conf=bad),
        "sensor storage_options": lambda: DeltaSmallFilesSensor(task_id="p4", table_uri="/t", storage_options=bad),
    }  # fmt: skip


@pytest.mark.parametrize("probe", sorted(_probes("x")))
def test_a_refused_constructor_prints_no_secret_into_the_import_error(probe):
    secret = _secret()
    with pytest.raises(InvalidParameterError) as caught:
        _probes(secret)[probe]()
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)


# --- registering with the masker before validating --------------------------------------------


def _masked(text: str) -> str:
    from airflow.sdk.log import _secrets_masker

    return str(_secrets_masker().redact(text))


def test_mask_mapping_secrets_registers_before_any_validation_and_returns_the_value():
    secret, jaas_password, header = _secret(), _secret(), _secret()
    value = {
        "spark.hadoop.fs.s3a.secret.key": secret,
        1: "a key that is not a string",
        "kafka.sasl.jaas.config": f'm required username="u" password="{jaas_password}";',
        "spark.openlineage.transport.headers.Authorization": f"Bearer {header}",
    }
    assert mask_mapping_secrets(value) is value
    with pytest.raises(InvalidParameterError):
        params.mapping("o", "conf", value)
    for leaked in (secret, jaas_password, header):
        assert leaked not in _masked(f"import error: {leaked}")


@pytest.mark.parametrize(
    "value",
    [None, "", "{{ var.value.conf }}", "{not json", [1, None, {"x": object()}], object(), 3, {(1, 2): {"y": None}}],
)
def test_mask_mapping_secrets_takes_anything_and_never_raises(value):
    assert mask_mapping_secrets(value) is value


def test_mask_mapping_secrets_survives_hostile_nesting():
    deep: dict = {}
    node = deep
    for _ in range(10_000):
        node["n"] = {}
        node = node["n"]
    assert mask_mapping_secrets(deep) is deep
    assert mask_mapping_secrets("[" * 100_000) == "[" * 100_000
