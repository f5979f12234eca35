"""Nothing a deployment started outlives the process that started it, even one killed with SIGKILL.

A stand-in for a test session (the "owner") records components the way ``devstack.airflow_deployment``
does (each leading a process group with children of its own, every process carrying the deployment's
marker, one detached into a session of its own as a Spark driver is) and starts the deployment's
watchdog. The owner is then SIGKILLed: the watchdog must stop every one of those processes.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack import airflow_deployment
from tests.support.deployment import wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]

OWNER = r"""
import json, os, subprocess, sys, time
from pathlib import Path
from devstack.airflow_deployment import MARKER_VAR, AirflowDeployment, _spawn_watchdog

home, marker = Path(sys.argv[1]), sys.argv[2]
marked = {**os.environ, MARKER_VAR: marker}
quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
# Two components, each the leader of its process group, with two children in that group.
components = {name: subprocess.Popen(["bash", "-c", "sleep 600 & sleep 600 & wait"], env=marked, **quiet)
              for name in ("scheduler", "triggerer")}
# A driver a task started in a session of its own: only the marker leads to it.
driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=marked, **quiet)
(home / "logs").mkdir(parents=True, exist_ok=True)
deployment = AirflowDeployment(str(home), 0, "tester", "-", marker, pids={n: p.pid for n, p in components.items()})
deployment.save()
deployment.watchdog_pid = _spawn_watchdog(home, os.getpid())
deployment.save()
# A component restarted after the watchdog started, without the marker: the watchdog finds it in the state file.
restarted = subprocess.Popen(["bash", "-c", "sleep 600 & wait"], **quiet)
deployment.pids["dag-processor"] = restarted.pid
deployment.save()
print(json.dumps({"watchdog": deployment.watchdog_pid, "driver": driver.pid, "restarted": restarted.pid}), flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def group_of(leader: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == leader and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_the_watchdog_stops_everything_when_its_owner_is_killed(tmp_path):
    marker = secrets.token_hex(8)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path), marker], stdout=subprocess.PIPE, env=env,
                             cwd=REPO_ROOT, start_new_session=True)  # fmt: skip
    everything: set[int] = set()
    try:
        started = json.loads(owner.stdout.readline())
        wait_until(lambda: len(airflow_deployment.marked_processes(marker)) == 7, 30,
                   "2 components with 2 children each and the driver, all marked")  # fmt: skip
        # bash forks its sleep after the owner has printed the pid: wait for the whole group.
        wait_until(lambda: len(group_of(started["restarted"])) == 2, 30, "the restarted component and its child")
        restarted_group = group_of(started["restarted"])
        assert not set(restarted_group) & set(airflow_deployment.marked_processes(marker))
        everything = {*airflow_deployment.marked_processes(marker), *restarted_group, started["watchdog"]}
        assert all(alive(pid) for pid in everything)

        killed_at = time.monotonic()
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        wait_until(lambda: not any(alive(pid) for pid in everything), 30,
                   lambda: f"the watchdog to stop {sorted(p for p in everything if alive(p))}")  # fmt: skip
        print(f"\nthe watchdog stopped {len(everything) - 1} processes {time.monotonic() - killed_at:.1f}s after "
              "their owner was killed")  # fmt: skip
        assert airflow_deployment.marked_processes(marker) == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
        for pid in {*everything, *airflow_deployment.marked_processes(marker)}:  # whatever the watchdog left
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
