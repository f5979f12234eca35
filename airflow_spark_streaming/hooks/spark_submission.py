"""Submit a Spark driver that outlives the task, then find, watch and kill it through its cluster manager.

The Spark provider's ``SparkSubmitHook`` builds the spark-submit command and
parses what spark-submit prints (standalone driver id, YARN application id,
Kubernetes driver pod). This subclass adds what a streaming driver needs on top:

- submission that returns at once: a detached process in client mode, and
  ``waitAppCompletion=false`` (or the standalone Master's own hand-off) in
  cluster mode;
- one state vocabulary across cluster managers, for the task's retries;
- a kill that reaches the driver wherever it runs.

Standalone clusters refuse Python applications in cluster deploy mode. The hook
runs them the way Spark runs Python drivers on YARN and Kubernetes: the driver's
main class is Spark's own ``org.apache.spark.deploy.PythonRunner``, carried by a
tiny launcher jar, and the Python file is its first argument.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import time
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException

from airflow_spark_streaming.exceptions import ClusterManagerError, SparkSubmissionError

SUBMISSION_CONF = "spark.airflow_spark_streaming.submission"  # read by the stream runner into its lease
PYTHON_RUNNER_CLASS = "org.apache.spark.deploy.PythonRunner"

#: Driver states in which the driver is alive (or the cluster manager is still placing it).
ACTIVE_STATES = frozenset(
    {"SUBMITTED", "RUNNING", "RELAUNCHING", "UNKNOWN", "NEW", "NEW_SAVING", "ACCEPTED", "PENDING"}
)
#: Driver states of a driver that exited cleanly.
SUCCEEDED_STATES = frozenset({"FINISHED", "SUCCEEDED"})


@dataclass
class SparkSubmission:
    """One submitted driver: where it runs and how to reach it. JSON-serialisable.

    ``submission_id`` is what the cluster manager calls it: a standalone driver
    id, a YARN application id, ``namespace:pod`` on Kubernetes, or ``host:pid``
    of the detached spark-submit process in client mode. ``tag`` is a random id
    that the stream runner writes into the checkpoint's lease, so a lease can be
    matched to the submission that started it.
    """

    deployment: str  # "client", "standalone", "yarn" or "kubernetes"
    submission_id: str
    tag: str
    conn_id: str
    master: str
    submitted_at: float
    host: str | None = None
    pid: int | None = None
    driver_log: str | None = None
    committed_before: int = -1
    owner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SparkSubmission:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def python_launcher_jar() -> bytes:
    """An empty jar: the primary resource of a standalone cluster-mode Python driver (Spark needs one)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: airflow-spark-streaming\r\n\r\n")
    return buffer.getvalue()


class StreamingSubmitHook(BaseHook):
    """The Spark provider's ``SparkSubmitHook``, for drivers that keep running after the task: submit, state, kill.

    Takes every ``SparkSubmitHook`` argument and uses the same ``spark``
    connection. The ``SparkSubmitHook`` it drives (``spark_submit``) is made on
    first use, so importing this module stays cheap for the scheduler.
    """

    conn_name_attr = "conn_id"
    default_conn_name = "spark_default"
    conn_type = "spark"
    hook_name = "Spark Streaming Submit"

    def __init__(self, conn_id: str = default_conn_name, **spark_submit_kwargs: Any) -> None:
        super().__init__()
        self.conn_id = conn_id
        self._spark_submit_kwargs = spark_submit_kwargs
        self._spark_submit = None

    @property
    def spark_submit(self):
        """The Spark provider's ``SparkSubmitHook``, which builds and parses every spark-submit call."""
        if self._spark_submit is None:
            from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

            self._spark_submit = SparkSubmitHook(conn_id=self.conn_id, **self._spark_submit_kwargs)
        return self._spark_submit

    def submit(self, application: str) -> None:
        """Run spark-submit and wait for it, as ``SparkSubmitHook.submit`` does."""
        self.spark_submit.submit(application)

    def on_kill(self) -> None:
        self.spark_submit.on_kill()

    @property
    def master(self) -> str:
        return self.spark_submit._connection["master"]

    @property
    def deployment(self) -> str:
        """``client`` (the driver runs on this host), ``standalone``, ``yarn`` or ``kubernetes``."""
        if self.spark_submit._connection["deploy_mode"] != "cluster":
            return "client"
        if self.spark_submit._is_kubernetes:
            return "kubernetes"
        if self.spark_submit._is_yarn:
            return "yarn"
        if self.master.startswith("spark://"):
            return "standalone"
        raise SparkSubmissionError(
            f"Spark connection {self.conn_id!r}: deploy mode 'cluster' is not supported on master {self.master}; "
            "use a spark://, yarn or k8s:// master, or deploy mode 'client'."
        )

    def set_application(self, application_args: list[str], properties_file: str | None = None) -> None:
        """Arguments and properties file, known only once the task has staged its spec."""
        self.spark_submit._application_args = list(application_args)
        self.spark_submit._properties_file = properties_file

    def stage_jars(self, checkpoint) -> None:
        """Copy the job's local jars next to the checkpoint (``_staging/jars/``) and submit those instead.

        A cluster-mode driver runs on a worker, which cannot read this host's
        files but can read the checkpoint's storage. Jars already staged with
        the same size are not copied again.
        """
        staged = []
        for jar in filter(None, (self.spark_submit._jars or "").split(",")):
            local = Path(jar.removeprefix("file://").removeprefix("file:"))
            if "://" in jar and not jar.startswith("file:"):
                staged.append(jar)  # already on shared storage
                continue
            staged.append(checkpoint.stage_file(f"jars/{local.name}", local))
        self.spark_submit._jars = ",".join(staged) or None

    # --- submit --------------------------------------------------------------------------------

    def submit_driver(
        self, application: str, *, tag: str, log_path: Path | None = None, launcher_jar: str | None = None
    ) -> SparkSubmission:
        """Submit ``application`` and return as soon as its driver is handed over, with its id.

        :param tag: written into the driver's Spark conf; the stream runner puts it in its lease.
        :param log_path: client mode: where the detached driver's output goes.
        :param launcher_jar: standalone cluster mode with a Python application: a location the
            worker can fetch :func:`python_launcher_jar` from.
        """
        self.spark_submit._conf = {**self.spark_submit._conf, SUBMISSION_CONF: tag}
        deployment = self.deployment
        if deployment == "client":
            return self._start_detached(application, tag=tag, log_path=log_path)
        if deployment == "standalone" and application.endswith(".py"):
            if not launcher_jar:
                raise SparkSubmissionError(
                    "A Python application in standalone cluster mode needs launcher_jar, a location the "
                    "workers can read python_launcher_jar() from."
                )
            self.spark_submit._java_class = PYTHON_RUNNER_CLASS
            self.spark_submit._application_args = [
                application,
                self.spark_submit._py_files or "",
                *(self.spark_submit._application_args or []),
            ]
            application = launcher_jar
        elif deployment == "yarn":
            try:
                self.spark_submit._get_yarn_rm_base_url()  # status and kill need it: fail before submitting, not after
            except ValueError as err:
                raise SparkSubmissionError(f"Spark connection {self.conn_id!r}: {err}") from err
            self.spark_submit._conf["spark.yarn.submit.waitAppCompletion"] = "false"
        elif deployment == "kubernetes":
            self.spark_submit._conf["spark.kubernetes.submission.waitAppCompletion"] = "false"
            self.spark_submit._track_driver_via_k8s_api = (
                True  # spark-submit returns before the driver has an exit code
            )
        try:
            self.spark_submit.submit(application)
        except (AirflowException, RuntimeError) as err:
            raise SparkSubmissionError(f"spark-submit to {self.master} failed: {err}") from err
        if deployment == "standalone":
            submission_id = self.spark_submit._driver_id
        elif deployment == "yarn":
            submission_id = self.spark_submit._yarn_application_id
        else:
            pod = self.spark_submit._kubernetes_driver_pod
            submission_id = f"{self.spark_submit._connection['namespace'] or 'default'}:{pod}" if pod else None
        if not submission_id:
            raise SparkSubmissionError(
                f"spark-submit to {self.master} exited without reporting the driver's id, so the driver could not "
                "be tracked; keep spark-submit's log level at INFO (log4j.logger.org.apache.spark.deploy=INFO)."
            )
        self.log.info("Submitted %s driver %s", deployment, submission_id)
        return SparkSubmission(deployment, submission_id, tag, self.conn_id, self.master, time.time())

    def _start_detached(self, application: str, *, tag: str, log_path: Path | None) -> SparkSubmission:
        command = self.spark_submit._build_spark_submit_command(application)
        env = {**os.environ, **(self.spark_submit._env or {})}
        log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
        try:
            driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True, env=env)  # fmt: skip
        finally:
            if log_path:
                log.close()
        self.spark_submit._submit_sp = driver
        host = socket.gethostname()
        self.log.info("Started detached driver pid %s; log %s", driver.pid, log_path)
        return SparkSubmission("client", f"{host}:{driver.pid}", tag, self.conn_id, self.master, time.time(),
                               host=host, pid=driver.pid, driver_log=str(log_path) if log_path else None)  # fmt: skip

    # --- state ---------------------------------------------------------------------------------

    def get_driver_state(self, submission: SparkSubmission) -> str:
        """The driver's state in upper case; active ones are in :data:`ACTIVE_STATES`.

        Client mode reports ``RUNNING`` or ``EXITED`` (or ``ON_OTHER_HOST``: this
        worker cannot see it); a driver the cluster manager no longer knows is
        ``NOT_FOUND``.
        """
        kind = submission.deployment
        if kind == "client":
            return _local_driver_state(submission)
        if kind == "standalone":
            return self._standalone_request("status", submission.submission_id).get("driverState", "NOT_FOUND")
        if kind == "yarn":
            try:
                return self.spark_submit.query_yarn_application_status(submission.submission_id).upper()
            except (RuntimeError, ValueError) as err:
                raise ClusterManagerError(
                    f"YARN could not report application {submission.submission_id}: {err}"
                ) from err
        if kind == "kubernetes":
            return self._kubernetes_pod_phase(submission.submission_id)
        raise ClusterManagerError(f"Unknown deployment {kind!r} in submission {submission.submission_id}.")

    def kill_driver(self, submission: SparkSubmission) -> None:
        """Kill the driver through whatever runs it."""
        kind = submission.deployment
        self.log.warning("Killing %s driver %s", kind, submission.submission_id)
        if kind == "client":
            _kill_local_driver(submission)
        elif kind == "standalone":
            self._standalone_request("kill", submission.submission_id)
        elif kind == "yarn":
            self.spark_submit._kill_yarn_application(submission.submission_id)
        elif kind == "kubernetes":
            namespace, pod = submission.submission_id.split(":", 1)
            self.spark_submit._kubernetes_driver_pod = pod
            self.spark_submit._connection["namespace"] = namespace
            self.spark_submit._delete_driver_pod()
        else:
            raise ClusterManagerError(f"Unknown deployment {kind!r} in submission {submission.submission_id}.")

    def _standalone_request(self, action: str, driver_id: str) -> dict[str, Any]:
        """One call to the standalone Master's REST server (``status`` or ``kill``)."""
        import requests

        endpoint = self.spark_submit._connection.get("rest_endpoint")
        if not endpoint:
            raise ClusterManagerError(
                f"Spark connection {self.conn_id!r} has no REST endpoint for the standalone Master; use a "
                "connection of type 'spark' with deploy mode 'cluster' (extra 'rest-port' if not 6066)."
            )
        url = f"{endpoint}/v1/submissions/{action}/{driver_id}"
        try:
            response = requests.post(url, timeout=30) if action == "kill" else requests.get(url, timeout=30)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as err:
            raise ClusterManagerError(
                f"The standalone Master's REST server at {endpoint} did not answer {action} for {driver_id}: {err}. "
                "Start the Master with spark.master.rest.enabled=true and set the connection's 'rest-port'."
            ) from err
        if action == "kill" and not data.get("success"):
            raise ClusterManagerError(f"The standalone Master refused to kill {driver_id}: {data.get('message')}")
        return data

    def _kubernetes_pod_phase(self, submission_id: str) -> str:
        from airflow.providers.apache.spark.hooks import spark_submit

        kube_client = getattr(spark_submit, "kube_client", None)  # only with the cncf-kubernetes provider
        if kube_client is None:
            raise ClusterManagerError("Install apache-airflow-providers-cncf-kubernetes to track Kubernetes drivers.")
        namespace, pod = submission_id.split(":", 1)
        try:
            found = kube_client.get_kube_client().read_namespaced_pod(pod, namespace)
        except kube_client.ApiException as err:
            if err.status == 404:
                return "NOT_FOUND"
            raise ClusterManagerError(f"Kubernetes could not report driver pod {submission_id}: {err}") from err
        return (found.status.phase or "Pending").upper()


# --- client mode: the detached spark-submit process on this host ------------------------------


def _is_our_process(submission: SparkSubmission) -> bool:
    """The pid is alive and still the process we started: its command line carries the tag.

    A child this process forked a moment ago may not have exec'd spark-submit
    yet, so it still shows our command line; it counts as ours too.
    """
    try:
        cmdline = Path(f"/proc/{submission.pid}/cmdline").read_bytes()
        fields_after_name = Path(f"/proc/{submission.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        try:
            os.kill(submission.pid, 0)  # no /proc (macOS): trust a live pid
        except OSError:
            return False
        return True
    state, parent = fields_after_name[0], int(fields_after_name[1])
    if state == "Z":
        return False
    return submission.tag.encode() in cmdline or parent == os.getpid()


def _local_driver_state(submission: SparkSubmission) -> str:
    if submission.host != socket.gethostname():
        return "ON_OTHER_HOST"
    _reap(submission.pid)
    return "RUNNING" if submission.pid and _is_our_process(submission) else "EXITED"


def _reap(pid: int | None) -> None:
    """Collect our own exited child, so it does not linger as a zombie that still looks alive."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, TypeError, OSError):
        pass


def _kill_local_driver(submission: SparkSubmission) -> None:
    if submission.host != socket.gethostname():
        raise ClusterManagerError(
            f"Driver {submission.submission_id} runs in client mode on {submission.host}; only that host can kill it."
        )
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _is_our_process(submission):
            return
        try:
            os.killpg(submission.pid, sig)  # spark-submit leads its own session: driver JVM and Python go too
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            _reap(submission.pid)
            if not _is_our_process(submission):
                return
            time.sleep(0.2)
