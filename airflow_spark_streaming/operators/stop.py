"""Stop a stream runner query from a DAG: gracefully after its current micro-batch, killed through its backend if not.

The checkpoint hook is imported inside ``execute``: it is most of the
provider's import cost, and DAG files that only declare tasks never need it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_spark_streaming.exceptions import CheckpointNotFoundError, StreamingRunIncompleteError
from airflow_spark_streaming.utils.deprecation import renamed_parameter

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_spark_streaming.hooks.submission import SparkSubmission, StreamingSubmitHook


class StopStreamingQueryOperator(BaseOperator):
    """Stop a stream runner query gracefully: after its current micro-batch, with nothing left uncommitted.

    Writes the stop marker (``<checkpoint>/_stop``) that the runner watches (user
    applications can watch it with ``watch_stop_marker``), then waits until the
    runner has released its lease: the query terminated. After ``timeout``
    seconds it kills the driver (``kill_on_timeout``): through its cluster
    manager (standalone Master, YARN, Kubernetes) when
    :class:`SparkStreamingSubmitOperator` submitted it, which it records in the
    checkpoint's ``_submission``; through its process when it runs on this
    host and the process is still the one that wrote the lease; otherwise it
    fails and says what to kill.

    Both records are acted on only when signed with the control key (``control_conn_id``), and a
    process is killed by pid only when it carries the submission's tag and recorded start time. A
    ``_submission`` that claims the running driver but is not validly signed is refused
    (:class:`UntrustedControlRecordError`) before anything is written or killed.

    :param checkpoint: the query's checkpoint location. (templated)
    :param storage_conn_id: the checkpoint's storage connection.
    :param spark_conn_id: the ``spark`` connection for the kill (default: the one the driver was submitted with).
    :param timeout: seconds to wait for the graceful stop.
    :param kill_on_timeout: kill a driver that does not stop in time.
    :param poll_interval: seconds between checks.
    :param control_conn_id: the connection holding the control key in its password (default
        ``spark_streaming_control_default``); a kill needs it.
    :param checkpoint_conn_id: deprecated spelling of ``storage_conn_id``.
    :param conn_id: deprecated spelling of ``spark_conn_id``.
    """

    template_fields: Sequence[str] = ("checkpoint",)

    def __init__(
        self,
        *,
        checkpoint: str,
        storage_conn_id: str | None = None,
        spark_conn_id: str | None = None,
        timeout: float = 300,
        kill_on_timeout: bool = True,
        poll_interval: float = 1.0,
        control_conn_id: str | None = None,
        checkpoint_conn_id: str | None = None,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = f"{type(self).__name__}({self.task_id})"
        self.storage_conn_id = renamed_parameter(
            owner, "checkpoint_conn_id", "storage_conn_id", checkpoint_conn_id, storage_conn_id
        )
        self.spark_conn_id = renamed_parameter(owner, "conn_id", "spark_conn_id", conn_id, spark_conn_id)
        from airflow_spark_streaming.utils import params

        self.checkpoint = params.unless_template(
            params.location, self.task_id, "checkpoint", checkpoint, checkpoint=True
        )
        self.stop_timeout = params.seconds(self.task_id, "timeout", timeout)
        self.kill_on_timeout = params.strict_bool(self.task_id, "kill_on_timeout", kill_on_timeout)
        self.poll_interval = params.seconds(self.task_id, "poll_interval", poll_interval)
        self.control_conn_id = control_conn_id
        self._submit_hook: StreamingSubmitHook | None = None

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """A templated ``checkpoint`` is checked once rendered, as a literal one is when the DAG is parsed."""
        from airflow_spark_streaming.utils import params

        super().render_template_fields(context, jinja_env)
        params.location(self.task_id, "checkpoint", self.checkpoint, checkpoint=True)

    def _hook_for(self, submission: SparkSubmission | None) -> StreamingSubmitHook:
        from airflow_spark_streaming.hooks.submission import StreamingSubmitHook

        if self._submit_hook is None:
            self._submit_hook = StreamingSubmitHook(self.spark_conn_id or (submission.conn_id if submission else None))
        return self._submit_hook

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
        from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

        checkpoint = RunnerControlHook(
            self.checkpoint, storage_conn_id=self.storage_conn_id, control_conn_id=self.control_conn_id
        )
        from airflow_spark_streaming.hooks.submission import StreamingSubmitHook

        key = checkpoint.control_key(required=False)  # a kill needs it; a graceful stop does not
        lease, ours = StreamingSubmitHook.get_lease_holder(checkpoint, key=key)  # refuses a forged _submission
        killed = False
        if lease is None:
            self.log.info("No live query holds %s; nothing to stop", self.checkpoint)
        else:
            checkpoint.request_stop()
            deadline = time.monotonic() + self.stop_timeout
            while time.monotonic() < deadline and self._still_running(checkpoint, ours):
                time.sleep(self.poll_interval)
            if self._still_running(checkpoint, ours):
                if not self.kill_on_timeout:
                    raise StreamingRunIncompleteError(
                        f"{self.task_id}: the query on {self.checkpoint} ({lease.app_id} on {lease.host}) did not stop "
                        f"within {self.stop_timeout:.0f}s, and kill_on_timeout is off; raise timeout or kill it."
                    )
                self._kill(lease, ours, checkpoint, key)
                killed = True
            checkpoint.clear_stop_request()
        try:
            status = checkpoint.sibling(CheckpointHook).get_status(include_state=False)
        except CheckpointNotFoundError:
            status = None  # the query never started
        return {"was_running": lease is not None, "app_id": lease.app_id if lease else None, "killed": killed,
                "submission_id": ours.submission_id if ours else None,
                "deployment": ours.deployment if ours else None,
                "latest_committed_batch": status.latest_committed_batch if status else None,
                "has_uncommitted_batch": status.has_uncommitted_batch if status else False}  # fmt: skip

    def _still_running(self, checkpoint, submission: SparkSubmission | None) -> bool:
        """The lease is held, or (for a driver this provider submitted) its driver has not ended yet.

        The runner releases its lease just before its driver exits; waiting for
        both means the checkpoint read afterwards is the final one.
        """
        if checkpoint.get_lease() is not None:
            return True
        if submission is None:
            return False
        return self._hook_for(submission).get_driver_state(submission).is_active

    def _kill(self, lease, submission: SparkSubmission | None, checkpoint, key) -> None:
        hook = self._hook_for(submission)
        if submission is not None:
            self.log.warning(
                "Graceful stop timed out; killing %s driver %s", submission.deployment, submission.submission_id
            )
            hook.kill_driver(submission)
        elif not hook.kill_lease_holder(lease, checkpoint=checkpoint, key=key):
            raise StreamingRunIncompleteError(
                f"{self.task_id}: the query on {self.checkpoint} ({lease.app_id} on {lease.host}) did not stop within "
                f"{self.stop_timeout:.0f}s, and it was not submitted by this provider; kill application "
                f"{lease.app_id} with your cluster manager."
            )
