"""Spark's own redaction settings: every name the provider treats as a credential, and nothing else.

The patterns are Java regular expressions written to read alike in Python's ``re``; the integration test
``test_spark_redaction_patterns_read_alike_in_java`` checks that claim with ``java.util.regex`` itself.
"""

from __future__ import annotations

import json
import re

import pytest

from airflow_spark_streaming.utils.redaction import (
    SPARK_DEFAULT_OPTIONS_REDACTION_REGEX,
    SPARK_DEFAULT_REDACTION_REGEX,
    SPARK_REDACTED,
    SPARK_SECRET_NAME_REGEX,
    SPARK_SECRET_TEXT_REGEX,
    is_secret_key,
    spark_redaction_conf,
)
from tests.support.secret_kinds import (
    PLAIN_SETTINGS,
    PLAIN_VALUES,
    SECRET_NAMES,
    SPARK_CONF_NAMES,
    needles,
    secret_settings,
)

KEY_REGEX = re.compile(spark_redaction_conf()["spark.redaction.regex"])
OPTIONS_REGEX = re.compile(spark_redaction_conf()["spark.sql.redaction.options.regex"])
TEXT_REGEX = re.compile(spark_redaction_conf()["spark.sql.redaction.string.regex"])
SPARK_DEFAULT = re.compile(SPARK_DEFAULT_REDACTION_REGEX)


def spark_redacts(regex: re.Pattern, name: str, value: str = "v") -> bool:
    """What Spark's ``Utils.redact`` decides: the pattern is found in the name or in the value."""
    return bool(regex.search(name) or regex.search(value))


def test_sparks_default_misses_provider_secrets_the_extension_covers():
    missed = [name for name in SECRET_NAMES if not SPARK_DEFAULT.search(name)]
    for name in ("spark.hadoop.fs.azure.account.key.lake.dfs.core.windows.net",
                 "spark.hadoop.fs.gs.auth.service.account.private.key", "kafka.sasl.jaas.config",
                 "spark.hadoop.fs.azure.sas.lake.blob.core.windows.net", "spark.hadoop.fs.gs.auth.client.credential",
                 "basic.auth.user.info", "spark.openlineage.transport.headers.Authorization"):  # fmt: skip
        assert name in missed
    assert [name for name in missed if not KEY_REGEX.search(name)] == []


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_every_secret_name_is_redacted_as_a_setting_and_as_an_option(name):
    assert is_secret_key(name)
    assert spark_redacts(KEY_REGEX, name) and spark_redacts(OPTIONS_REGEX, name)
    assert re.search(SPARK_SECRET_NAME_REGEX, name)


@pytest.mark.parametrize("name", PLAIN_SETTINGS)
def test_plain_settings_are_redacted_only_where_sparks_default_already_does(name):
    assert not re.search(SPARK_SECRET_NAME_REGEX, name)
    assert bool(KEY_REGEX.search(name)) == bool(SPARK_DEFAULT.search(name))
    assert not OPTIONS_REGEX.search(name) or re.search(SPARK_DEFAULT_OPTIONS_REDACTION_REGEX, name)


def test_the_extension_redacts_exactly_the_provider_secrets_and_sparks_own():
    for name in (*SECRET_NAMES, *PLAIN_SETTINGS):
        assert bool(KEY_REGEX.search(name)) == (is_secret_key(name) or bool(SPARK_DEFAULT.search(name))), name


@pytest.mark.parametrize("value", PLAIN_VALUES)
def test_plain_values_are_shown(value):
    assert not spark_redacts(KEY_REGEX, "spark.sql.shuffle.partitions", value)


def test_a_pem_private_key_value_is_redacted_whatever_its_setting_is_called():
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----"
    assert spark_redacts(KEY_REGEX, "kafka.ssl.truststore.certificates.extra", pem)


def test_the_tasks_own_settings_are_extended_once_never_replaced():
    own = {"spark.redaction.regex": r"(?i)corp\.vault", "spark.sql.redaction.options.regex": "(?i)dsn",
           "spark.sql.redaction.string.regex": r"corp=\S+", "spark.redaction.string.regex": "ignored"}  # fmt: skip
    extended = spark_redaction_conf(own)
    assert extended == {
        "spark.redaction.regex": rf"(?i)corp\.vault|{SPARK_SECRET_NAME_REGEX}",
        "spark.sql.redaction.options.regex": f"(?i)dsn|{SPARK_SECRET_NAME_REGEX}",
        "spark.sql.redaction.string.regex": rf"corp=\S+|{SPARK_SECRET_TEXT_REGEX}",
    }
    assert spark_redaction_conf({**own, **extended}) == extended  # a second preparation adds nothing
    key = re.compile(extended["spark.redaction.regex"])
    assert key.search("spark.corp.vault") and key.search("spark.hadoop.fs.azure.account.key.x") and key.search("x.pwd")
    assert re.compile(extended["spark.sql.redaction.options.regex"]).search("jdbc.DSN")
    assert re.sub(extended["spark.sql.redaction.string.regex"], SPARK_REDACTED, "corp=1 jdbc.pwd=2 n=3") == (
        f"{SPARK_REDACTED} {SPARK_REDACTED} n=3"
    )


def test_defaults_when_nothing_is_set_and_session_settings_leave_the_static_one_out():
    assert spark_redaction_conf() == {
        "spark.redaction.regex": f"{SPARK_DEFAULT_REDACTION_REGEX}|{SPARK_SECRET_NAME_REGEX}",
        "spark.sql.redaction.options.regex": f"{SPARK_DEFAULT_OPTIONS_REDACTION_REGEX}|{SPARK_SECRET_NAME_REGEX}",
        "spark.sql.redaction.string.regex": SPARK_SECRET_TEXT_REGEX,
    }
    assert set(spark_redaction_conf(session_only=True)) == {"spark.sql.redaction.options.regex",
                                                            "spark.sql.redaction.string.regex"}  # fmt: skip


def test_the_patterns_survive_a_users_comments_and_multiline_flags():
    for pattern in (SPARK_SECRET_NAME_REGEX, SPARK_SECRET_TEXT_REGEX):
        assert " " not in pattern and "#" not in pattern  # (?x) would drop both
    # A user's global (?x) or (?m) ahead of the extension changes nothing in it.
    for flags in ("(?x)", "(?m)"):
        key = re.compile(spark_redaction_conf({"spark.redaction.regex": f"{flags}corp"})["spark.redaction.regex"])
        assert key.search("spark.hadoop.fs.gs.auth.service.account.private.key")
        assert not key.search("spark.hadoop.fs.s3a.aws.credentials.provider")
        assert key.search("-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_secret_setting_in_text_loses_its_value(name):
    for text in (f"{name}=SENTINEL", f"{name}: SENTINEL", f"Map({name} -> SENTINEL, kafka.bootstrap.servers -> h:9)",
                 json.dumps({name: "SENTINEL", "spark.sql.shuffle.partitions": "2"}),
                 f"Map({name} -> 'SENT INEL')"):  # fmt: skip
        shown = TEXT_REGEX.sub(SPARK_REDACTED, text)
        assert "SENTINEL" not in shown and "SENT INEL" not in shown and SPARK_REDACTED in shown, shown
        assert "kafka.bootstrap.servers -> h:9" in shown or "kafka.bootstrap" not in text
        assert '"spark.sql.shuffle.partitions": "2"' in shown or "shuffle" not in text


def test_credentials_inside_longer_values_are_gone_from_text():
    """A JAAS config's password, an Authorization header's token, a user info's password, a PEM key."""
    settings = secret_settings(SPARK_CONF_NAMES, "text-")
    hidden = needles(settings)
    for name, value in settings.items():
        for text in (f"{name}={value}", f"Map({name} -> {value})", json.dumps({name: value})):
            shown = TEXT_REGEX.sub(SPARK_REDACTED, text)
            assert [kind for needle, kind in hidden.items() if needle in shown] == [], shown
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEsecret\n-----END RSA PRIVATE KEY-----"
    assert TEXT_REGEX.sub(SPARK_REDACTED, f"cert: {pem}, next") == f"cert: {SPARK_REDACTED}, next"


@pytest.mark.parametrize(
    "text",
    [
        "spark.sql.shuffle.partitions=200", "kafka.bootstrap.servers -> 127.0.0.1:9092", "kafka.sasl.mechanism=SCRAM",
        "spark.hadoop.fs.s3a.aws.credentials.provider=org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "Map(kafka.sasl.jaas.config -> *********(redacted), subscribe -> orders)",
        "Project [key#1, value#2, offset#3] +- StreamingRelationV2 kafka", "SELECT token FROM source",
        "password", "fs.azure.account.auth.type: SharedKey",
    ],
)  # fmt: skip
def test_text_without_a_secret_value_is_left_alone(text):
    assert TEXT_REGEX.sub(SPARK_REDACTED, text) == text
