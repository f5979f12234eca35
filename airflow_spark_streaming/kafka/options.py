"""Translate a Kafka provider ``kafka`` connection (a confluent-kafka config) into Spark's ``kafka.*`` options.

One connection serves the stream (Spark's Java Kafka client) and the lag hook
and sensors (confluent-kafka). Every key of the connection's extra is either
translated, explicitly ignored as client-only, or refused with a
:class:`KafkaConnectionConfigError` that names the key and the fix; nothing is
silently dropped. Secret options (the JAAS config, key material and passwords)
are listed so callers keep them off command lines and register them with the
secrets masker.

Standard library only: imported on the DAG-parse path and by the Spark job.
Longer than most modules because the translation table, its refusals and the
classifier of the broker's refusals are one contract and are read together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_spark_streaming.exceptions import (
    KafkaAccessError,
    KafkaAuthenticationError,
    KafkaAuthorizationError,
    KafkaAuthUnsupportedError,
    KafkaConnectionIncompleteError,
    KafkaConnectionKeyUnsupportedError,
    KafkaTlsFileError,
    KafkaTlsHandshakeError,
)
from airflow_spark_streaming.utils.redaction import is_secret_key

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
SECRET_OPTIONS = frozenset(
    {
        "kafka.sasl.jaas.config",
        "kafka.ssl.key.password",
        "kafka.ssl.keystore.key",
        "kafka.ssl.keystore.password",
        "kafka.ssl.truststore.password",
    }
)
# confluent-kafka settings that only shape that client (consumer groups, its
# own logging and socket tuning); Spark's client has its own or needs none.
IGNORED_KEYS = frozenset(
    {
        "group.id", "group.instance.id", "client.id", "auto.offset.reset", "enable.auto.commit",
        "auto.commit.interval.ms", "enable.auto.offset.store", "enable.partition.eof", "session.timeout.ms",
        "heartbeat.interval.ms", "max.poll.interval.ms", "socket.keepalive.enable", "socket.timeout.ms",
        "socket.connection.setup.timeout.ms", "api.version.request", "broker.version.fallback", "log_level",
        "debug", "statistics.interval.ms", "log.connection.close", "reconnect.backoff.ms",
        "reconnect.backoff.max.ms", "retry.backoff.ms", "topic.metadata.refresh.interval.ms", "metadata.max.age.ms",
        "error_cb", "stats_cb", "log_cb", "throttle_cb", "on_commit",
    }
)  # fmt: skip
TRANSLATED_KEYS = frozenset(
    {
        "bootstrap.servers", "metadata.broker.list", "security.protocol", "sasl.mechanism", "sasl.mechanisms",
        "sasl.username", "sasl.password", "ssl.ca.location", "ssl.ca.pem", "ssl.certificate.location",
        "ssl.certificate.pem", "ssl.key.location", "ssl.key.pem", "ssl.key.password", "ssl.keystore.location",
        "ssl.keystore.password", "ssl.endpoint.identification.algorithm", "enable.ssl.certificate.verification",
    }
)  # fmt: skip
_OAUTH_FIX = (
    "Spark's Java Kafka client cannot call a confluent-kafka token callback. Use SCRAM, PLAIN or mutual TLS "
    "credentials in this connection, or leave kafka_config_id unset and give Spark's own OAUTHBEARER login "
    "options (kafka.sasl.login.callback.handler.class, kafka.sasl.oauthbearer.token.endpoint.url, ...) in the "
    "spec's source/sink options."
)
_KERBEROS_FIX = (
    "Kerberos is configured on the Spark side, not in the connection: leave kafka_config_id unset, submit with "
    "spark-submit's --principal/--keytab and give kafka.sasl.kerberos.service.name and "
    "kafka.security.protocol in the spec's source/sink options."
)


@dataclass(frozen=True)
class KafkaTimeouts:
    """Bounds that make a refused or unreachable broker fail a Spark query in seconds, not minutes.

    ``request_timeout_ms`` applies to every Kafka client; ``default_api_timeout_ms``
    bounds the consumer's and admin client's blocking calls (Spark's offset
    lookups); ``fetch_offset_num_retries`` x ``fetch_offset_retry_interval_ms``
    is how long Spark's source retries a failed offset lookup; ``max_block_ms``
    and ``delivery_timeout_ms`` bound the sink's producer.
    """

    request_timeout_ms: int = 15_000
    default_api_timeout_ms: int = 30_000
    fetch_offset_num_retries: int = 2
    fetch_offset_retry_interval_ms: int = 500
    max_block_ms: int = 30_000
    delivery_timeout_ms: int = 45_000


@dataclass
class SparkKafkaOptions:
    """Spark Kafka options made from one ``kafka`` connection. JSON-serialisable.

    ``options`` hold the connection and security settings shared by source and
    sink; :meth:`for_source` and :meth:`for_sink` add the bounded timeouts of
    each side. ``secret_keys`` name the options whose values are secret;
    ``secret_values`` are the raw secrets (passwords, private keys) the caller
    registers with the secrets masker.
    """

    options: dict[str, str]
    source_options: dict[str, str]
    sink_options: dict[str, str]
    secret_keys: list[str]
    secret_values: list[str] = field(repr=False)
    ignored_keys: list[str] = field(default_factory=list)

    def for_source(self) -> dict[str, str]:
        return {**self.options, **self.source_options}

    def for_sink(self) -> dict[str, str]:
        return {**self.options, **self.sink_options}

    def redacted(self) -> dict[str, str]:
        """The source options with every secret value replaced, safe to log."""
        return {k: ("***" if k in self.secret_keys else v) for k, v in self.for_source().items()}

    def __repr__(self) -> str:  # never print secrets by accident
        return f"SparkKafkaOptions({self.redacted()!r})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SparkKafkaOptions:
        return cls(**data)


def jaas_quote(value: str) -> str:
    """``value`` as a double-quoted JAAS option value (Kafka parses it with Java's StreamTokenizer)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def jaas_config(mechanism: str, username: str, password: str) -> str:
    module = LOGIN_MODULES[mechanism]
    return f"{module} required username={jaas_quote(username)} password={jaas_quote(password)};"


def _text(config: Mapping[str, Any], key: str, conn: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if not isinstance(value, str):
        raise KafkaConnectionKeyUnsupportedError(
            f"Kafka connection {conn}: {key!r} is a {type(value).__name__}, not a string; only JSON strings, "
            "numbers and booleans can be translated to Spark options. Fix the connection's extra."
        )
    return value.strip()


def _refuse_unsupported(config: Mapping[str, Any], conn: str, ignore: frozenset[str]) -> list[str]:
    ignored = []
    for key in config:
        if key in TRANSLATED_KEYS:
            continue
        if key == "oauth_cb" or key.startswith("sasl.oauthbearer."):
            raise KafkaAuthUnsupportedError(f"Kafka connection {conn} sets {key!r} (OAUTHBEARER). {_OAUTH_FIX}")
        if key.startswith("sasl.kerberos."):
            raise KafkaAuthUnsupportedError(f"Kafka connection {conn} sets {key!r} (Kerberos). {_KERBEROS_FIX}")
        if key in IGNORED_KEYS or key in ignore:
            ignored.append(key)
            continue
        raise KafkaConnectionKeyUnsupportedError(
            f"Kafka connection {conn} sets {key!r}, which has no translation to Spark's Kafka options, so the "
            "stream would run without it. Remove it from the connection's extra; if it only matters to "
            "confluent-kafka clients (the lag hook), list it in kafka_ignore_keys; if Spark needs it, give "
            f"'kafka.{key}' (Java client name) in the spec's source/sink options."
        )
    return sorted(ignored)


def _bootstrap(config: Mapping[str, Any], conn: str) -> str:
    raw = _text(config, "bootstrap.servers", conn) or _text(config, "metadata.broker.list", conn)
    if not raw:
        raise KafkaConnectionIncompleteError(
            f"Kafka connection {conn} has no 'bootstrap.servers'; set it in the connection's extra, "
            'for example {"bootstrap.servers": "broker1:9093,broker2:9093"}.'
        )
    servers = []
    for server in (s.strip() for s in raw.split(",")):
        if not server:
            continue
        host_port = server.split("://", 1)[-1]
        servers.append(host_port if ":" in host_port else f"{host_port}:9092")  # librdkafka's default port
    return ",".join(servers)


def _mechanism(config: Mapping[str, Any], conn: str) -> str:
    one, many = _text(config, "sasl.mechanism", conn), _text(config, "sasl.mechanisms", conn)
    if one and many and one.upper() != many.upper():
        raise KafkaConnectionIncompleteError(
            f"Kafka connection {conn} sets sasl.mechanism={one!r} and sasl.mechanisms={many!r}; keep one of them."
        )
    mechanism = (one or many or "GSSAPI").upper()  # GSSAPI is librdkafka's default
    if mechanism == "OAUTHBEARER":
        raise KafkaAuthUnsupportedError(f"Kafka connection {conn} uses sasl.mechanism=OAUTHBEARER. {_OAUTH_FIX}")
    if mechanism == "GSSAPI":
        raise KafkaAuthUnsupportedError(
            f"Kafka connection {conn} uses SASL with sasl.mechanism={'GSSAPI' if one or many else 'unset (GSSAPI)'}."
            f" Set sasl.mechanism to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 for password login; for Kerberos: "
            f"{_KERBEROS_FIX}"
        )
    if mechanism not in LOGIN_MODULES:
        raise KafkaAuthUnsupportedError(
            f"Kafka connection {conn} uses sasl.mechanism={mechanism!r}; supported are {', '.join(LOGIN_MODULES)}."
        )
    return mechanism


def _pem(content: str, what: str, key: str, conn: str, marker: str) -> str:
    if marker not in content:
        raise KafkaTlsFileError(f"Kafka connection {conn}: {key} ({what}) holds no '{marker}' PEM block.")
    return content


def _read(read_text: Callable[[str], str], path: str, key: str, conn: str) -> str:
    try:
        return read_text(path)
    except OSError as err:
        raise KafkaTlsFileError(
            f"Kafka connection {conn}: cannot read {key}={path!r} ({err.strerror or err}); the file must exist "
            "and be readable on the machine that builds the Spark options (the Airflow worker)."
        ) from err


def _tls_options(config, conn: str, embed_files: bool, read_text, out: dict, secrets: list) -> None:
    ca_path, ca_pem = _text(config, "ssl.ca.location", conn), _text(config, "ssl.ca.pem", conn)
    if ca_pem or (ca_path and ca_path != "probe"):  # "probe": system CAs, the JVM's own truststore
        out["kafka.ssl.truststore.type"] = "PEM"
        if ca_pem or embed_files:
            certs = ca_pem or _read(read_text, ca_path, "ssl.ca.location", conn)
            out["kafka.ssl.truststore.certificates"] = _pem(certs, "CA", "ssl.ca", conn, "BEGIN CERTIFICATE")
        else:
            out["kafka.ssl.truststore.location"] = ca_path

    verify = _text(config, "enable.ssl.certificate.verification", conn)
    if verify is not None and verify.lower() in ("false", "0"):
        raise KafkaConnectionKeyUnsupportedError(
            f"Kafka connection {conn} sets enable.ssl.certificate.verification=false; Spark's Java client always "
            "verifies the broker certificate. Put the broker's CA in ssl.ca.location instead."
        )
    identification = _text(config, "ssl.endpoint.identification.algorithm", conn)
    if identification is not None:
        out["kafka.ssl.endpoint.identification.algorithm"] = "" if identification.lower() == "none" else identification

    cert_path, key_path = _text(config, "ssl.certificate.location", conn), _text(config, "ssl.key.location", conn)
    cert_pem, key_pem = _text(config, "ssl.certificate.pem", conn), _text(config, "ssl.key.pem", conn)
    key_password = _text(config, "ssl.key.password", conn)
    keystore, keystore_password = (
        _text(config, "ssl.keystore.location", conn),
        _text(config, "ssl.keystore.password", conn),
    )
    has_cert, has_key = bool(cert_path or cert_pem), bool(key_path or key_pem)
    if keystore and (has_cert or has_key):
        raise KafkaConnectionIncompleteError(
            f"Kafka connection {conn} sets both ssl.keystore.location and PEM certificate/key settings; keep one."
        )
    if keystore:  # librdkafka's keystore is PKCS#12
        out.update({"kafka.ssl.keystore.type": "PKCS12", "kafka.ssl.keystore.location": keystore})
        if keystore_password:
            out["kafka.ssl.keystore.password"] = keystore_password
            secrets.append(keystore_password)
        return
    if has_cert != has_key:
        missing = (
            "ssl.key.location (or ssl.key.pem)" if has_cert else "ssl.certificate.location (or ssl.certificate.pem)"
        )
        raise KafkaConnectionIncompleteError(
            f"Kafka connection {conn} gives half of a client certificate for mutual TLS; add {missing}."
        )
    if not has_cert:
        if key_password:
            raise KafkaConnectionIncompleteError(
                f"Kafka connection {conn} sets ssl.key.password but no client key; remove it or add the key."
            )
        return
    out["kafka.ssl.keystore.type"] = "PEM"
    if not (cert_pem or key_pem or embed_files):
        if cert_path != key_path:
            raise KafkaTlsFileError(
                f"Kafka connection {conn}: Spark's Java client reads a PEM client key and its certificate chain "
                f"from ONE file, but ssl.certificate.location={cert_path!r} and ssl.key.location={key_path!r} "
                "differ. Concatenate them into one file and point both keys at it, or embed the files."
            )
        out["kafka.ssl.keystore.location"] = cert_path
    else:
        chain = cert_pem or _read(read_text, cert_path, "ssl.certificate.location", conn)
        key = key_pem or _read(read_text, key_path, "ssl.key.location", conn)
        out["kafka.ssl.keystore.certificate.chain"] = _pem(chain, "client certificate", "ssl.certificate", conn,
                                                           "BEGIN CERTIFICATE")  # fmt: skip
        if "BEGIN RSA PRIVATE KEY" in key or "BEGIN EC PRIVATE KEY" in key:
            raise KafkaTlsFileError(
                f"Kafka connection {conn}: the client key (ssl.key) is a PKCS#1/SEC1 key, which Java cannot read. "
                "Convert it to PKCS#8: 'openssl pkcs8 -topk8 -in key.pem -out key.pk8.pem' (add -nocrypt for an "
                "unencrypted key) and point ssl.key.location at the result."
            )
        encrypted = "BEGIN ENCRYPTED PRIVATE KEY" in key
        if encrypted != bool(key_password):
            raise KafkaConnectionIncompleteError(
                f"Kafka connection {conn}: the client key is {'encrypted' if encrypted else 'not encrypted'} but "
                f"ssl.key.password is {'missing' if encrypted else 'set'}; "
                f"{'add' if encrypted else 'remove'} ssl.key.password."
            )
        out["kafka.ssl.keystore.key"] = _pem(key, "client key", "ssl.key", conn, "PRIVATE KEY")
        secrets.append(key)
    if key_password:
        out["kafka.ssl.key.password"] = key_password
        secrets.append(key_password)


def spark_kafka_options(
    config: Mapping[str, Any],
    *,
    conn_id: str | None = None,
    embed_files: bool = True,
    ignore_keys: Iterable[str] = (),
    timeouts: KafkaTimeouts | None = None,
    read_text: Callable[[str], str] | None = None,
) -> SparkKafkaOptions:
    """Spark ``kafka.*`` options equivalent to the confluent-kafka ``config``.

    :param config: a ``kafka`` connection's extra (confluent-kafka / librdkafka property names).
    :param conn_id: the connection's id, named in errors.
    :param embed_files: put the contents of ``ssl.ca.location``, ``ssl.certificate.location`` and
        ``ssl.key.location`` into the options (``kafka.ssl.truststore.certificates``, ...), so the
        Spark driver and executors need no copy of the files; ``False`` passes the paths, which must
        then exist on every Spark node.
    :param ignore_keys: more connection keys to accept without translation (they only matter to
        confluent-kafka clients).
    :param timeouts: bounds on how long a refused or unreachable broker can stall a query.
    :param read_text: reads a PEM file (default: the local file system).
    """
    conn = repr(conn_id) if conn_id else "(unnamed)"
    ignored = _refuse_unsupported(config, conn, frozenset(ignore_keys))
    read_text = read_text or (lambda path: Path(path).read_text())
    timeouts = timeouts or KafkaTimeouts()
    out: dict[str, str] = {"kafka.bootstrap.servers": _bootstrap(config, conn)}
    secrets: list[str] = []

    protocol = (_text(config, "security.protocol", conn) or "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise KafkaConnectionIncompleteError(
            f"Kafka connection {conn} has security.protocol={protocol!r}; use one of {', '.join(PROTOCOLS)}."
        )
    out["kafka.security.protocol"] = protocol

    sasl_keys = sorted(
        k for k in ("sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password") if k in config
    )
    if protocol.startswith("SASL_"):
        mechanism = _mechanism(config, conn)
        username, password = _text(config, "sasl.username", conn), config.get("sasl.password")
        if not username or password in (None, ""):
            raise KafkaConnectionIncompleteError(
                f"Kafka connection {conn} uses {protocol} with {mechanism} but lacks "
                f"{'sasl.username' if not username else 'sasl.password'}; add it to the connection's extra."
            )
        password = str(password)
        out["kafka.sasl.mechanism"] = mechanism
        out["kafka.sasl.jaas.config"] = jaas_config(mechanism, username, password)
        # The password on its own (a login error or a cut-off config quotes just it), as given and as the JAAS
        # config escapes it; the whole config is registered as a secret option below.
        secrets.extend(dict.fromkeys([password, jaas_quote(password)[1:-1]]))
    elif sasl_keys:
        raise KafkaConnectionIncompleteError(
            f"Kafka connection {conn} sets {', '.join(sasl_keys)} but security.protocol is {protocol}, so they would "
            "be ignored; set security.protocol to SASL_SSL (or SASL_PLAINTEXT), or remove them."
        )

    tls_keys = sorted(k for k in config if k.startswith("ssl.") or k == "enable.ssl.certificate.verification")
    if protocol.endswith("SSL"):
        _tls_options(config, conn, embed_files, read_text, out, secrets)
    elif tls_keys:
        raise KafkaConnectionIncompleteError(
            f"Kafka connection {conn} sets {', '.join(tls_keys)} but security.protocol is {protocol}, so they would "
            "be ignored; set security.protocol to SSL or SASL_SSL, or remove them."
        )

    out["kafka.request.timeout.ms"] = str(timeouts.request_timeout_ms)
    source = {
        "kafka.default.api.timeout.ms": str(timeouts.default_api_timeout_ms),
        "fetchOffset.numRetries": str(timeouts.fetch_offset_num_retries),
        "fetchOffset.retryIntervalMs": str(timeouts.fetch_offset_retry_interval_ms),
    }
    sink = {
        "kafka.max.block.ms": str(timeouts.max_block_ms),
        "kafka.delivery.timeout.ms": str(max(timeouts.delivery_timeout_ms, timeouts.request_timeout_ms)),
    }
    secret_keys = sorted(k for k in out if is_secret_key(k))  # the provider's one pattern; covers SECRET_OPTIONS
    secret_values = list(dict.fromkeys([*secrets, *(out[k] for k in secret_keys)]))
    return SparkKafkaOptions(out, source, sink, secret_keys, secret_values, ignored)


# Java exception class names (Spark, through Py4J), librdkafka error names (confluent-kafka) and message text.
_TLS = ("SslAuthenticationException", "SSLHandshakeException", "PKIX path building failed",
        "certificate verify failed", "SSL handshake failed")  # fmt: skip
_TLS_CODES = frozenset({"_SSL"})
_AUTHORIZATION = ("TopicAuthorizationException", "GroupAuthorizationException", "ClusterAuthorizationException",
                  "Not authorized to access")  # fmt: skip
_AUTHORIZATION_CODES = frozenset(
    {"TOPIC_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED"}
)
_AUTHENTICATION = ("SaslAuthenticationException", "Authentication failed", "SASL authentication error")
_AUTHENTICATION_CODES = frozenset({"SASL_AUTHENTICATION_FAILED", "_AUTHENTICATION"})


def _describe_chain(exc: object) -> tuple[str, set[str]]:
    """The text of ``exc`` and its causes, and the librdkafka error names found in them."""
    parts, codes, seen, current = [], set(), set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        for candidate in (current, *getattr(current, "args", ())[:1]):
            name = getattr(candidate, "name", None)  # confluent_kafka.KafkaError
            if callable(name):
                codes.add(str(name()))
        current = getattr(current, "__cause__", None) or getattr(current, "__context__", None)
    return "\n".join(parts), codes


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def classify_kafka_error(
    exc: object,
    *,
    conn_id: str | None = None,
    secrets: Iterable[str] = (),
    mechanism: str | None = None,
    username: str | None = None,
    protocol: str | None = None,
) -> KafkaAccessError | None:
    """A named provider error for a broker's refusal in ``exc``, else ``None`` (re-raise ``exc`` then).

    Recognises Spark's Java errors (as Py4J/pyspark exception text), confluent-kafka's
    ``KafkaException`` and a bare ``KafkaError`` (as an ``error_cb`` receives it). ``secrets`` are removed from
    the message; chain it with ``raise ... from None`` when the original text may carry them. ``mechanism``,
    ``username`` and ``protocol`` (the connection's ``sasl.mechanism``, ``sasl.username`` and
    ``security.protocol``), when given, are named in the message.
    """
    chain, codes = _describe_chain(exc)
    conn = f"Kafka connection {conn_id!r}" if conn_id else "The Kafka connection"
    lines = [line for line in chain.splitlines() if line.strip()]
    cause = _redact(" | ".join(lines)[:600], secrets)
    over = f" over {protocol}" if protocol else ""
    if codes & _TLS_CODES or any(marker in chain for marker in _TLS):
        return KafkaTlsHandshakeError(
            f"{conn}: the TLS handshake{over} with the broker failed (the broker's certificate is not trusted, or "
            "the host name does not match it). Set ssl.ca.location to the CA that signed the broker certificate. "
            f"Cause: {cause}"
        )
    user = f" {username!r}" if username else ""
    if codes & _AUTHORIZATION_CODES or any(marker in chain for marker in _AUTHORIZATION):
        return KafkaAuthorizationError(
            f"{conn}: the broker authenticated the user{user} but its ACLs deny the request (topic or consumer "
            f"group). Ask the Kafka admins for READ/DESCRIBE (source) or WRITE (sink) on the topic. Cause: {cause}"
        )
    if codes & _AUTHENTICATION_CODES or any(marker in chain for marker in _AUTHENTICATION):
        if username or mechanism:
            login = f"the SASL login of user{user or ' (unset)'} with mechanism {mechanism or '(unset)'}{over}"
            return KafkaAuthenticationError(
                f"{conn}: authentication failed: the broker rejected {login} (a wrong sasl.password, an unknown "
                "sasl.username, or a sasl.mechanism the broker does not enable). Check the connection's "
                f"credentials. Cause: {cause}"
            )
        return KafkaAuthenticationError(
            f"{conn}: authentication failed: the broker rejected the login (wrong sasl.username/sasl.password, "
            f"unknown user, or a mechanism the broker does not enable). Check the connection's credentials. "
            f"Cause: {cause}"
        )
    return None
