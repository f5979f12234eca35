"""Stream runners spark-submitted by a test itself, watched and always killed (the lease and S3 safety tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from airflow_spark_streaming.runner.jobs import job_path


def spawn_stream_runner(spec: dict, tmp_path: Path, name: str, *spark_args: str) -> subprocess.Popen:
    """spark-submit the stream runner on ``spec`` with ``spark_args``; its output goes to ``<name>.log``."""
    spec_file = tmp_path / f"{name}-spec.json"
    spec_file.write_text(json.dumps(spec))
    command = [
        os.path.join(os.environ["SPARK_HOME"], "bin", "spark-submit"), *spark_args,
        job_path("stream_runner"), "--spec-file", str(spec_file),
    ]  # fmt: skip
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "wb") as log:
        driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    driver.log_path = log_path
    return driver


def driver_log(driver: subprocess.Popen) -> str:
    return open(driver.log_path, encoding="utf-8", errors="replace").read()


def wait_while_running(condition, timeout: float, what: str, *drivers: subprocess.Popen, interval: float = 0.2) -> None:
    """Poll ``condition``; fail on the deadline, or at once (with its log) when one of ``drivers`` ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        for driver in drivers:
            assert driver.poll() is None, f"driver ended early while waiting for {what}:\n{driver_log(driver)[-3000:]}"
        time.sleep(interval)


def kill_drivers(*drivers: subprocess.Popen) -> None:
    """SIGKILL the drivers still running (resumed first: a test may have paused one with SIGSTOP)."""
    for driver in drivers:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGCONT)
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(30)


def kill_leftover_drivers(marker: str) -> None:
    """Whatever happened in the test, no driver it started outlives it (matched by ``marker``, its own tmp path)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue
