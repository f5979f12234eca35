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

from airflow_spark_streaming.exceptions import ClusterManagerError
from airflow_spark_streaming.runner.protocol import DELETE_SPEC_FILE_ARG, SPEC_FILE_ARG
from airflow_spark_streaming.spark.submission.backends.base import Prepared, SubmissionBackend
from airflow_spark_streaming.spark.submission.models import DriverState, SparkJob, SparkSubmission
from airflow_spark_streaming.spark.submission.private_files import PROPERTIES_FILE, SPEC_FILE, write_private_files

KILL_WAIT_SECONDS = 15

log = logging.getLogger(__name__)


class LocalDetachedBackend(SubmissionBackend):
    """Client deploy mode: spark-submit runs detached on this host, in its own session; its process is the state."""

    deployment = "client"

    def prepare(self, job: SparkJob, *, tag: str, checkpoint) -> Prepared:
        from airflow_spark_streaming.spark.jvm import cache_dir

        # The files outlive this task: the runner deletes the spec once read, and release() removes
        # the properties file (secrets) as soon as the driver holds the lease.
        private = cache_dir() / "drivers" / f"{job.label}-{tag[:8]}"
        private.mkdir(parents=True, mode=0o700)
        spec_file, properties_file = write_private_files(private, spec=job.spec, secret_conf=job.secret_conf)
        args = [SPEC_FILE_ARG, spec_file, DELETE_SPEC_FILE_ARG] if spec_file else list(job.application_args)
        self.spark.set_application(args, properties_file)
        return Prepared(job.application, {"log_path": private / "driver.log"}, private, driver_reads_later=True)

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
        if submission.driver_log:  # the log stays for get_driver_log_hint; the spec goes too if never read
            for name in (PROPERTIES_FILE, SPEC_FILE):
                Path(submission.driver_log).with_name(name).unlink(missing_ok=True)

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
