"""One distinct random value for every kind of credential name the provider recognises (``utils/redaction.py``),
and the names (secret and plain) Spark's own redaction settings are checked against.

The acceptance tests of issue 23 put these into real runs and DAG files, then search
the process list, the task log, XCom, the rendered fields and the DAG import errors
for every value. Each alternative of ``SECRET_KEY`` has at least one name here;
``test_every_alternative_of_the_secret_pattern_has_a_kind`` keeps it that way.
"""

from __future__ import annotations

import re
import secrets

from airflow_spark_streaming.kafka.options import SECRET_OPTIONS

#: Spark settings, one name per alternative of the secret-name pattern (each also a Spark setting, so Spark
#: accepts it from the properties file; none changes what a local run does).
SPARK_CONF_NAMES = (
    "spark.ssl.keyStorePassword",  # passw(or)?d
    "spark.hadoop.fs.s3a.bucket.sealed.passwd",  # passwd
    "spark.hadoop.fs.s3a.secret.key",  # secret
    "spark.hadoop.fs.s3a.session.token",  # token
    "spark.kafka.sasl.jaas.config",  # jaas (a JAAS config with a password; see JAAS_NAMES)
    "spark.hadoop.fs.gs.auth.client.credential",  # credential
    "spark.ssl.sealed.passphrase",  # passphrase
    "spark.hadoop.fs.azure.sas.signature",  # signature
    "spark.hadoop.fs.azure.sas.lake.blob.core.windows.net",  # sas
    "spark.sealed.mail.smtp.auth.pass",  # *.auth.pass
    "spark.sealed.jdbc.pwd",  # pwd
    "spark.hadoop.fs.s3a.access.key",  # access key
    "spark.hadoop.fs.azure.account.key.lake.dfs.core.windows.net",  # account key
    "spark.hadoop.fs.gs.auth.service.account.private.key",  # private key
    "spark.openlineage.transport.auth.apiKey",  # api key
    "spark.hadoop.fs.s3a.encryption.key",  # encryption key
    "spark.ssl.keystore.key",  # keystore key
    "spark.sealed.auth_key",  # auth key
    "spark.sealed.client-key",  # client key
    "spark.hadoop.fs.azure.master_key",  # master key
    "spark.sealed.control.key",  # control key
    "spark.hadoop.google.cloud.auth.service.account.json.keyfile",  # keyfile
    "spark.ssl.key.pem",  # key.pem
    "spark.sealed.key_password",  # key_password
    "spark.sealed.key.json",  # key.json
    "spark.openlineage.transport.headers.Authorization",  # *.headers.Authorization ("Bearer <token>")
    "spark.kafka.schema.registry.basic.auth.user.info",  # basic.auth.user.info ("user:password")
)

#: delta-rs ``storage_options``: S3 secret key and session token, Azure keys (``azure_storage_master_key``).
STORAGE_OPTION_NAMES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "azure_storage_master_key",
    "AZURE_STORAGE_ACCOUNT_KEY", "azure_storage_sas_key", "master_key",
)  # fmt: skip


#: Every credential setting of the stores and services the provider talks to.
CREDENTIAL_KEYS = [
    # S3A
    "spark.hadoop.fs.s3a.access.key", "spark.hadoop.fs.s3a.secret.key", "spark.hadoop.fs.s3a.session.token",
    "spark.hadoop.fs.s3a.encryption.key", "spark.hadoop.fs.s3a.server-side-encryption.key",
    "spark.hadoop.fs.s3a.bucket.lake.secret.key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    # ABFS / WASB
    "spark.hadoop.fs.azure.account.key.lake.dfs.core.windows.net",
    "spark.hadoop.fs.azure.account.oauth2.client.secret", "spark.hadoop.fs.azure.sas.fixed.token",
    "spark.hadoop.fs.azure.sas.data.lake.blob.core.windows.net", "AZURE_STORAGE_ACCOUNT_KEY",
    # GCS
    "spark.hadoop.fs.gs.auth.service.account.private.key", "spark.hadoop.fs.gs.auth.service.account.private.key.id",
    "spark.hadoop.google.cloud.auth.service.account.json.keyfile", "spark.hadoop.fs.gs.auth.service.account.json.keyfile",
    # Kafka (SASL, SSL), Spark options and confluent-kafka spelling
    "kafka.sasl.jaas.config", "kafka.ssl.key.password", "kafka.ssl.keystore.password", "kafka.ssl.truststore.password",
    "kafka.ssl.keystore.key", "sasl.password", "ssl.key.pem", "ssl.key.password",
    # OpenLineage, Spark's own
    "spark.openlineage.transport.auth.apiKey", "spark.openlineage.transport.auth.api_key", "apikey",
    "spark.authenticate.secret", "spark.ssl.keyPassword", "spark.ssl.keyStorePassword",
    # Azure storage master keys, HTTP Authorization headers, Schema Registry, bare pass/pwd, the runner's HMAC key
    "master_key", "azure_storage_master_key", "spark.hadoop.fs.azure.masterKey",
    "spark.openlineage.transport.headers.Authorization", "spark.openlineage.transport.headers.authorization",
    "fs.s3a.custom.headers.AUTHORIZATION", "headers.Proxy-Authorization", "Authorization",
    "basic.auth.user.info", "kafka.schema.registry.basic.auth.user.info", "schema.registry.basic.auth.user.info",
    "mail.smtp.auth.pass", "db.auth.pass", "pwd", "jdbc.pwd", "DB_PWD", "control_key", "controlKey",
]  # fmt: skip
NOT_CREDENTIALS = [
    "subscribe", "kafka.bootstrap.servers", "maxOffsetsPerTrigger", "kafka.sasl.mechanism",
    "kafka.security.protocol", "spark.hadoop.fs.s3a.aws.credentials.provider", "spark.hadoop.fs.s3a.endpoint",
    "spark.hadoop.fs.azure.account.auth.type", "spark.hadoop.fs.azure.sas.token.provider.type",
    "spark.hadoop.fs.azure.account.oauth.provider.type", "spark.hadoop.fs.s3a.encryption.algorithm",
    "kafka.ssl.keystore.location", "kafka.ssl.keystore.type", "spark.openlineage.transport.url",
    "spark.openlineage.transport.headers.Content-Type", "hive.security.authorization.enabled",
    "master_key.provider", "control_key.algorithm", "basic.auth.user.info.type", "auth.pass.enabled",
    "spark.sql.bypass", "passthrough", "compass", "spark.master", "spark.hadoop.fs.s3a.authorization.class",
]  # fmt: skip


#: Every name the provider treats as a credential: the kinds of the acceptance runs, the credential settings of
#: each store and service, the Kafka options, and the Hadoop form of each Spark setting (without ``spark.hadoop.``,
#: as the event log's "Hadoop Properties" show it).
SECRET_NAMES = sorted(
    {*SPARK_CONF_NAMES, *STORAGE_OPTION_NAMES, *CREDENTIAL_KEYS, *SECRET_OPTIONS}
    | {name.removeprefix("spark.hadoop.") for name in (*SPARK_CONF_NAMES, *CREDENTIAL_KEYS)}
)
#: Settings a run carries that hold no credential: Spark must keep showing them.
PLAIN_SETTINGS = [
    *NOT_CREDENTIALS, "spark.sql.shuffle.partitions", "kafka.bootstrap.servers", "spark.executor.memory",
    "spark.eventLog.dir", "spark.jars.packages", "spark.sql.extensions", "spark.sql.catalog.spark_catalog",
    "spark.app.name", "spark.submit.deployMode", "startingOffsets", "groupIdPrefix", "checkpointLocation",
    "spark.hadoop.fs.azure.account.oauth2.client.endpoint", "spark.hadoop.fs.gs.project.id",
    "spark.hadoop.fs.gs.auth.service.account.enable", "spark.hadoop.fs.gs.auth.type", "kafka.ssl.truststore.type",
    "kafka.ssl.endpoint.identification.algorithm", "spark.redaction.regex", "spark.sql.redaction.string.regex",
]  # fmt: skip
#: Values a plain setting holds (Spark matches its redaction pattern against values too).
PLAIN_VALUES = ["200", "127.0.0.1:9092", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
                "SCRAM-SHA-512", "SASL_SSL", "io.delta.sql.DeltaSparkSessionExtension", "earliest", "1g", "true"]  # fmt: skip


_PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule required"


def random_value(kind: str) -> str:
    """A value no log line holds by chance; ``kind`` shows which one leaked."""
    return f"{kind}-{secrets.token_hex(8)}"


def secret_settings(names, tag: str) -> dict[str, str]:
    """``names`` each with a fresh value; JAAS configs, Authorization headers and user infos in their real shape."""
    settings = {}
    for index, name in enumerate(names):
        value = random_value(f"{tag}{index}")
        # Names whose value holds the credential inside a longer text (a part searched for on its own too).
        if "jaas" in name.lower():
            value = f'{_PLAIN_LOGIN} username="svc" password="{value}";'
        elif name.lower().endswith("authorization"):
            value = f"Bearer {value}"
        elif name.lower().endswith("user.info"):
            value = f"registry-user:{value}"
        settings[name] = value
    return settings


def needles(*mappings) -> dict[str, str]:
    """What must appear nowhere, by a name to report: every value whole, and the password of each
    JAAS config, Authorization header and user info on its own."""
    from airflow_spark_streaming.utils.redaction import secret_values

    found: dict[str, str] = {}
    for mapping in mappings:
        for name, value in mapping.items():
            for part in secret_values({name: value}):
                found.setdefault(part, name)
    return {value: name for value, name in found.items()}


def _alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of ``pattern``, each group of plain words expanded (``(access|api)key``)."""
    parts, depth, current = [], 0, ""
    for index, char in enumerate(pattern):
        escaped = pattern[index - 1 : index] == "\\"
        depth += (char == "(" and not escaped) - (char == ")" and not escaped)
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)

    def expand(alternative: str) -> list[str]:
        words = re.search(r"\(((?:[a-z]+\|)+[a-z]+)\)", alternative)
        if not words:
            return [alternative]
        head, tail = alternative[: words.start()], alternative[words.end() :]
        return [item for word in words.group(1).split("|") for item in expand(head + word + tail)]

    return [item for part in parts for item in expand(part)]


def _secret_key_alternatives() -> list[str]:
    from airflow_spark_streaming.utils.redaction import SECRET_KEY

    return _alternatives(SECRET_KEY.pattern)


#: Every kind of credential name ``is_secret_key`` recognises, one regular expression each.
SECRET_KEY_ALTERNATIVES = _secret_key_alternatives()
