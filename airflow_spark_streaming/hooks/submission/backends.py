"""One backend per cluster manager: how a driver that outlives its task is prepared, submitted, watched and killed.

A backend's ``deployment`` name is stored in each :class:`SparkSubmission`, so
a later task (a retry, a stop) finds the backend that owns the driver.
:func:`backend_for` picks the one a ``spark`` connection's master and deploy
mode call for. To add a cluster manager, subclass :class:`ClusterBackend` and
list it in :data:`CLUSTER_BACKENDS`.

Standalone clusters refuse Python applications in cluster deploy mode. The
standalone backend runs them the way Spark runs Python drivers on YARN and
Kubernetes: the driver's main class is Spark's own
``org.apache.spark.deploy.PythonRunner``, carried by a tiny launcher jar, and
the Python file is its first argument.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from airflow.sdk.exceptions import AirflowException

from airflow_spark_streaming.exceptions import ClusterManagerError, SparkSubmissionError
from airflow_spark_streaming.hooks.submission._spark_compat import SparkSubmitAdapter
from airflow_spark_streaming.hooks.submission.models import DriverState, SparkJob, SparkSubmission
from airflow_spark_streaming.hooks.submission.private_files import PROPERTIES_FILE, write_private_files

PYTHON_RUNNER_CLASS = "org.apache.spark.deploy.PythonRunner"
LAUNCHER_JAR_NAME = "python-driver-launcher.jar"  # protocol: staged in the checkpoint's _staging/
KILL_WAIT_SECONDS = 15

log = logging.getLogger(__name__)


def python_launcher_jar() -> bytes:
    """An empty jar: the primary resource of a standalone cluster-mode Python driver (Spark needs one)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: airflow-spark-streaming\r\n\r\n")
    return buffer.getvalue()


def staged_spec_name(tag: str) -> str:
    return f"spec-{tag}.json"  # protocol: the runner deletes it once read


class Prepared(NamedTuple):
    """What :meth:`SubmissionBackend.prepare` made ready for spark-submit."""

    application: str
    submit_kwargs: dict[str, Any]  # for SubmissionBackend.submit
    remove_after_submit: Path | None  # a private folder spark-submit reads and nothing needs later


class SubmissionBackend:
    """Prepare, submit, state and kill for one kind of deployment."""

    deployment: ClassVar[str]

    def __init__(self, spark: SparkSubmitAdapter) -> None:
        self.spark = spark

    def prepare(self, job: SparkJob, *, tag: str, checkpoint) -> Prepared:
        """Write or stage what the driver reads: its spec, secrets and jars."""
        raise NotImplementedError

    def submit(self, application: str, *, tag: str, **record: Any) -> SparkSubmission:
        raise NotImplementedError

    def get_state(self, submission: SparkSubmission) -> DriverState:
        raise NotImplementedError

    def kill(self, submission: SparkSubmission) -> None:
        raise NotImplementedError

    def release(self, submission: SparkSubmission, checkpoint) -> None:
        """The driver has read its private files (or is gone): remove what is left of them."""

    def _submission(self, submission_id: str, tag: str, **record: Any) -> SparkSubmission:
        return SparkSubmission(self.deployment, submission_id, tag, self.spark.conn_id, self.spark.master,
                               time.time(), **record)  # fmt: skip


# --- cluster deploy mode ----------------------------------------------------------------------


class ClusterBackend(SubmissionBackend):
    """A driver the cluster manager runs: spark-submit hands it over and returns."""

    @classmethod
    def serves(cls, spark: SparkSubmitAdapter) -> bool:
        """This backend runs cluster-mode drivers of the connection's master."""
        raise NotImplementedError

    def prepare(self, job: SparkJob, *, tag: str, checkpoint) -> Prepared:
        args = list(job.application_args)
        if job.spec is not None:
            # The driver runs on another host: it reads its spec next to its checkpoint, then deletes it.
            uri = checkpoint.stage_file(staged_spec_name(tag), json.dumps(job.spec).encode())
            args = ["--spec-uri", uri, "--delete-spec-file"]
        private = Path(tempfile.mkdtemp(prefix="spark-streaming-"))  # spark-submit reads it, then it goes
        _, properties_file = write_private_files(private, secret_conf=job.secret_conf)
        self.spark.set_application(args, properties_file)
        return Prepared(job.application, {}, private)

    def submit(self, application: str, *, tag: str, **record: Any) -> SparkSubmission:
        application = self._before_submit(application, record.pop("launcher_jar", None))
        try:
            self.spark.submit(application)
        except (AirflowException, RuntimeError) as err:
            raise SparkSubmissionError(f"spark-submit to {self.spark.master} failed: {err}") from err
        submission_id = self._submitted_id()
        if not submission_id:
            raise SparkSubmissionError(
                f"spark-submit to {self.spark.master} exited without reporting the driver's id, so the driver could "
                "not be tracked; keep spark-submit's log level at INFO (log4j.logger.org.apache.spark.deploy=INFO)."
            )
        log.info("Submitted %s driver %s", self.deployment, submission_id)
        return self._submission(submission_id, tag, **record)

    def _before_submit(self, application: str, launcher_jar: str | None) -> str:
        """Make spark-submit return once the cluster manager has the driver; return the primary resource."""
        return application

    def _submitted_id(self) -> str | None:
        raise NotImplementedError

    def release(self, submission: SparkSubmission, checkpoint) -> None:
        # The runner deletes its staged spec once read; a driver that died first must not leave it behind.
        checkpoint.remove_staged(staged_spec_name(submission.tag))


class StandaloneBackend(ClusterBackend):
    """A standalone Master (``spark://``): the Master's REST server reports and kills."""

    deployment = "standalone"

    @classmethod
    def serves(cls, spark: SparkSubmitAdapter) -> bool:
        return spark.master.startswith("spark://")

    def prepare(self, job: SparkJob, *, tag: str, checkpoint) -> Prepared:
        prepared = super().prepare(job, tag=tag, checkpoint=checkpoint)
        self.stage_jars(checkpoint)
        if job.application.endswith(".py"):
            prepared.submit_kwargs["launcher_jar"] = checkpoint.stage_file(LAUNCHER_JAR_NAME, python_launcher_jar())
        return prepared

    def stage_jars(self, checkpoint) -> None:
        """Copy the job's local jars next to the checkpoint (``_staging/jars/``) and submit those instead.

        A cluster-mode driver runs on a worker, which cannot read this host's
        files but can read the checkpoint's storage. Jars already staged with
        the same size are not copied again.
        """
        staged = []
        for jar in self.spark.jars:
            if "://" in jar and not jar.startswith("file:"):
                staged.append(jar)  # already on shared storage
                continue
            local = Path(jar.removeprefix("file://").removeprefix("file:"))
            staged.append(checkpoint.stage_file(f"jars/{local.name}", local))
        self.spark.jars = staged

    def _before_submit(self, application: str, launcher_jar: str | None) -> str:
        if not application.endswith(".py"):
            return application
        if not launcher_jar:
            raise SparkSubmissionError(
                "A Python application in standalone cluster mode needs launcher_jar, a location the "
                "workers can read python_launcher_jar() from."
            )
        self.spark.run_main_class(PYTHON_RUNNER_CLASS, [application])
        return launcher_jar

    def _submitted_id(self) -> str | None:
        return self.spark.standalone_driver_id

    def get_state(self, submission: SparkSubmission) -> DriverState:
        return DriverState.parse(self._request("status", submission.submission_id).get("driverState", "NOT_FOUND"))

    def kill(self, submission: SparkSubmission) -> None:
        self._request("kill", submission.submission_id)

    def _request(self, action: str, driver_id: str) -> dict[str, Any]:
        """One call to the standalone Master's REST server (``status`` or ``kill``)."""
        import requests

        endpoint = self.spark.rest_endpoint
        if not endpoint:
            raise ClusterManagerError(
                f"Spark connection {self.spark.conn_id!r} has no REST endpoint for the standalone Master; use a "
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


class YarnBackend(ClusterBackend):
    """YARN: the ResourceManager's REST API reports and kills."""

    deployment = "yarn"

    @classmethod
    def serves(cls, spark: SparkSubmitAdapter) -> bool:
        return spark.is_yarn

    def _before_submit(self, application: str, launcher_jar: str | None) -> str:
        try:
            self.spark.check_yarn_rm_address()  # state and kill need it: fail before submitting, not after
        except ValueError as err:
            raise SparkSubmissionError(f"Spark connection {self.spark.conn_id!r}: {err}") from err
        self.spark.set_conf("spark.yarn.submit.waitAppCompletion", "false")
        return application

    def _submitted_id(self) -> str | None:
        return self.spark.yarn_application_id

    def get_state(self, submission: SparkSubmission) -> DriverState:
        try:
            return DriverState.parse(self.spark.query_yarn_application_status(submission.submission_id))
        except (RuntimeError, ValueError) as err:
            raise ClusterManagerError(f"YARN could not report application {submission.submission_id}: {err}") from err

    def kill(self, submission: SparkSubmission) -> None:
        self.spark.kill_yarn_application(submission.submission_id)


class KubernetesBackend(ClusterBackend):
    """Kubernetes: the driver pod's phase is its state; deleting the pod kills it."""

    deployment = "kubernetes"

    @classmethod
    def serves(cls, spark: SparkSubmitAdapter) -> bool:
        return spark.is_kubernetes

    def _before_submit(self, application: str, launcher_jar: str | None) -> str:
        self.spark.set_conf("spark.kubernetes.submission.waitAppCompletion", "false")
        self.spark.track_driver_via_k8s_api()  # spark-submit returns before the driver has an exit code
        return application

    def _submitted_id(self) -> str | None:
        pod = self.spark.kubernetes_driver_pod
        return f"{self.spark.namespace}:{pod}" if pod else None

    def get_state(self, submission: SparkSubmission) -> DriverState:
        kube_client = self.spark.kube_client()
        if kube_client is None:
            raise ClusterManagerError("Install apache-airflow-providers-cncf-kubernetes to track Kubernetes drivers.")
        namespace, pod = submission.submission_id.split(":", 1)
        try:
            found = kube_client.get_kube_client().read_namespaced_pod(pod, namespace)
        except kube_client.ApiException as err:
            if err.status == 404:
                return DriverState.NOT_FOUND
            raise ClusterManagerError(
                f"Kubernetes could not report driver pod {submission.submission_id}: {err}"
            ) from err
        return DriverState.parse(found.status.phase or "Pending")

    def kill(self, submission: SparkSubmission) -> None:
        namespace, pod = submission.submission_id.split(":", 1)
        self.spark.delete_driver_pod(namespace, pod)


#: Cluster-mode backends, asked in this order whether they serve the connection's master.
CLUSTER_BACKENDS: tuple[type[ClusterBackend], ...] = (KubernetesBackend, YarnBackend, StandaloneBackend)


# --- client deploy mode: a detached spark-submit on this host -----------------------------------


class LocalDetachedBackend(SubmissionBackend):
    """Client deploy mode: spark-submit runs detached on this host, in its own session; its process is the state."""

    deployment = "client"

    def prepare(self, job: SparkJob, *, tag: str, checkpoint) -> Prepared:
        from airflow_spark_streaming.jvm import cache_dir

        # The files outlive this task: the runner deletes the spec once read, and release() removes
        # the properties file (secrets) as soon as the driver holds the lease.
        private = cache_dir() / "drivers" / f"{job.label}-{tag[:8]}"
        private.mkdir(parents=True, mode=0o700)
        spec_file, properties_file = write_private_files(private, spec=job.spec, secret_conf=job.secret_conf)
        args = ["--spec-file", spec_file, "--delete-spec-file"] if spec_file else list(job.application_args)
        self.spark.set_application(args, properties_file)
        return Prepared(job.application, {"log_path": private / "driver.log"}, None)

    def submit(self, application: str, *, tag: str, **record: Any) -> SparkSubmission:
        record.pop("launcher_jar", None)
        log_path = record.pop("log_path", None)
        command = self.spark.build_command(application)
        env = {**os.environ, **self.spark.env}
        output = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
        try:
            driver = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True, env=env)  # fmt: skip
        finally:
            if log_path:
                output.close()
        self.spark.adopt_process(driver)
        host = socket.gethostname()
        log.info("Started detached driver pid %s; log %s", driver.pid, log_path)
        return self._submission(f"{host}:{driver.pid}", tag, host=host, pid=driver.pid,
                                driver_log=str(log_path) if log_path else None, **record)  # fmt: skip

    def get_state(self, submission: SparkSubmission) -> DriverState:
        """``RUNNING`` or ``EXITED``; ``ON_OTHER_HOST`` when this worker cannot see it."""
        if submission.host != socket.gethostname():
            return DriverState.ON_OTHER_HOST
        _reap(submission.pid)
        alive = _is_tagged_process(submission.pid, submission.tag)
        return DriverState.RUNNING if alive else DriverState.EXITED

    def kill(self, submission: SparkSubmission) -> None:
        if submission.host != socket.gethostname():
            raise ClusterManagerError(
                f"Driver {submission.submission_id} runs in client mode on {submission.host}; only that host can "
                "kill it."
            )
        kill_process(submission.pid, lambda: _is_tagged_process(submission.pid, submission.tag), group=True)

    def release(self, submission: SparkSubmission, checkpoint) -> None:
        if submission.driver_log:
            Path(submission.driver_log).with_name(PROPERTIES_FILE).unlink(missing_ok=True)

    @staticmethod
    def kill_lease_holder(pid: int, host: str | None, heartbeat_at: float) -> bool:
        """Kill a driver another starter ran on this host, by the pid its lease names; ``False`` if not here.

        The pid must belong to a process that started before the lease's last
        heartbeat: a pid the system reused since is never signalled.
        """
        if host != socket.gethostname() or not pid:
            return False
        log.warning("Killing driver pid %s, which holds the lease", pid)
        kill_process(pid, lambda: started_before(pid, heartbeat_at), group=False)
        return True


def backend_for(spark: SparkSubmitAdapter) -> type[SubmissionBackend]:
    """The backend a connection's master and deploy mode call for."""
    if spark.deploy_mode != "cluster":
        return LocalDetachedBackend
    for backend in CLUSTER_BACKENDS:
        if backend.serves(spark):
            return backend
    raise SparkSubmissionError(
        f"Spark connection {spark.conn_id!r}: deploy mode 'cluster' is not supported on master {spark.master}; "
        "use a spark://, yarn or k8s:// master, or deploy mode 'client'."
    )


BACKENDS: dict[str, type[SubmissionBackend]] = {b.deployment: b for b in (LocalDetachedBackend, *CLUSTER_BACKENDS)}


def backend_named(deployment: str, submission_id: str) -> type[SubmissionBackend]:
    try:
        return BACKENDS[deployment]
    except KeyError:
        raise ClusterManagerError(f"Unknown deployment {deployment!r} in submission {submission_id}.") from None


# --- processes on this host -------------------------------------------------------------------


def _process_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or ``None`` without /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _is_tagged_process(pid: int | None, tag: str | None) -> bool:
    """The pid is alive and still the process we started: its command line carries the tag.

    A child this process forked a moment ago may not have exec'd spark-submit
    yet, so it still shows our command line; it counts as ours too.
    """
    if not pid:
        return False
    stat = _process_stat(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = None
    if stat is None or cmdline is None:
        return _pid_alive(pid)  # no /proc (macOS): trust a live pid
    state, parent = stat[0], int(stat[1])
    if state == "Z":
        return False
    return bool(tag) and tag.encode() in cmdline or parent == os.getpid()


def started_before(pid: int, moment: float) -> bool:
    """The live, non-zombie process ``pid`` started before ``moment`` (epoch seconds): it is not a reused pid."""
    stat = _process_stat(pid)
    if stat is None:
        return _pid_alive(pid)
    if stat[0] == "Z":
        return False
    try:
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))  # fmt: skip
    except (OSError, StopIteration):
        return True
    started = boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: start time in clock ticks
    return started <= moment + 1  # the clock-tick rounding


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _reap(pid: int | None) -> None:
    """Collect our own exited child, so it does not linger as a zombie that still looks alive."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, TypeError, OSError):
        pass


def kill_process(pid: int, still_ours, *, group: bool) -> None:
    """SIGTERM, then SIGKILL, ``pid`` (or the process group it leads), while ``still_ours()`` says it is the same."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not still_ours():
            return
        try:
            (os.killpg if group else os.kill)(pid, sig)  # spark-submit leads its own session: JVM and Python go too
        except ProcessLookupError:
            return
        except PermissionError as err:
            raise ClusterManagerError(f"Not allowed to kill process group {pid}: {err}") from err
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while time.monotonic() < deadline:
            _reap(pid)
            if not still_ours():
                return
            time.sleep(0.2)
