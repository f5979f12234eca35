"""The confluent-kafka clients of a Kafka provider ``kafka`` connection, built one way for every Kafka hook.

:class:`KafkaClientHook` is the base of
:class:`~airflow_spark_streaming.hooks.kafka_lag.KafkaLagHook` and
:class:`~airflow_spark_streaming.hooks.kafka_broker.KafkaBrokerHook`: the connection, the
request timeout, and the clients. Every client is built by the Kafka provider's
``KafkaBaseHook`` from the connection's extra, so its config handling (allow-listed
callbacks, Google Managed Kafka and MSK IAM tokens) applies to all of them.

confluent_kafka is imported inside the methods, and so is the Kafka provider's hook module
(which imports confluent_kafka at its top): importing a Kafka hook stays cheap. That is also
why this base subclasses Airflow's ``BaseHook`` and hands the building to a ``KafkaBaseHook``
subclass made on first use, rather than subclassing ``KafkaBaseHook`` itself.

librdkafka never fails a request because the broker refused the login or the TLS handshake: it
retries, reports each refusal through the client's ``error_cb``, and the request times out. Every
client built here therefore gets an ``error_cb`` (chained to the connection's own, if it has one)
that records refusals and lost brokers in the hook's :class:`BrokerErrors`; :meth:`KafkaClientHook.wait`
serves those callbacks while it waits and fails as soon as a refusal arrives, with the named error
instead of a timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, TypeVar

from airflow.sdk import BaseHook

from airflow_spark_streaming.exceptions import (
    KafkaAccessError,
    KafkaAuthorizationError,
    KafkaBrokerUnreachableError,
    KafkaConfigError,
    KafkaLagError,
)

_Hook = TypeVar("_Hook", bound="KafkaClientHook")


@cache
def _provider_builder() -> type:
    """The Kafka provider's ``KafkaBaseHook``, with the client it builds made by a factory the caller gives."""
    from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook

    class ProviderClientBuilder(KafkaBaseHook):
        def __init__(self, kafka_config_id: str, factory: Callable[[dict[str, Any]], Any]) -> None:
            super().__init__(kafka_config_id=kafka_config_id)
            self.factory = factory

        def _get_client(self, config: dict[str, Any]) -> Any:  # the provider's extension point
            return self.factory(config)

    return ProviderClientBuilder


#: How often a wait serves the client's callbacks: a refusal surfaces this long after librdkafka reports it.
_POLL_SECONDS = 0.05
# librdkafka error names (KafkaError.name()): a request failed with one of these got no answer...
_UNREACHABLE_CODES = frozenset({"_TIMED_OUT", "_TRANSPORT", "_ALL_BROKERS_DOWN", "REQUEST_TIMED_OUT"})
# ...and error_cb reports lost brokers and failed connections with these.
_DOWN_CODES = frozenset({"_ALL_BROKERS_DOWN"})
_CONNECTIVITY_CODES = frozenset({"_TRANSPORT", "_RESOLVE", "_TIMED_OUT"})


class BrokerErrors:
    """What librdkafka reported through ``error_cb`` for the clients of one hook (and its siblings).

    Kept small whatever the client reports (it repeats a refusal every few hundred milliseconds):
    the first broker refusal (authentication, TLS handshake, authorization) and the latest
    all-brokers-down and connection errors, each with the monotonic time it was served.
    The connection's login (mechanism, user) is kept to name it in errors; its password only to
    remove it from any text, and never shown.
    """

    def __init__(self, kafka_config_id: str) -> None:
        self.kafka_config_id = kafka_config_id
        self._lock = threading.Lock()
        self._chained: Callable[[Any], Any] | None = None
        self.refusal: Any = None  # the first KafkaError that classify_kafka_error names
        self.down: tuple[float, str] | None = None  # latest "N/N brokers are down"
        self.connection: tuple[float, str] | None = None  # latest connect/transport error text
        self.protocol: str | None = None
        self.mechanism: str | None = None
        self.username: str | None = None
        self.bootstrap_servers: str | None = None
        self._secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never the password
        return f"BrokerErrors({self.kafka_config_id!r}, refusal={self.refusal!r}, down={self.down!r})"

    def install(self, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with this recorder as its ``error_cb`` (calling the connection's own after it)."""
        own = config.get("error_cb")
        if callable(own) and own is not self:
            self._chained = own
        self.protocol = str(config.get("security.protocol") or "PLAINTEXT").upper()
        mechanism = config.get("sasl.mechanism") or config.get("sasl.mechanisms")
        self.mechanism = str(mechanism).upper() if mechanism else None
        self.username = str(config["sasl.username"]) if config.get("sasl.username") else None
        self.bootstrap_servers = str(config.get("bootstrap.servers") or config.get("metadata.broker.list") or "")
        secrets = [config.get(k) for k in ("sasl.password", "ssl.key.password", "ssl.keystore.password")]
        self._secrets = tuple(str(v) for v in secrets if v)
        return {**config, "error_cb": self}

    def __call__(self, error: Any) -> None:
        """librdkafka's ``error_cb``: served by ``poll``/``consume`` on the calling thread."""
        from airflow_spark_streaming.kafka.options import classify_kafka_error

        name = str(error.name()) if callable(getattr(error, "name", None)) else ""
        text = error.str() if callable(getattr(error, "str", None)) else str(error)
        now = time.monotonic()
        refusal = self.refusal is None and classify_kafka_error(error) is not None
        with self._lock:
            if refusal and self.refusal is None:
                self.refusal = error
            if name in _DOWN_CODES:
                self.down = (now, text)
            elif name in _CONNECTIVITY_CODES:
                self.connection = (now, text)
        if self._chained is not None:
            self._chained(error)

    def access_error(self) -> KafkaAccessError | None:
        """The named error of the broker's refusal, if one was reported; it names the connection, the
        mechanism and the user, never the password."""
        with self._lock:
            refusal = self.refusal
        return None if refusal is None else self.named(refusal)

    def named(self, error: Any) -> KafkaAccessError | None:
        """The named error for ``error`` (a ``KafkaException`` or ``KafkaError`` a request failed with), if it
        is a broker refusal."""
        from airflow_spark_streaming.kafka.options import classify_kafka_error

        return classify_kafka_error(
            error,
            conn_id=self.kafka_config_id,
            secrets=self._secrets,
            mechanism=self.mechanism,
            username=self.username,
            protocol=self.protocol,
        )

    def connectivity(self, since: float) -> str | None:
        """What the client reported about its brokers since ``since`` (monotonic), for an unreachable error."""
        with self._lock:
            down, connection = self.down, self.connection
        parts = []
        if down is not None and down[0] >= since:
            parts.append(f"librdkafka reports {down[1]}")
        if connection is not None and connection[0] >= since:
            parts.append(f"the last connection attempt: {self._redact(connection[1])}")
        return "; ".join(parts) or None

    def read_denied(self, topics: Iterable[str], cause: Any, what: str) -> KafkaAuthorizationError:
        """The broker's ACLs deny this connection's principal READ on ``topics`` (``TOPIC_AUTHORIZATION_FAILED``
        while ``what``): the error names the topics, the principal and the grant that fixes it."""
        return self._topic_denied(
            "READ", "Read", topics, cause, what,
            "the reading consumer is assigned, not subscribed, so it needs no consumer group ACL",
        )  # fmt: skip

    def describe_denied(self, topics: Iterable[str], cause: Any, what: str) -> KafkaAuthorizationError:
        """The broker's ACLs deny this connection's principal DESCRIBE on ``topics``: it hides their partitions, so
        offset requests fail as if the partitions had no leader. The error names the grant that fixes it."""
        return self._topic_denied(
            "DESCRIBE", "Describe", topics, cause, what,
            "offsets and lag need DESCRIBE only; the time lag also needs READ",
        )  # fmt: skip

    def _topic_denied(self, operation: str, flag: str, topics: Iterable[str], cause: Any, what: str,
                      advice: str) -> KafkaAuthorizationError:  # fmt: skip
        names = sorted(set(topics))
        principal = f"User:{self.username}" if self.username else None
        text = cause.str() if callable(getattr(cause, "str", None)) else str(cause)
        return KafkaAuthorizationError(
            f"Kafka connection {self.kafka_config_id!r}: the broker's ACLs deny {principal or 'its principal'} "
            f"{operation} on topic{'s' if len(names) > 1 else ''} {', '.join(repr(n) for n in names)}, so {what} "
            f"failed. Grant {operation} (kafka-acls --add --allow-principal {principal or '<principal>'} "
            f"--operation {flag} --topic {names[0]}); {advice}. Cause: TOPIC_AUTHORIZATION_FAILED: {self._redact(text)}"
        )

    def _redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def topics_denied(client: Any, topics: Iterable[str], timeout: Callable[[], float]) -> tuple[list[str], Any]:
    """The ``topics`` whose metadata ``client`` (a consumer or an admin client) gets says
    ``TOPIC_AUTHORIZATION_FAILED``, and one such error; none when a metadata request gets no answer (the caller's
    own failure stands then). One request per topic, each allowed ``timeout()`` seconds."""
    from confluent_kafka import KafkaError, KafkaException

    denied, cause = [], None
    for topic in sorted(set(topics)):
        try:
            metadata = client.list_topics(topic, timeout=timeout())
        except KafkaException:
            return [], None
        error = getattr(metadata.topics.get(topic), "error", None)
        if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            denied.append(topic)
            cause = error
    return denied, cause


class KafkaClientHook(BaseHook):
    """Base of the hooks that talk to the brokers of a Kafka provider ``kafka`` connection.

    :param kafka_config_id: the ``kafka`` connection (default ``kafka_default``);
        its extra is the confluent-kafka client config.
    :param timeout: seconds each broker request may take before the hook gives up with
        :class:`~airflow_spark_streaming.exceptions.KafkaBrokerUnreachableError`. A broker that
        refuses the login or the TLS handshake fails the request as soon as the client reports it,
        with a :class:`~airflow_spark_streaming.exceptions.KafkaAccessError`.
    """

    conn_name_attr = "kafka_config_id"
    default_conn_name = "kafka_default"
    conn_type = "kafka"

    def __init__(self, kafka_config_id: str = default_conn_name, *, timeout: float = 15.0) -> None:
        super().__init__()
        if timeout <= 0:
            raise KafkaLagError(f"{type(self).__name__} timeout must be positive, got {timeout!r}.")
        self.kafka_config_id = kafka_config_id
        self.timeout = float(timeout)
        self._admin = None
        self.broker_errors = BrokerErrors(kafka_config_id)

    def build_client(self, factory: Callable[[dict[str, Any]], Any]) -> Any:
        """A new client made by ``factory`` (``AdminClient``, ``Consumer``, or a function returning one) from the
        connection's confluent-kafka config, as the Kafka provider resolves it, with this hook's
        :class:`BrokerErrors` as its ``error_cb``.

        :raises KafkaConfigError: the connection's extra is not a valid client config.
        """
        from confluent_kafka import KafkaException

        def recorded(config: dict[str, Any]) -> Any:
            return factory(self.broker_errors.install(config))

        try:
            return _provider_builder()(self.kafka_config_id, recorded).get_conn
        except (KafkaException, ValueError, TypeError) as err:
            raise KafkaConfigError(
                f"Kafka connection {self.kafka_config_id!r} has an invalid client config: {err}. "
                "Fix the connection's extra (confluent-kafka / librdkafka property names)."
            ) from err

    @property
    def admin(self):
        """The connection's confluent-kafka ``AdminClient``, built once."""
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = self.build_client(AdminClient)
        return self._admin

    def sibling(self, hook_class: type[_Hook]) -> _Hook:
        """Another Kafka hook on this connection, with this timeout, sharing this hook's ``AdminClient`` once it is
        built: no second connection to the brokers."""
        if isinstance(self, hook_class):
            return self
        other = hook_class(self.kafka_config_id, timeout=self.timeout)
        other._admin = self._admin
        other.broker_errors = self.broker_errors  # the shared client reports here
        return other

    def refuse_denied_describe(self, topics: set[str], what: str) -> None:
        """Raise :class:`KafkaAuthorizationError` if the brokers deny the principal DESCRIBE on any of ``topics``:
        librdkafka then reports only "No leaders found". One metadata request per topic, made after a failure."""
        denied, cause = topics_denied(self.admin, topics, lambda: self.timeout)
        if denied:
            raise self.broker_errors.describe_denied(denied, cause, what)

    # --- waiting for an answer ----------------------------------------------------------------

    def wait(self, future: Any, what: str) -> Any:
        """The result of an admin request's ``future``, serving the client's callbacks while it waits.

        Fails as soon as the client reports that the broker refused it, rather than when the
        request times out.

        :param what: the request, for the message (``"a metadata request for topic 'orders'"``).
        :raises KafkaAccessError: the broker refused the login, the TLS handshake or the request
            (:class:`~airflow_spark_streaming.exceptions.KafkaAuthenticationError`, ...).
        :raises KafkaBrokerUnreachableError: no answer in time, with what the client reported about its brokers.
        :raises KafkaException: any other failure of the request, for the caller to name.
        """
        import concurrent.futures

        from confluent_kafka import KafkaException

        started = time.monotonic()
        deadline = started + self.timeout + 5
        while True:
            concurrent.futures.wait([future], timeout=_POLL_SECONDS)
            self.serve_callbacks()
            if future.done():
                try:
                    return future.result()
                except KafkaException as err:
                    named = self._named(err, what, started)
                    if named is err:
                        raise
                    raise named from err
            refused = self.broker_errors.access_error()
            if refused is not None:
                future.cancel()
                raise refused
            if time.monotonic() >= deadline:
                raise self.unreachable(what, started, f"no answer after {time.monotonic() - started:.1f}s")

    def serve_callbacks(self) -> None:
        """Serve the admin client's queued callbacks (``error_cb``), so what it reported is recorded."""
        if self._admin is not None:
            self._admin.poll(0)

    def _named(self, err: Exception, what: str, started: float) -> Exception:
        """The provider error for a request that failed with ``err``, or ``err`` itself (the caller names it)."""
        named = self.broker_errors.named(err)
        if named is not None:
            return named
        error = err.args[0] if err.args else None
        code = str(error.name()) if callable(getattr(error, "name", None)) else None
        if code in _UNREACHABLE_CODES:
            return self.broker_errors.access_error() or self.unreachable(what, started, error)
        return err

    def unreachable(self, what: str, started: float, cause: Any) -> KafkaBrokerUnreachableError:
        """No answer to ``what`` in time: says what the client reported about its brokers meanwhile."""
        reported = self.broker_errors.connectivity(started)
        servers = self.broker_errors.bootstrap_servers
        return KafkaBrokerUnreachableError(
            f"The brokers of Kafka connection {self.kafka_config_id!r} did not answer {what} within "
            f"{self.timeout:g}s ({reported or cause}); check bootstrap.servers"
            f"{f' ({servers})' if servers else ''}, the network and the security settings."
        )
