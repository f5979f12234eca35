"""Standalone Master (``spark://``) in cluster deploy mode: the Master's REST server reports and kills.

Standalone clusters refuse Python applications in cluster deploy mode. This
backend runs them the way Spark runs Python drivers on YARN and Kubernetes:
the driver's main class is Spark's own ``org.apache.spark.deploy.PythonRunner``,
carried by a tiny launcher jar, and the Python file is its first argument.

The Master puts Spark settings on the driver's command line, so a run with
credentials in its Spark settings is refused (:meth:`StandaloneBackend.review`),
and the job's jars are resolved with Maven to be staged where workers read them.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from airflow_spark_streaming.exceptions import ClusterManagerError, SparkSubmissionError
from airflow_spark_streaming.runner.protocol import PYTHON_LAUNCHER_JAR, STAGED_JARS_DIR
from airflow_spark_streaming.spark.submission.backends.base import ClusterBackend, Prepared
from airflow_spark_streaming.spark.submission.models import DriverState, SparkJob, SparkSubmission, SubmissionRequest
from airflow_spark_streaming.spark.submission.spark_compat import SparkSubmitAdapter

PYTHON_RUNNER_CLASS = "org.apache.spark.deploy.PythonRunner"

log = logging.getLogger(__name__)


def python_launcher_jar() -> bytes:
    """An empty jar: the primary resource of a standalone cluster-mode Python driver (Spark needs one)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: airflow-spark-streaming\r\n\r\n")
    return buffer.getvalue()


def refuse_credentials(keys, who: str) -> None:
    """A standalone Master passes Spark settings to the driver as ``-D`` flags: credentials would be on its argv."""
    if keys:
        raise SparkSubmissionError(
            f"{who}: the Spark settings {', '.join(sorted(keys))} hold credentials, and a standalone Master in "
            "cluster deploy mode puts Spark settings on the driver's command line. Submit in client mode, or give "
            "the cluster its own credentials (spark-defaults.conf, an instance role) and leave them out of conf "
            "and the storage connection; Kafka credentials can go in the spec's source or sink options."
        )


class StandaloneBackend(ClusterBackend):
    """A standalone Master (``spark://``): the Master's REST server reports and kills."""

    deployment = "standalone"

    @classmethod
    def serves(cls, spark: SparkSubmitAdapter) -> bool:
        return spark.master.startswith("spark://")

    def review(self, request: SubmissionRequest) -> SubmissionRequest:
        """No credentials in Spark settings, and the job's jars resolved with Maven, so that they can be staged.

        A standalone cluster-mode driver resolves ``--packages`` for itself only, never for its executors;
        jars resolved here and staged beside the checkpoint reach both.
        """
        refuse_credentials(request.secret_keys, request.who)
        if request.jvm_resolver == "maven":
            return request
        log.info("Standalone cluster deploy mode: resolving the job's jars with Maven, to stage them")
        return replace(request, jvm_resolver="maven")

    def prepare(self, job: SparkJob, *, tag: str, checkpoint) -> Prepared:
        refuse_credentials(job.secret_conf, job.label or job.application)
        self.stage_jars(checkpoint)
        launcher = {}
        if job.application.endswith(".py"):
            launcher["launcher_jar"] = checkpoint.stage_file(PYTHON_LAUNCHER_JAR, python_launcher_jar())
        prepared = super().prepare(job, tag=tag, checkpoint=checkpoint)  # last: it writes the private folder
        return prepared._replace(submit_kwargs={**prepared.submit_kwargs, **launcher})

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
            staged.append(checkpoint.stage_file(f"{STAGED_JARS_DIR}/{local.name}", local))
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
