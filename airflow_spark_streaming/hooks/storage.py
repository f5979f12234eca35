"""Object-storage credentials from an Airflow ``aws`` connection, for every engine the provider drives.

One ``storage_conn_id`` (an ``aws`` connection: key in login/password, or any
credential source the amazon provider resolves; a custom endpoint in its extra
as ``endpoint_url``) becomes:

- delta-rs ``storage_options`` (:meth:`StorageHook.delta_storage_options`);
- Spark ``spark.hadoop.fs.s3a.*`` settings, split into what may go on a command
  line and what must only go to a 0600 properties file
  (:meth:`StorageHook.spark_conf`);
- the arguments of ``ObjectStoragePath`` (:meth:`StorageHook.object_storage_path`).

All three get bounded connect/request timeouts and attempts (:class:`StorageTimeouts`,
tuned in the connection's extra ``config_kwargs``), so a wrong key, a missing bucket
or a dead or hung endpoint fails a task in seconds, with a named error
(:meth:`StorageHook.check` and :func:`classify_storage_failure`). Secrets are
registered with Airflow's secrets masker as soon as they are read.

``StorageHook(None)`` is S3 without an Airflow connection: boto's default credential
chain and environment (``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``,
an instance profile or IRSA role), with the default bounds and the same named errors.

boto3, the amazon provider and deltalake are imported only inside functions.
The module is about 700 lines: the mapping for three engines, their timeouts and
the error classification they share belong together (the s3fs wrapper that raises
those errors is :mod:`._object_storage`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_spark_streaming.exceptions import (
    BucketNotFoundError,
    StorageAccessDeniedError,
    StorageConnectionError,
    StorageError,
    StorageSupportMissingError,
    StorageUnreachableError,
)

if TYPE_CHECKING:
    from airflow_spark_streaming.hooks._object_storage import NamedFailuresFileSystem

DEFAULT_REGION = "us-east-1"
S3_SCHEMES = ("s3", "s3a", "s3n")
#: The shortest whole-request timeout S3A accepts (Hadoop's minimum network operation duration).
S3A_MIN_REQUEST_SECONDS = 15.0


@dataclass(frozen=True)
class StorageTimeouts:
    """How long one storage call may take before the task fails with a named error.

    An endpoint that accepts connections and never answers fails a call after about
    ``max_attempts × request_seconds`` (20 s by default), never later than
    :attr:`worst_case_seconds` (31 s by default). Set them per connection in its extra
    ``config_kwargs`` (botocore's ``connect_timeout``, ``read_timeout`` and ``retries``):
    see :meth:`from_config_kwargs`.
    """

    connect_seconds: float = 5.0
    #: The longest wait for an answer; for delta-rs, the whole request (raise it for very large files on a slow link).
    request_seconds: float = 10.0
    #: Attempts in total (1 = no retry) for one request, in every engine.
    max_attempts: int = 2

    @property
    def worst_case_seconds(self) -> float:
        """The longest one call may take: every attempt's connect and request timeouts, and the back-off
        between attempts (botocore's standard mode, the longest: up to 1, 2, 4 ... s, each at most 20 s)."""
        back_off = sum(min(2.0**retry, 20.0) for retry in range(self.max_attempts - 1))
        return self.max_attempts * (self.connect_seconds + self.request_seconds) + back_off

    @classmethod
    def from_config_kwargs(cls, config_kwargs: Mapping[str, Any] | None, conn_id: str | None) -> StorageTimeouts:
        """The timeouts an ``aws`` connection's extra ``config_kwargs`` (the botocore ``Config`` arguments the
        Amazon provider passes to boto3) asks for, over the defaults: ``connect_timeout``, ``read_timeout``,
        and ``retries`` as ``total_max_attempts`` (or botocore's ``max_attempts``, which leaves out the first).

        :raises StorageConnectionError: a value that is not a positive number.
        """
        config = dict(config_kwargs or {})
        retries = config.get("retries") if isinstance(config.get("retries"), Mapping) else {}
        defaults = cls()
        attempts = defaults.max_attempts
        if "total_max_attempts" in retries:
            attempts = _config_number(
                retries["total_max_attempts"], "retries.total_max_attempts", conn_id, count_from=1
            )
        elif "max_attempts" in retries:  # botocore counts the retries only
            attempts = _config_number(retries["max_attempts"], "retries.max_attempts", conn_id, count_from=0) + 1
        connect = config.get("connect_timeout", defaults.connect_seconds)
        request = config.get("read_timeout", defaults.request_seconds)
        return cls(
            connect_seconds=_config_number(connect, "connect_timeout", conn_id),
            request_seconds=_config_number(request, "read_timeout", conn_id),
            max_attempts=int(attempts),
        )


def _config_number(value: Any, key: str, conn_id: str | None, *, count_from: int | None = None) -> float:
    """``config_kwargs`` key ``key`` as seconds above 0 or, with ``count_from``, as a whole number of at least
    ``count_from``; else a named error (botocore would refuse it only when boto3 builds a client)."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if count_from is None:
        if number is not None and number > 0:
            return float(number)
        wanted = "a number of seconds above 0"
    else:
        if number is not None and number >= count_from and number == int(number):
            return int(number)
        wanted = f"a whole number of at least {count_from}"
    raise StorageConnectionError(
        f"Connection {conn_id!r}: config_kwargs {key}={value!r} in its extra is not {wanted}; fix it there."
    )


@dataclass(frozen=True)
class StorageCredentials:
    """What one ``aws`` connection (``conn_id`` ``None``: boto's default chain) resolves to. The secret fields
    never appear in ``repr``."""

    conn_id: str | None
    region: str
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @property
    def allow_http(self) -> bool:
        return bool(self.endpoint_url) and self.endpoint_url.lower().startswith("http://")

    @property
    def has_static_keys(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)


@dataclass(frozen=True)
class SparkStorageConf:
    """Spark settings for S3A. ``settings`` may be shown; ``secret_settings`` go only to a 0600 file."""

    settings: dict[str, str]
    secret_settings: dict[str, str] = field(repr=False)

    def all(self) -> dict[str, str]:
        return {**self.settings, **self.secret_settings}


@dataclass(frozen=True)
class S3Location:
    """A bucket and key prefix parsed from ``s3://``, ``s3a://`` or ``s3n://``."""

    scheme: str
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in S3_SCHEMES or not parts.netloc:
            raise StorageConnectionError(
                f"{url!r} is not an S3 path; write it as 's3://<bucket>/<prefix>' (Airflow, delta-rs) "
                "or 's3a://<bucket>/<prefix>' (Spark)."
            )
        return cls(parts.scheme.lower(), parts.netloc, parts.path.lstrip("/"))

    def as_scheme(self, scheme: str) -> str:
        return f"{scheme}://{self.bucket}/{self.key}".rstrip("/")


class StorageHook(BaseHook):
    """Turn one ``aws`` connection into storage settings for delta-rs, Spark and ``ObjectStoragePath``.

    :param storage_conn_id: an ``aws`` connection (amazon provider, ``[s3]`` extra).
        Put a custom endpoint (MinIO, moto, on-premises S3) in its extra as
        ``endpoint_url``; the region as ``region_name``. ``None`` (or empty): no Airflow
        connection; boto's default credential chain and environment (``AWS_ENDPOINT_URL_S3``
        or ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``, an instance profile or IRSA role),
        with the default :class:`StorageTimeouts`.
    :param storage_options: raw delta-rs ``storage_options`` merged on top of
        what the connection gives (the override of last resort).
    :param timeouts: connect/request timeouts and attempts for every engine; by default
        the connection's extra ``config_kwargs`` over :class:`StorageTimeouts`' defaults.
    """

    conn_name_attr = "storage_conn_id"
    default_conn_name = "aws_default"
    conn_type = "aws"
    hook_name = "Object storage (S3)"

    def __init__(
        self,
        storage_conn_id: str | None = default_conn_name,
        *,
        storage_options: Mapping[str, str] | None = None,
        timeouts: StorageTimeouts | None = None,
    ) -> None:
        super().__init__()
        self.storage_conn_id = storage_conn_id or None
        self.storage_options_override = dict(storage_options or {})
        self._timeouts = timeouts
        self._credentials: StorageCredentials | None = None

    @property
    def source(self) -> str:
        """Where the credentials come from, as messages name it."""
        if self.storage_conn_id is None:
            return "the default AWS credentials (no storage_conn_id)"
        return f"connection {self.storage_conn_id!r}"

    @property
    def timeouts(self) -> StorageTimeouts:
        """The bounds of every engine: those given, else the connection's extra ``config_kwargs`` over the defaults.

        :raises StorageConnectionError: ``config_kwargs`` holds a timeout or attempt count that is not a number.
        """
        if self._timeouts is None:
            self._timeouts = StorageTimeouts.from_config_kwargs(self._config_kwargs(), self.storage_conn_id)
        return self._timeouts

    def _config_kwargs(self) -> Mapping[str, Any]:
        """The botocore ``Config`` arguments in the connection's extra (empty without a connection, or if it
        cannot be read: its own error comes from :meth:`credentials`)."""
        if self.storage_conn_id is None:
            return {}
        try:
            config_kwargs = self.get_connection(self.storage_conn_id).extra_dejson.get("config_kwargs")
        except Exception:
            return {}
        return config_kwargs if isinstance(config_kwargs, Mapping) else {}

    # -- credentials -------------------------------------------------------------------------

    def credentials(self) -> StorageCredentials:
        """Resolve (once) the connection's keys, endpoint and region; secrets are masked from here on."""
        if self._credentials is None:
            self._credentials = self._resolve()
            endpoint = self._credentials.endpoint_url
            _mask(
                self._credentials.secret_access_key,
                self._credentials.session_token,
                urlsplit(endpoint).password if endpoint else None,
            )
        return self._credentials

    def _resolve(self) -> StorageCredentials:
        from airflow.sdk.exceptions import AirflowNotFoundException

        if self.storage_conn_id is None:
            return self._resolve_default()

        try:
            connection = self.get_connection(self.storage_conn_id)
        except AirflowNotFoundException as err:
            raise StorageConnectionError(
                f"Connection {self.storage_conn_id!r} does not exist; create an 'aws' connection with the key in "
                "login/password and a custom endpoint in its extra as 'endpoint_url'."
            ) from err
        if connection.conn_type not in ("aws", None, ""):
            raise StorageConnectionError(
                f"Connection {self.storage_conn_id!r} is of type {connection.conn_type!r}; storage_conn_id needs an "
                "'aws' connection (key in login/password, endpoint in extra 'endpoint_url')."
            )
        self.timeouts  # noqa: B018 - a bad config_kwargs is named here, before botocore refuses it unnamed
        aws = self._aws_hook()
        endpoint, region = _endpoint_and_region(aws)
        config = aws.conn_config
        access_key = secret_key = token = None
        if connection.login or connection.password:
            access_key, secret_key = connection.login, connection.password
            token = config.aws_session_token
        else:  # roles, profiles, web identity: let botocore resolve them now
            resolved = aws.get_credentials(region_name=region)
            access_key, secret_key, token = resolved.access_key, resolved.secret_key, resolved.token
        return StorageCredentials(
            conn_id=self.storage_conn_id,
            region=region,
            endpoint_url=endpoint,
            access_key_id=access_key,
            secret_access_key=secret_key,
            session_token=token,
        )

    def _resolve_default(self) -> StorageCredentials:
        """No connection: the keys boto's default chain finds now (environment, shared files, container or
        instance role, web identity), the region it reads and the endpoint of the environment."""
        aws = self._aws_hook()
        region = _default_region()
        try:
            found = aws.get_session(region_name=region).get_credentials()
            frozen = found.get_frozen_credentials() if found is not None else None
        except Exception as err:
            raise StorageConnectionError(
                "The default AWS credentials (no storage_conn_id) could not be resolved "
                f"({type(err).__name__}: {err}); fix the worker's AWS environment (AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the instance or IRSA role), or set storage_conn_id to an "
                "'aws' connection."
            ) from err
        return StorageCredentials(
            conn_id=None,
            region=region,
            endpoint_url=_environment_endpoint(),
            access_key_id=frozen.access_key if frozen else None,
            secret_access_key=frozen.secret_key if frozen else None,
            session_token=frozen.token if frozen else None,
        )

    def _aws_hook(self):
        try:
            from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        except ImportError as err:
            raise self._provider_missing(err) from err
        return AwsBaseHook(aws_conn_id=self.storage_conn_id, client_type="s3")

    def _provider_missing(self, err: ImportError) -> StorageError:
        if self.storage_conn_id is None:
            return StorageSupportMissingError(
                f"S3 paths need the Amazon provider with s3fs ({err}); pip install 'airflow-spark-streaming[s3]'."
            )
        return StorageConnectionError(
            f"storage_conn_id needs the Amazon provider with s3fs ({err}); install 'airflow-spark-streaming[s3]'."
        )

    def endpoint(self) -> str:
        """The store this connection talks to, as errors name it: its ``endpoint_url``, else AWS S3's URL in its
        region. Without a connection: ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, else AWS S3 in boto's
        region.

        Read from the connection alone (no credentials are resolved), so a hook made only to
        name an error still names the connection's own endpoint.
        """
        return self._endpoint_name(self._endpoint())

    def _endpoint_name(self, found: tuple[str, bool] | None) -> str:
        if found is None:
            return f"the endpoint of {self.source}"
        url, custom = found
        return _without_userinfo(url) if custom else f"AWS S3 ({url})"

    def _endpoint(self) -> tuple[str, bool] | None:
        """The URL requests go to (AWS S3's regional one without a custom endpoint) and whether it is the
        connection's own ``endpoint_url``; ``None`` if the connection cannot be read."""
        if self._credentials is not None:
            endpoint, region = self._credentials.endpoint_url, self._credentials.region
        elif self.storage_conn_id is None:
            endpoint, region = _environment_endpoint(), _default_region()
        else:
            try:
                self.get_connection(self.storage_conn_id)  # the amazon provider would quietly use an empty one
                endpoint, region = _endpoint_and_region(self._aws_hook())
            except Exception:  # naming an error must not raise another: say what is known
                return None
        return (endpoint, True) if endpoint else (f"https://s3.{region}.amazonaws.com", False)

    # -- delta-rs ---------------------------------------------------------------------------

    def delta_storage_options(self) -> dict[str, str]:
        """``storage_options`` for ``deltalake``: credentials, endpoint, bounded retries, conditional commits.

        delta-rs 1.6 commits ``_delta_log/N.json`` with a put-if-absent
        (``If-None-Match: *``) copy, so two writers can never both win one
        version; the options below make that explicit and never enable
        ``AWS_S3_ALLOW_UNSAFE_RENAME``.
        """
        creds = self.credentials()
        options: dict[str, str] = {"AWS_REGION": creds.region}
        if creds.access_key_id:
            options["AWS_ACCESS_KEY_ID"] = creds.access_key_id
        if creds.secret_access_key:
            options["AWS_SECRET_ACCESS_KEY"] = creds.secret_access_key
        if creds.session_token:
            options["AWS_SESSION_TOKEN"] = creds.session_token
        if creds.endpoint_url:
            options["AWS_ENDPOINT_URL"] = creds.endpoint_url
            # object_store's default is path-style; say so for stores without virtual hosts.
            options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
        if creds.allow_http:
            options["AWS_ALLOW_HTTP"] = "true"
        t = self.timeouts
        options.update(
            {
                "conditional_put": "etag",
                "copy_if_not_exists": "multipart",
                "AWS_EC2_METADATA_DISABLED": "true" if creds.has_static_keys else "false",
                "connect_timeout": f"{t.connect_seconds:g}s",
                "timeout": f"{t.request_seconds:g}s",
                "max_retries": str(max(t.max_attempts - 1, 0)),
                "retry_timeout": f"{t.worst_case_seconds:g}s",
                "backoff_config.init_backoff": "100ms",
                "backoff_config.max_backoff": "2s",
            }
        )
        options.update(self.storage_options_override)
        if options.get("AWS_S3_ALLOW_UNSAFE_RENAME", "").lower() == "true":
            self.log.warning("storage_options enable AWS_S3_ALLOW_UNSAFE_RENAME: concurrent commits may be lost.")
        return options

    # -- Spark ------------------------------------------------------------------------------

    def spark_conf(self) -> SparkStorageConf:
        """``spark.hadoop.fs.s3a.*`` settings for a SparkSession or spark-submit.

        Not set on purpose: ``fs.s3a.create.performance``. In Hadoop 3.5 it turns
        every ``create(path, overwrite=false)`` into a blind overwrite without the
        existence probe, and Delta's S3 log store commits through exactly that call.
        """
        creds = self.credentials()
        t = self.timeouts
        s3a = {
            # s3:// and s3n:// paths reach the same S3A client as s3a://.
            "fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "fs.s3n.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
            "fs.s3a.endpoint.region": creds.region,
            "fs.s3a.connection.establish.timeout": f"{int(t.connect_seconds * 1000)}ms",
            "fs.s3a.connection.timeout": f"{int(t.request_seconds * 1000)}ms",
            # S3A raises a whole-request timeout under 15 s to 15 s, with a warning in every job.
            "fs.s3a.connection.request.timeout": f"{int(max(t.request_seconds, S3A_MIN_REQUEST_SECONDS) * 1000)}ms",
            # SDK attempts per request, then S3A's own retry loop: both bounded.
            "fs.s3a.attempts.maximum": str(t.max_attempts),
            "fs.s3a.retry.limit": str(max(t.max_attempts - 1, 0)),
            "fs.s3a.retry.interval": "200ms",
            "fs.s3a.retry.throttle.limit": str(t.max_attempts),
            "fs.s3a.retry.throttle.interval": "500ms",
        }
        if creds.endpoint_url:
            s3a["fs.s3a.endpoint"] = creds.endpoint_url
            s3a["fs.s3a.path.style.access"] = "true"
            s3a["fs.s3a.connection.ssl.enabled"] = "false" if creds.allow_http else "true"
        # Lets createFile(...).opt("fs.option.create.conditional.overwrite") send If-None-Match: *.
        s3a["fs.s3a.create.conditional.enabled"] = "true"
        secret: dict[str, str] = {}
        if creds.has_static_keys:
            provider = "TemporaryAWSCredentialsProvider" if creds.session_token else "SimpleAWSCredentialsProvider"
            s3a["fs.s3a.aws.credentials.provider"] = f"org.apache.hadoop.fs.s3a.{provider}"
            secret["fs.s3a.access.key"] = creds.access_key_id or ""
            secret["fs.s3a.secret.key"] = creds.secret_access_key or ""
            if creds.session_token:
                secret["fs.s3a.session.token"] = creds.session_token
        return SparkStorageConf(
            settings={f"spark.hadoop.{k}": v for k, v in s3a.items()},
            secret_settings={f"spark.hadoop.{k}": v for k, v in secret.items()},
        )

    # -- Airflow ObjectStoragePath ----------------------------------------------------------

    def object_storage_options(self) -> dict[str, Any]:
        """botocore ``Config`` arguments of :meth:`object_storage_fs` (the amazon provider's s3fs filesystem)."""
        t = self.timeouts
        return {
            "connect_timeout": t.connect_seconds,
            "read_timeout": t.request_seconds,
            "retries": {"total_max_attempts": t.max_attempts, "mode": "standard"},
        }

    def object_storage_fs(self) -> NamedFailuresFileSystem:
        """The amazon provider's s3fs filesystem for this connection, bounded by :attr:`timeouts`, whose failures
        raise the named storage errors.

        s3fs retries a call that timed out 5 times by itself, each time with botocore's own attempts (5 in
        botocore's default mode): 25 read timeouts before an error. Here botocore's attempts are the only
        retries, so a call fails within ``timeouts.worst_case_seconds``.
        """
        from airflow_spark_streaming.hooks._object_storage import NamedFailuresFileSystem

        try:
            from airflow.providers.amazon.aws.fs.s3 import get_fs
        except ImportError as err:
            raise self._provider_missing(err) from err

        self.credentials()  # fail early, with a named error, on a bad connection
        try:
            fs = get_fs(self.storage_conn_id, self.object_storage_options())
        except ImportError as err:  # s3fs is missing
            raise self._provider_missing(err) from err
        fs.retries = 1  # s3fs's own loop: one pass
        return NamedFailuresFileSystem(fs, self)

    def object_storage_path(self, url: str):
        """``ObjectStoragePath`` for ``url`` (``s3://``; ``s3a://`` is rewritten) on :meth:`object_storage_fs`.

        Airflow's ``ObjectStoragePath`` keeps one filesystem per connection and drops the options a path is
        made with, so the path returned, and every path made from it, reads through this hook's filesystem.
        """
        from airflow_spark_streaming.hooks._object_storage import path_on

        location = S3Location.parse(url)
        return path_on(self.object_storage_fs(), location.as_scheme("s3"), self.storage_conn_id)

    # -- probing ----------------------------------------------------------------------------

    def client(self):
        """A boto3 S3 client with this connection's endpoint, keys and bounded timeouts."""
        import boto3
        from botocore.config import Config

        creds = self.credentials()
        t = self.timeouts
        config = Config(
            region_name=creds.region,
            connect_timeout=t.connect_seconds,
            read_timeout=t.request_seconds,
            retries={"total_max_attempts": t.max_attempts, "mode": "standard"},
            s3={"addressing_style": "path" if creds.endpoint_url else "auto"},
        )
        return boto3.client(
            "s3",
            endpoint_url=creds.endpoint_url,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            config=config,
        )

    def check(self, url: str) -> S3Location:
        """Prove within bounded time that the bucket of ``url`` exists and the key may list it.

        :raises StorageAccessDeniedError: the store refused the key or its permissions.
        :raises BucketNotFoundError: no such bucket at this endpoint.
        :raises StorageUnreachableError: the endpoint did not answer in time.
        """
        location = S3Location.parse(url)
        client = self.client()
        started = time.monotonic()
        try:
            client.list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
        except Exception as err:
            raise self.translate(err, url, elapsed=time.monotonic() - started) from err
        return location

    def translate(
        self, err: BaseException, url: str, *, elapsed: float | None = None, probe: bool = True
    ) -> BaseException:
        """The named storage error for ``err`` (boto3, deltalake or S3A text), else ``err`` itself.

        The message names the connection's endpoint and the cause the store or the network
        gave: which credential it refused, or whether the connection was refused, timed out
        or found no such host.

        s3fs reports a missing bucket while listing as a plain "not a directory";
        for such an error one bounded probe (:meth:`check`) tells a missing
        bucket from a missing path.

        :param elapsed: seconds the failed call took, if the caller timed it; named in the message
            (delta-rs reports it itself).
        :param probe: tell a missing bucket from a missing path with :meth:`check` (else a missing file stays
            ``FileNotFoundError``).
        """
        if isinstance(err, StorageError):
            return err
        text = _describe(err)
        kind = classify_storage_failure(text)
        if kind is None:
            if probe and isinstance(err, FileNotFoundError | NotADirectoryError) and _is_s3(url):
                try:
                    self.check(url)
                except StorageError as named:
                    return named
                except Exception:  # the probe itself failed in an unnamed way: keep the original
                    return err
            return err
        found = self._endpoint()
        endpoint, endpoint_url = self._endpoint_name(found), _without_userinfo(found[0]) if found else None
        location = S3Location.parse(url) if _is_s3(url) else None
        bucket = location.bucket if location else url
        if kind is StorageAccessDeniedError:
            reason = f" ({why})" if (why := _refusal_reason(text)) else ""
            if self.storage_conn_id is None:
                message = (
                    f"The store at {endpoint} refused {self.source} for {url!r}{reason}; fix the credentials the "
                    "worker's environment gives boto (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the "
                    f"instance or IRSA role) or grant them access to bucket {bucket!r}; or set storage_conn_id to "
                    "an 'aws' connection with the key in login/password."
                )
            else:
                message = (
                    f"The store at {endpoint} refused the credentials of {self.source} for {url!r}{reason}; fix "
                    f"the access key and secret in that connection (login/password) or grant it access to bucket "
                    f"{bucket!r}."
                )
        elif kind is BucketNotFoundError:
            message = (
                f"Bucket {bucket!r} of {url!r} does not exist at {endpoint} ({self.source}); "
                f"create it, or fix the bucket name or {self._endpoint_setting}{self._or_a_connection}."
            )
        else:
            message = self._unreachable_message(endpoint, endpoint_url, url, text, elapsed)
        return kind(message)

    @property
    def _endpoint_setting(self) -> str:
        """Where the endpoint is set, as a fix names it."""
        if self.storage_conn_id is None:
            return (
                "the endpoint in the worker's environment (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL; unset, "
                "AWS S3 in AWS_DEFAULT_REGION)"
            )
        return "the connection's endpoint_url (extra)"

    @property
    def _or_a_connection(self) -> str:
        """Without a connection, the other fix: give one."""
        if self.storage_conn_id is None:
            return "; or set storage_conn_id to an 'aws' connection with endpoint_url in its extra"
        return ""

    def _unreachable_message(
        self, endpoint: str, endpoint_url: str | None, url: str, text: str, elapsed: float | None
    ) -> str:
        if elapsed is None:
            elapsed = _reported_elapsed(text)
        after = f" after {elapsed:.1f}s" if elapsed is not None else ""
        try:
            t = self.timeouts
        except StorageConnectionError:  # naming an error must not raise another
            t = StorageTimeouts()
        bounds = (
            f"connect timeout {t.connect_seconds:g}s, request timeout {t.request_seconds:g}s, "
            f"{t.max_attempts} attempt{'s' if t.max_attempts != 1 else ''}"
        )
        if self.storage_conn_id is None:
            where = f"storage endpoint {endpoint} used with {self.source}"
            slow = (
                "A store that is only slow needs a longer read_timeout: set storage_conn_id to an 'aws' connection "
                "with config_kwargs in its extra (without one, the defaults apply)."
            )
        else:
            where = f"storage endpoint {endpoint} of {self.source}"
            slow = "A store that is only slow needs a longer read_timeout in config_kwargs of the connection's extra."
        fix = f"check that the store is running and that {self._endpoint_setting} is right{self._or_a_connection}."
        cause = _unreachable_cause(text)
        if cause == REFUSED:
            listener = f" at {_host_port(endpoint_url)}" if endpoint_url else ""
            return f"Connection refused by {where} for {url!r}{after}: no server accepts connections{listener}; {fix}"
        if cause == TIMED_OUT:
            return f"The {where} did not answer for {url!r}: the request timed out{after} ({bounds}); {fix} {slow}"
        if cause == UNRESOLVED:
            return (
                f"The host of {where} could not be resolved for {url!r}{after}: no such host name; check "
                f"{self._endpoint_setting} and the worker's DNS{self._or_a_connection}."
            )
        return f"The {where} could not be reached for {url!r}{after}; {fix}"


# Ordered: the first pattern that matches wins (a 403 naming a bucket is still access denied).
_FAILURE_PATTERNS: tuple[tuple[type[StorageError], re.Pattern[str]], ...] = (
    (
        StorageAccessDeniedError,
        re.compile(
            r"InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|Access Denied|InvalidToken|ExpiredToken|"
            r"signature we calculated does not match|PermissionError|403 Forbidden|status(?: code)?:? 403|"
            r"\b403\b.*Forbidden",
            re.I,
        ),
    ),
    (
        BucketNotFoundError,
        re.compile(r"NoSuchBucket|UnknownStoreException|bucket .{0,80}does not exist|Bucket not found", re.I),
    ),
    (
        StorageUnreachableError,
        re.compile(
            r"EndpointConnectionError|Could not connect to the endpoint|ConnectTimeout|Connect timeout|"
            r"Connection refused|ConnectException|tcp connect error|error sending request|"
            r"Unable to execute HTTP request|Read timeout on endpoint|timed out",
            re.I,
        ),
    ),
)


def classify_storage_failure(text: str) -> type[StorageError] | None:
    """Which named storage error a failure text (Python exception, delta-rs or S3A/JVM log) stands for."""
    for kind, pattern in _FAILURE_PATTERNS:
        if pattern.search(text or ""):
            return kind
    return None


def _describe(err: BaseException) -> str:
    """The text of ``err`` and what it wraps (causes, botocore's wrapped ``error``), for classification."""
    parts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException] = [err]
    while pending and len(seen) < 8:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        parts += [type(current).__name__, str(current)]
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            parts.append(str(response.get("Error", {}).get("Code", "")))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 and "Bucket" in str(response.get("Error", {})):
                parts.append("NoSuchBucket")
            elif status == 403:
                parts.append("403 Forbidden")
        wrapped = (getattr(current, "kwargs", None) or {}).get("error")  # botocore's EndpointConnectionError
        pending += [e for e in (wrapped, current.__cause__, current.__context__) if isinstance(e, BaseException)]
    return " ".join(parts)


# What a refused credential means, by the store's error code (or the text s3fs keeps of it).
_REFUSAL_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"InvalidAccessKeyId|Access Key Id you provided does not exist", re.I),
     "403 InvalidAccessKeyId: the store knows no such access key"),
    (re.compile(r"SignatureDoesNotMatch|signature we calculated does not match", re.I),
     "403 SignatureDoesNotMatch: the secret access key does not match the access key"),
    (re.compile(r"ExpiredToken|token .{0,40}expired", re.I), "the session token has expired"),
    (re.compile(r"InvalidToken|security token included in the request is invalid", re.I),
     "the session token is invalid"),
    (re.compile(r"AccessDenied|Access Denied", re.I), "403 AccessDenied: the key has no permission for this"),
)  # fmt: skip

REFUSED, TIMED_OUT, UNRESOLVED = "connection refused", "timed out", "host not found"
# Ordered: a refused connection retried until a deadline is still refused.
_UNREACHABLE_CAUSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (REFUSED, re.compile(r"Connection refused|ConnectionRefusedError|ECONNREFUSED|os error 111|Errno 111", re.I)),
    (UNRESOLVED, re.compile(r"Name or service not known|nodename nor servname|Temporary failure in name "
                            r"resolution|failed to lookup address|UnknownHostException|gaierror|dns error", re.I)),
    (TIMED_OUT, re.compile(r"timed out|Connect ?timeout|Read ?timeout|TimeoutError|SocketTimeoutException|"
                           r"deadline (?:has elapsed|exceeded)", re.I)),
)  # fmt: skip
# delta-rs (object_store) says how long a failed request took: "Error performing GET ... in 102.6ms".
_REPORTED_ELAPSED = re.compile(r"Error performing \w+ \S+ in ([0-9.]+)(ns|µs|us|ms|s)\b")
_UNIT_SECONDS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def _refusal_reason(text: str) -> str | None:
    """What the store's refusal says about the credentials (unknown key, wrong secret, ...), if it says."""
    return next((reason for pattern, reason in _REFUSAL_REASONS if pattern.search(text)), None)


def _unreachable_cause(text: str) -> str | None:
    """Why an endpoint could not be reached: :data:`REFUSED`, :data:`TIMED_OUT`, :data:`UNRESOLVED`, or unknown."""
    return next((cause for cause, pattern in _UNREACHABLE_CAUSES if pattern.search(text)), None)


def _reported_elapsed(text: str) -> float | None:
    match = _REPORTED_ELAPSED.search(text)
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None


def _host_port(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return endpoint
    port = parts.port or (80 if parts.scheme == "http" else 443)
    return f"{parts.hostname}:{port}"


def _endpoint_and_region(aws) -> tuple[str | None, str]:
    """The S3 endpoint URL (``None`` for AWS itself) and region of an ``AwsBaseHook``'s connection."""
    config = aws.conn_config
    endpoint = config.get_service_endpoint_url(service_name="s3") or config.endpoint_url
    return endpoint, config.region_name or DEFAULT_REGION


def _environment_endpoint() -> str | None:
    """The S3 endpoint boto takes from the environment without a connection (``None``: AWS S3 itself)."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true":
        return None
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _default_region() -> str:
    """The region boto reads without a connection (``AWS_DEFAULT_REGION``, the profile's), else
    :data:`DEFAULT_REGION`."""
    try:
        import botocore.session

        return botocore.session.get_session().get_config_variable("region") or DEFAULT_REGION
    except Exception:  # an unreadable config file is boto's own error to raise, when it reads
        return DEFAULT_REGION


def _without_userinfo(url: str) -> str:
    """``url`` without a ``user:password@`` part (an endpoint is named in errors)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _is_s3(url: str) -> bool:
    return urlsplit(url.strip()).scheme.lower() in S3_SCHEMES


def _mask(*secrets: str | None) -> None:
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        if secret:
            mask_secret(secret)
