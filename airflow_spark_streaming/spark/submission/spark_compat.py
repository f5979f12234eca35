"""The one place that reaches into the Spark provider's ``SparkSubmitHook`` beyond its public API.

``SparkSubmitHook`` builds the spark-submit command and parses what spark-submit
prints (standalone driver id, YARN application id, Kubernetes driver pod), but
exposes none of it publicly, nor a way to submit without waiting. Every private
member this provider relies on is listed below and used only through
:class:`SparkSubmitAdapter`. ``tests/unit/spark/test_spark_compat.py`` finds the
members the adapter's code uses (from its syntax tree), checks that the lists name
exactly those, and checks the installed provider has each; :func:`missing_members`
checks the same lists when the hook is made, and ``pyproject.toml`` pins the
provider to the range the test covers.

The hook is made as :class:`SealedSparkSubmitHook` (built on first use), whose only
change is where Spark settings go: every ``--conf`` pair the hook would put on the
command line (the task's ``conf``, the connection's namespace, ``env_vars`` on YARN
and Kubernetes, ``waitAppCompletion``) goes into the private properties file instead,
and ``--load-spark-defaults`` keeps the cluster's ``spark-defaults.conf`` beside it.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_spark_streaming.exceptions import SparkProviderIncompatibleError, SparkSubmissionError

#: Attributes ``SparkSubmitHook.__init__`` sets (or properties of the class) that this provider reads or writes.
PRIVATE_ATTRIBUTES = (
    "_conf",
    "_connection",
    "_application_args",
    "_properties_file",
    "_jars",
    "_py_files",
    "_java_class",
    "_env",
    "_env_vars",
    "_is_yarn",
    "_is_kubernetes",
    "_submit_sp",
    "_driver_id",
    "_yarn_application_id",
    "_yarn_rm_base_url",
    "_kubernetes_driver_pod",
    "_track_driver_via_k8s_api",
    "_resolved_yarn_rm_auth",
)
#: Private methods of ``SparkSubmitHook`` this provider calls, with the positional parameters it passes.
PRIVATE_METHODS = {
    "_build_spark_submit_command": ("application",),
    "_build_spark_common_args": (),  # overridden by SealedSparkSubmitHook
    "_get_yarn_rm_base_url": (),
    "_kill_yarn_application": ("application_id",),
    "_delete_driver_pod": (),
}
#: Keys of the parsed connection (``SparkSubmitHook._connection``) this provider reads.
CONNECTION_KEYS = ("master", "deploy_mode", "namespace", "rest_endpoint")
#: Public methods, listed so the contract test covers them too.
PUBLIC_METHODS = {"submit": ("application",), "on_kill": (), "query_yarn_application_status": ("application_id",)}


def missing_members(hook: Any) -> list[str]:
    """Members above that ``hook`` (a ``SparkSubmitHook`` instance) lacks or takes differently; empty when it fits."""
    import inspect

    missing = []
    # The provider's own methods, not this provider's overrides of them.
    provider_hook = super(type(hook), hook) if getattr(type(hook), "seals_spark_settings", False) else hook
    for name, parameters in {**PUBLIC_METHODS, **PRIVATE_METHODS}.items():
        method = getattr(provider_hook, name, None)
        if not callable(method):
            missing.append(f"SparkSubmitHook.{name}")
            continue
        accepted = list(inspect.signature(method).parameters.values())
        positional = [p.name for p in accepted if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [
            p.name for p in accepted if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if positional[: len(parameters)] != list(parameters) or len(required) > len(parameters):
            missing.append(f"SparkSubmitHook.{name}({', '.join(parameters)})")
    # Looked up without running a property: _resolved_yarn_rm_auth resolves Kerberos auth when read.
    absent = object()
    missing += [
        f"SparkSubmitHook.{name}" for name in PRIVATE_ATTRIBUTES if inspect.getattr_static(hook, name, absent) is absent
    ]
    connection = getattr(hook, "_connection", None)
    if isinstance(connection, dict):
        missing += [f"SparkSubmitHook._connection[{key!r}]" for key in CONNECTION_KEYS if key not in connection]
    return missing


#: spark-submit (4.0+) reads ``spark-defaults.conf`` too when given ``--properties-file``; the file's entries win.
LOAD_SPARK_DEFAULTS = "--load-spark-defaults"
#: spark-submit's options that take no value (``SparkSubmitOptionParser``'s switches); every other one takes one.
SPARK_SUBMIT_SWITCHES = frozenset(
    {"--help", "-h", "--supervise", "--usage-error", "--verbose", "-v", "--version", LOAD_SPARK_DEFAULTS}
)
CONF_OPTIONS = ("--conf", "-c")


def split_spark_settings(options: list[str]) -> tuple[list[str], dict[str, str]]:
    """spark-submit ``options`` without their ``--conf key=value`` pairs, and those settings (a later one wins)."""
    flags: list[str] = []
    settings: dict[str, str] = {}
    position = 0
    while position < len(options):
        option = options[position]
        if option in CONF_OPTIONS and position + 1 < len(options):
            key, _, value = options[position + 1].partition("=")
            settings.pop(key, None)  # keeps the order spark-submit would have applied them in
            settings[key] = value
            position += 2
        elif option in SPARK_SUBMIT_SWITCHES or position + 1 == len(options):
            flags.append(option)
            position += 1
        else:
            flags += options[position : position + 2]
            position += 2
    return flags, settings


def seal_spark_settings(hook: Any, options: list[str]) -> list[str]:
    """Move every ``--conf`` pair of ``options`` into the hook's private properties file; add ``--load-spark-defaults``.

    The pairs are appended after what the file holds, so they win over it as ``--conf`` would have.
    """
    from airflow_spark_streaming.spark.submission.private_files import append_private_properties

    flags, settings = split_spark_settings(options)
    properties_file = hook._properties_file
    if settings:
        if not properties_file:
            raise SparkSubmissionError(
                f"spark-submit was about to get the Spark settings {', '.join(sorted(settings))} on its command "
                "line: set a private properties file first (SparkJob submissions write one)."
            )
        append_private_properties(properties_file, settings)
    if properties_file and LOAD_SPARK_DEFAULTS not in flags:
        flags.append(LOAD_SPARK_DEFAULTS)
    return flags


@functools.cache
def sealed_spark_submit_hook_class() -> type:
    """``SparkSubmitHook`` with every Spark setting sent in its properties file, none on the command line."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    class SealedSparkSubmitHook(SparkSubmitHook):
        """The Spark provider's hook; its ``--conf`` pairs go into the 0600 properties file (see the module)."""

        seals_spark_settings = True

        def _build_spark_common_args(self) -> list[str]:
            return seal_spark_settings(self, super()._build_spark_common_args())

    return SealedSparkSubmitHook


class SparkSubmitAdapter:
    """A ``SparkSubmitHook``, made on first use (importing it costs the scheduler), seen through named accessors."""

    def __init__(self, conn_id: str, **spark_submit_kwargs: Any) -> None:
        self.conn_id = conn_id
        self._kwargs = spark_submit_kwargs
        self._hook = None

    @property
    def hook(self):
        """The Spark provider's ``SparkSubmitHook``; refuses a provider whose shape this adapter does not know."""
        if self._hook is None:
            hook = sealed_spark_submit_hook_class()(conn_id=self.conn_id, **self._kwargs)
            missing = missing_members(hook)
            if missing:
                raise SparkProviderIncompatibleError(
                    f"The installed apache-airflow-providers-apache-spark lacks {', '.join(missing)}, which "
                    "airflow-spark-streaming needs; install the provider version pinned in its requirements."
                )
            self._hook = hook
        return self._hook

    # --- the connection --------------------------------------------------------------------------

    @property
    def master(self) -> str:
        return self.hook._connection["master"]

    @property
    def deploy_mode(self) -> str | None:
        return self.hook._connection["deploy_mode"]

    @property
    def namespace(self) -> str:
        return self.hook._connection["namespace"] or "default"

    @property
    def rest_endpoint(self) -> str | None:
        return self.hook._connection.get("rest_endpoint")

    @property
    def is_yarn(self) -> bool:
        return bool(self.hook._is_yarn)

    @property
    def is_kubernetes(self) -> bool:
        return bool(self.hook._is_kubernetes)

    # --- what spark-submit gets ------------------------------------------------------------------

    def set_conf(self, key: str, value: str) -> None:
        self.hook._conf = {**(self.hook._conf or {}), key: value}

    @property
    def conf(self) -> dict[str, str]:
        return dict(self.hook._conf or {})

    def add_submit_env(self, env: dict[str, str]) -> None:
        """Environment for the spark-submit process only (``env_vars`` would also reach YARN containers)."""
        self.hook._env = {**(self.hook._env or {}), **env}
        if self.hook._env_vars:  # SparkSubmitHook replaces _env by env_vars when it builds a YARN command
            self.hook._env_vars = {**env, **self.hook._env_vars}

    def set_application(self, application_args: list[str], properties_file: str | None) -> None:
        self.hook._application_args = list(application_args)
        self.hook._properties_file = properties_file

    @property
    def properties_file(self) -> str | None:
        return self.hook._properties_file

    @property
    def jars(self) -> list[str]:
        return [jar for jar in (self.hook._jars or "").split(",") if jar]

    @jars.setter
    def jars(self, jars: list[str]) -> None:
        self.hook._jars = ",".join(jars) or None

    @property
    def py_files(self) -> list[str]:
        return [path for path in (self.hook._py_files or "").split(",") if path]

    @py_files.setter
    def py_files(self, py_files: list[str]) -> None:
        self.hook._py_files = ",".join(py_files) or None

    def run_main_class(self, java_class: str, primary_resource_args: list[str]) -> None:
        """Run ``java_class`` with these arguments first (the Python runner takes the .py and its py-files)."""
        self.hook._java_class = java_class
        self.hook._application_args = [*primary_resource_args, self.hook._py_files or "",
                                       *(self.hook._application_args or [])]  # fmt: skip

    def track_driver_via_k8s_api(self) -> None:
        self.hook._track_driver_via_k8s_api = True

    def build_command(self, application: str) -> list[str]:
        """The spark-submit command; its Spark settings are appended to the properties file, which must be set."""
        return self.hook._build_spark_submit_command(application)

    @property
    def env(self) -> dict[str, str]:
        return dict(self.hook._env or {})

    # --- running spark-submit --------------------------------------------------------------------

    def submit(self, application: str) -> None:
        """Run spark-submit and wait; without a properties file, one is made for this call and removed after it."""
        with self._properties_file_for_this_call():
            self.hook.submit(application)

    @contextlib.contextmanager
    def _properties_file_for_this_call(self) -> Iterator[None]:
        if self.hook._properties_file:
            yield
            return
        from airflow_spark_streaming.spark.submission.private_files import write_private_files

        private = Path(tempfile.mkdtemp(prefix="spark-streaming-"))  # 0700
        try:
            _, self.hook._properties_file = write_private_files(private)
            yield
        finally:
            self.hook._properties_file = None
            shutil.rmtree(private, ignore_errors=True)

    def on_kill(self) -> None:
        self.hook.on_kill()

    def adopt_process(self, process: subprocess.Popen) -> None:
        """A spark-submit started outside the hook, so that ``on_kill`` still reaches it."""
        self.hook._submit_sp = process

    @property
    def standalone_driver_id(self) -> str | None:
        return self.hook._driver_id

    @property
    def yarn_application_id(self) -> str | None:
        return self.hook._yarn_application_id

    @property
    def kubernetes_driver_pod(self) -> str | None:
        return self.hook._kubernetes_driver_pod

    # --- cluster managers ------------------------------------------------------------------------

    def check_yarn_rm_address(self) -> None:
        """Raise ``ValueError`` if neither the connection nor yarn-site.xml says where the RM's REST API is."""
        self._yarn_rm_base_url()

    def _yarn_rm_base_url(self) -> str:
        """The connection's ``yarn_resourcemanager_webapp_address``, else the one in ``HADOOP_CONF_DIR``."""
        import os

        from airflow_spark_streaming.spark.yarn_conf import resource_manager_web_url

        try:
            return self.hook._get_yarn_rm_base_url()
        except ValueError as err:
            found = resource_manager_web_url({**os.environ, **self.env})
            if not found:
                raise ValueError(
                    f"{err} Or set HADOOP_CONF_DIR to a folder whose yarn-site.xml names the ResourceManager "
                    "(yarn.resourcemanager.webapp.address or yarn.resourcemanager.hostname)."
                ) from err
            self.hook._yarn_rm_base_url = found  # the provider's own cache: its kill and status use it too
            return found

    def query_yarn_application_status(self, application_id: str) -> str:
        return self.hook.query_yarn_application_status(application_id)

    def kill_yarn_application(self, application_id: str) -> None:
        self.hook._kill_yarn_application(application_id)

    def yarn_rm_request(self, method: str, path: str, **kwargs: Any) -> dict:
        """Call the RM's REST API (``/ws/v1/cluster`` + ``path``) at the connection's address, with its auth."""
        return self._yarn_http(method, f"{self._yarn_rm_base_url()}/ws/v1/cluster{path}", **kwargs).json()

    def yarn_container_log(self, container_logs_url: str, name: str) -> str:
        """A container's log file from its NodeManager; ``container_logs_url`` is a report's ``amContainerLogs``."""
        from urllib.parse import urlsplit

        url = urlsplit(container_logs_url)  # <nm>/node/containerlogs/<container id>/<user>
        container = url.path.split("/")[3]
        return self._yarn_http("GET", f"{url.scheme}://{url.netloc}/ws/v1/node/containers/{container}/logs/{name}").text

    def _yarn_http(self, method: str, url: str, **kwargs: Any):
        import requests

        try:
            response = requests.request(method, url, auth=self.hook._resolved_yarn_rm_auth, timeout=30, **kwargs)
        except requests.RequestException as err:
            raise RuntimeError(f"{method} {url} failed: {err}") from err
        if response.status_code not in (200, 202):
            raise RuntimeError(f"{method} {url} answered HTTP {response.status_code}: {response.text[:300]}")
        return response

    def delete_driver_pod(self, namespace: str, pod: str) -> None:
        self.hook._kubernetes_driver_pod = pod
        self.hook._connection["namespace"] = namespace
        self.hook._delete_driver_pod()

    @staticmethod
    def kube_client():
        """The Spark provider's Kubernetes client module (``None`` without the cncf-kubernetes provider)."""
        from airflow.providers.apache.spark.hooks import spark_submit

        return getattr(spark_submit, "kube_client", None)
