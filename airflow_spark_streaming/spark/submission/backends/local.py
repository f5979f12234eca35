"""Client deploy mode: spark-submit runs detached on this host, in its own session; its process is the state."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from airflow_spark_streaming.exceptions import ClusterManagerError, DriverProcessMismatchError
from airflow_spark_streaming.runner.control_auth import process_start_ticks
from airflow_spark_streaming.runner.protocol import SUBMISSION_ENV
from airflow_spark_streaming.spark.submission.backends.base import Prepared, SubmissionBackend
from airflow_spark_streaming.spark.submission.models import DriverState, SparkJob, SparkSubmission
from airflow_spark_streaming.spark.submission.private_files import (
    DRIVER_LOG,
    PROPERTIES_FILE,
    SPEC_FILE,
    confined_driver_log,
    driver_folder,
    write_job_files,
)

KILL_WAIT_SECONDS = 15

log = logging.getLogger(__name__)


class LocalDetachedBackend(SubmissionBackend):
    """Client deploy mode: spark-submit runs detached on this host, in its own session; its process is the state."""

    deployment = "client"

    def prepare(self, job: SparkJob, *, tag: str, checkpoint) -> Prepared:
        # The files outlive this task: the runner deletes the spec once read, and release() removes
        # the properties file (secrets) as soon as the driver holds the lease.
        private = driver_folder(job.label, tag)
        private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        private.mkdir(mode=0o700)
        self.spark.set_application(*write_job_files(private, job))
        return Prepared(job.application, {"log_path": private / DRIVER_LOG}, private, driver_reads_later=True)

    def submit(self, application: str, *, tag: str, **record: Any) -> SparkSubmission:
        record.pop("launcher_jar", None)
        log_path = record.pop("log_path", None)
        command = self.spark.build_command(application)
        # The tag in the environment of spark-submit, its JVM and the Python runner: a kill by pid checks it.
        env = {**os.environ, **self.spark.env, SUBMISSION_ENV: tag}
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
                                driver_log=str(log_path) if log_path else None,
                                pid_start=process_start_ticks(driver.pid), **record)  # fmt: skip

    def get_state(self, submission: SparkSubmission) -> DriverState:
        """``RUNNING`` or ``EXITED``; ``ON_OTHER_HOST`` when this worker cannot see it."""
        if submission.host != socket.gethostname():
            return DriverState.ON_OTHER_HOST
        _reap(submission.pid)
        alive = _is_tagged_process(submission.pid, submission.tag) and _started_at(submission.pid, submission.pid_start)
        return DriverState.RUNNING if alive else DriverState.EXITED

    def kill(self, submission: SparkSubmission) -> None:
        if submission.host != socket.gethostname():
            raise ClusterManagerError(
                f"Driver {submission.submission_id} runs in client mode on {submission.host}; only that host can "
                "kill it."
            )
        pid, tag = submission.pid, submission.tag
        refuse_unless_driver(pid, tag, submission.pid_start, f"driver {submission.submission_id}")
        kill_process(pid, lambda: is_driver_process(pid, tag, submission.pid_start), group=True,
                     started=submission.pid_start)  # fmt: skip

    def release(self, submission: SparkSubmission, checkpoint) -> None:
        """Remove the spec (if never read) and the secrets beside the driver's log; the log stays for
        ``get_driver_log_hint``. Only inside this run's own folder (:class:`ControlPathOutsideRunError`)."""
        if not submission.driver_log or submission.host != socket.gethostname():
            return  # nothing of it is on this host
        folder = confined_driver_log(submission.driver_log, submission.tag).parent
        for name in (PROPERTIES_FILE, SPEC_FILE):
            (folder / name).unlink(missing_ok=True)

    @staticmethod
    def kill_lease_holder(pid: int, host: str | None, *, tag: str | None, started: int | None) -> bool:
        """Kill the driver whose signed lease names ``pid`` on this host; ``False`` if it runs elsewhere.

        The live process must be the driver the provider started: it carries the submission ``tag``
        (in its environment or command line) and started at ``started`` (clock ticks after boot, as
        its lease recorded). Otherwise :class:`DriverProcessMismatchError`, and nothing is killed.
        """
        if host != socket.gethostname() or not pid:
            return False
        refuse_unless_driver(pid, tag, started, f"the lease holder (pid {pid})", require_start=True)
        log.warning("Killing driver pid %s, which holds the lease", pid)
        kill_process(pid, lambda: is_driver_process(pid, tag, started), group=False, started=started)
        return True


# --- processes on this host -------------------------------------------------------------------


def _process_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or ``None`` without /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _is_tagged_process(pid: int | None, tag: str | None) -> bool:
    """The pid is alive and still the process we started: its command line or environment carries the tag.

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
    return _carries_tag(pid, tag) or parent == os.getpid()


def _carries_tag(pid: int, tag: str | None) -> bool:
    """The tag is in the process's command line (its private folder's name) or environment (``SUBMISSION_ENV``)."""
    if not tag:
        return False
    try:
        if tag.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            return True
    except OSError:
        pass
    try:
        return f"{SUBMISSION_ENV}={tag}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _started_at(pid: int | None, started: int | None) -> bool:
    """The process started at ``started`` clock ticks (``True`` when nothing was recorded or there is no /proc)."""
    if started is None or not pid:
        return True
    stat = _process_stat(pid)
    return stat is None or stat[19] == str(started)


def is_driver_process(pid: int | None, tag: str | None, started: int | None, *, require_start: bool = False) -> bool:
    """``pid`` is the live driver the provider started: it carries ``tag`` and started at ``started``.

    Unlike liveness (:func:`_is_tagged_process`), a process is never taken for ours just because
    this process is its parent. Without /proc (macOS) a live pid is trusted, as before.
    """
    if not pid or not tag:
        return False
    stat = _process_stat(pid)
    if stat is None:
        return _pid_alive(pid)
    if stat[0] == "Z" or (require_start and started is None) or not _started_at(pid, started):
        return False
    return _carries_tag(pid, tag)


def refuse_unless_driver(pid, tag, started, what: str, *, require_start: bool = False) -> None:
    """:class:`DriverProcessMismatchError` when ``pid`` is alive but not the driver the provider started.

    Asked a few times over a second: a process that is exiting reads an empty command line and
    environment for a moment before it is a zombie, and is not a stranger.
    """
    if not pid:
        return
    for _ in range(5):
        _reap(pid)
        stat = _process_stat(pid)
        alive = _pid_alive(pid) if stat is None else stat[0] not in ("Z", "X")
        if not alive or is_driver_process(pid, tag, started, require_start=require_start):
            return
        time.sleep(0.2)
    raise DriverProcessMismatchError(
        f"Process {pid} is alive but is not {what}: it does not carry the submission's tag, or did not start "
        "when the signed record says (the pid was reused). It was not killed."
    )


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


def kill_process(pid: int, still_ours, *, group: bool, started: int | None = None) -> None:
    """SIGTERM, then SIGKILL, ``pid`` (or the process group it leads), while ``still_ours()`` says it is the same.

    After a signal it waits until the process is gone: a zombie, no longer there, or (with ``started``, its
    recorded start time) another process under the same pid. A dying process's command line and environment
    read empty before it is a zombie, so ``still_ours()`` is asked only before each signal.
    """
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
            if not _still_running(pid, started):
                return
            time.sleep(0.2)


def _still_running(pid: int, started: int | None) -> bool:
    """``pid`` is alive and not a zombie, and (when ``started`` is known) still the process that started then."""
    stat = _process_stat(pid)
    if stat is None:
        return _pid_alive(pid)
    return stat[0] not in ("Z", "X") and _started_at(pid, started)
