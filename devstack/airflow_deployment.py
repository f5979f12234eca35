"""A real Airflow deployment on 127.0.0.1: API server, scheduler, DAG processor and triggerer, as users run it.

Used by the deployment tests (``tests/integration/deployment``) and by hand::

    python -m devstack.airflow_deployment start|stop|status [--home DIR] [--dags DIR ...] [--env KEY=VALUE ...]

What :func:`start` runs, in its own ``AIRFLOW_HOME``:

* ``airflow api-server``, ``airflow scheduler`` (LocalExecutor), ``airflow dag-processor`` and
  ``airflow triggerer``, each in a session (process group) of its own, the API server on a free
  127.0.0.1 port; the metadata database is SQLite in the home, migrated first, in its default
  (rollback journal) mode, as ``airflow standalone`` runs it;
* the simple auth manager with one admin user, whose password is made at start and kept in the
  home's password file (mode 0600); the execution API URL of that API server; a JWT secret, an API
  secret key and a Fernet key made at start; a small ``parallelism`` for a small machine;
* the DAG bundles the caller names (folders) and the caller's environment for the DAGs
  (connections as ``AIRFLOW_CONN_*``, variables as ``AIRFLOW_VAR_*``, anything else they read).
  DAGs are paused at creation: unpause the ones to run (:meth:`AirflowApi.unpause`).

**Nothing outlives it.** Every process of the deployment (the components and whatever they
start: LocalExecutor workers, task processes in process groups of their own, detached Spark
drivers in sessions of their own) inherits a marker in its environment. :meth:`AirflowDeployment.stop`
terminates the components by pid (SIGTERM to each, then SIGKILL to its process group), then every
process that still carries the marker. With ``watch_pid``, a watchdog process (this module's
``watchdog`` command, standard library only) does the same as soon as the watched process ends,
even when it was killed with SIGKILL: a killed test session leaves no Airflow or Spark behind.

:class:`AirflowApi` is a small client of the public REST API (``/api/v2``, with a token from the
simple auth manager's ``/auth/token``): trigger a DAG run, wait for its state, read task instances,
XComs, asset events and asset state, create connections. :meth:`AirflowDeployment.restart` restarts
one component by pid (the triggerer, say) and waits until its new job heartbeats.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack.process import pid_alive

HOST = "127.0.0.1"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: The job type each heartbeating component records in the metadata database.
JOB_TYPES = {"scheduler": "SchedulerJob", "dag-processor": "DagProcessorJob", "triggerer": "TriggererJob"}
#: The environment variable every process of a deployment carries; its value is the deployment's marker.
MARKER_VAR = "AIRFLOW_LOCAL_DEPLOYMENT"
STATE_FILE = "deployment.json"
ENV_FILE = "deployment-env.json"
PASSWORDS_FILE = "simple_auth_manager_passwords.json"
USERNAME = "tester"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
FINAL_RUN_STATES = ("success", "failed")
FINAL_TASK_STATES = ("success", "failed", "upstream_failed", "skipped", "removed")


class DeploymentError(RuntimeError):
    """The deployment did not start, a component did not come back, or a wait ran out of time."""


# --- processes, standard library only (the watchdog imports nothing else) ---------------------------------


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(pid_alive(pid) for pid in _group_members(pgid))


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def marked_processes(marker: str) -> list[int]:
    """The live processes whose environment carries ``marker`` (this process excluded)."""
    entry = f"{MARKER_VAR}={marker}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        pid = int(environ.parent.name)
        if pid == os.getpid():
            continue
        try:
            if entry in environ.read_bytes().split(b"\0") and pid_alive(pid):
                found.append(pid)
        except OSError:  # gone, or another user's
            continue
    return found


def _terminate_and_wait(pids: list[int], grace: float) -> None:
    """SIGTERM each pid, then wait up to ``grace`` seconds (reaping our children) until none is alive."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        for pid in pids:
            _reap(pid)
        time.sleep(0.2)


def stop_processes(groups: Iterable[int], marker: str | None, *, grace: float = 30) -> None:
    """SIGTERM each group leader, SIGKILL what is left of its group after ``grace``, then every marked process.

    Only the leader gets SIGTERM, as a service manager would send it: the component shuts its own
    children down in order (the triggerer cancels its triggers and marks its job ended).
    """
    groups = [g for g in groups if g]
    _terminate_and_wait(groups, grace)
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)
        _reap(pgid)
    if marker:
        _stop_marked(marker, grace=min(grace, 15))


def _stop_marked(marker: str, *, grace: float) -> None:
    _terminate_and_wait(marked_processes(marker), grace)
    for pid in marked_processes(marker):  # SIGKILL, including anything started meanwhile
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _reap(pid)


def run_watchdog(watched_pid: int, state_file: Path, *, interval: float = 0.5) -> int:
    """Wait until ``watched_pid`` ends (or the deployment was stopped), then stop what ``state_file`` records.

    The watchdog runs in a session of its own, so a signal sent to the watched process's group
    does not reach it. It reads the state file at each check: a restarted component's new pid
    is the one it kills. A missing state file means the deployment was stopped: nothing to do.
    """
    parent = os.getppid()
    while True:
        if not state_file.exists():
            return 0
        watched_gone = not pid_alive(watched_pid) or (parent == watched_pid and os.getppid() != parent)
        if watched_gone:
            break
        time.sleep(interval)
    try:
        record = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return 0
    stop_processes(record.get("pids", {}).values(), record.get("marker"), grace=20)
    return 0


# --- the deployment ---------------------------------------------------------------------------------------


@dataclass
class AirflowDeployment:
    """A running deployment: where it lives, how to reach it, and its processes.

    ``pids`` maps each component to its pid, which is also its process group id;
    ``generations`` counts the starts of each component (its log is ``logs/<component>-<n>.log``);
    ``stopped`` lists the components :meth:`stop_component` stopped and nothing started again yet.
    """

    home: str
    api_port: int
    username: str
    password: str
    marker: str
    pids: dict[str, int]
    generations: dict[str, int] = field(default_factory=dict)
    watchdog_pid: int = 0
    stopped: list[str] = field(default_factory=list)  # components stopped on purpose (stop_component)

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def state_path(self) -> Path:
        return Path(self.home) / STATE_FILE

    def is_alive(self) -> bool:
        return any(pid_alive(pid) for pid in self.pids.values())

    def env(self) -> dict[str, str]:
        """The environment the components run with (secrets included: the file is mode 0600)."""
        return json.loads((Path(self.home) / ENV_FILE).read_text())

    def log_path(self, component: str, generation: int | None = None) -> Path:
        generation = generation or self.generations.get(component, 1)
        return Path(self.home) / "logs" / f"{component}-{generation}.log"

    def logs(self, component: str) -> list[Path]:
        """The component's logs, one per start, oldest first."""
        return [self.log_path(component, g) for g in range(1, self.generations.get(component, 1) + 1)]

    def api(self) -> AirflowApi:
        return AirflowApi(self.api_url, self.username, self.password)

    def save(self) -> None:
        self.state_path.touch(mode=0o600)
        os.chmod(self.state_path, 0o600)
        self.state_path.write_text(json.dumps(asdict(self)))

    def spawn(self, component: str) -> int:
        """Start ``component`` in a session of its own (pid = process group id), logging to its next log."""
        self.generations[component] = self.generations.get(component, 0) + 1
        log = self.log_path(component)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "airflow", *_component_args(component, self.api_port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env=self.env(), cwd=self.home,
            )  # fmt: skip
        self.pids[component] = process.pid
        self.stopped = [c for c in self.stopped if c != component]
        self.save()
        return process.pid

    def check_components(self) -> None:
        """Raise with the end of its log when a component has exited."""
        for component, pid in self.pids.items():
            if component in self.stopped:
                continue
            _reap(pid)
            if not pid_alive(pid):
                raise DeploymentError(
                    f"Airflow {component} (pid {pid}) exited; its log ends with:\n{_tail(self.log_path(component))}"
                )

    def wait_ready(self, timeout: float = 300) -> None:
        """Until the API server answers and the scheduler, DAG processor and triggerer heartbeat."""
        api = self.api()

        def ready() -> bool:
            self.check_components()
            try:
                health = api.health()
            except OSError:
                return False
            return all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            )

        _wait(ready, timeout, "the Airflow API server to answer and every component to heartbeat")

    def stop_component(self, component: str, *, sig: int = signal.SIGTERM, grace: float = 60) -> None:
        """Stop ``component`` by pid: ``sig`` to it, SIGKILL to what is left of its process group after ``grace``."""
        old = self.pids[component]
        self.stopped = [*self.stopped, component]
        self.save()
        try:
            os.kill(old, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(old):
            _reap(old)
            time.sleep(0.2)
        _signal_group(old, signal.SIGKILL)
        _reap(old)
        _wait(lambda: not _group_alive(old), 30, f"the old {component}'s processes to end")

    def start_component(self, component: str, *, timeout: float = 240) -> int:
        """Start ``component`` again; its new pid, once its new job heartbeats (the API server: once it answers)."""
        since = datetime.now(UTC)
        pid = self.spawn(component)
        if component == "api-server":
            _wait(self._answers, timeout, "the restarted API server to answer")
            return pid
        api = self.api()

        def new_job_alive() -> bool:
            self.check_components()
            return any(_parse_time(j["start_date"]) >= since for j in api.jobs(JOB_TYPES[component], alive=True))

        _wait(new_job_alive, timeout, f"the restarted {component} to heartbeat")
        return pid

    def restart(self, component: str, *, sig: int = signal.SIGTERM, grace: float = 60, timeout: float = 240) -> int:
        """Stop ``component`` by pid and start it again (:meth:`stop_component`, :meth:`start_component`)."""
        self.stop_component(component, sig=sig, grace=grace)
        return self.start_component(component, timeout=timeout)

    def _answers(self) -> bool:
        self.check_components()
        try:
            self.api().health()
        except OSError:
            return False
        return True

    def stop(self, grace: float = 30) -> None:
        """Stop every component by pid, then every process still carrying the deployment's marker."""
        self.state_path.unlink(missing_ok=True)  # the watchdog's cue to leave
        stop_processes(self.pids.values(), self.marker, grace=grace)
        if self.watchdog_pid:
            stop_processes([self.watchdog_pid], None, grace=5)


def _component_args(component: str, api_port: int) -> list[str]:
    if component == "api-server":
        return ["api-server", "--host", HOST, "--port", str(api_port), "--workers", "1"]
    if component in ("scheduler", "triggerer"):
        return [component, "--skip-serve-logs"]
    return [component]


def deployment_env(
    home: Path,
    *,
    api_port: int,
    bundles: Mapping[str, Path],
    marker: str,
    parallelism: int = 4,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The components' environment: this process's, without its Airflow settings, plus the deployment's."""
    from devstack.process import free_port

    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and k not in ("AIRFLOW_HOME", MARKER_VAR)
    }
    from cryptography.fernet import Fernet

    api_url = f"http://{HOST}:{api_port}"
    bundle_list = [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(Path(path).resolve()), "refresh_interval": 0},
        }
        for name, path in bundles.items()
    ]
    settings = {
        "AIRFLOW_HOME": str(home),
        MARKER_VAR: marker,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / PASSWORDS_FILE),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(64),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # --skip-serve-logs keeps these closed; free ports all the same, should a component open one.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundle_list),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        # Files are parsed once at start; re-parsing every 30 s would take a core's worth of CPU.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
        # A worker talks to the API server, which waits for SQLite: be patient rather than fail the task.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
    }
    return {**inherited, **settings, **(extra_env or {})}


def start(
    home: Path | str,
    *,
    bundles: Mapping[str, Path],
    extra_env: Mapping[str, str] | None = None,
    parallelism: int = 4,
    watch_pid: int | None = None,
    timeout: float = 420,
) -> AirflowDeployment:
    """Migrate the database in ``home``, start the four components and wait until they are ready.

    :param bundles: DAG bundle name → folder.
    :param extra_env: more environment for every component (and so for every task and trigger).
    :param parallelism: ``[core] parallelism``: task instances running at once.
    :param watch_pid: stop everything when this process ends (a watchdog process watches it).
    """
    from devstack.process import free_port, retry_port_race

    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    existing = read_state(home)
    if existing is not None:
        return existing
    marker = secrets.token_hex(8)
    password = secrets.token_urlsafe(16)
    passwords = home / PASSWORDS_FILE
    passwords.touch(mode=0o600)
    os.chmod(passwords, 0o600)
    passwords.write_text(json.dumps({USERNAME: password}) + "\n")
    env_path = home / ENV_FILE
    env_path.touch(mode=0o600)
    os.chmod(env_path, 0o600)

    def write_env(api_port: int) -> dict[str, str]:
        env = deployment_env(home, api_port=api_port, bundles=bundles, marker=marker, parallelism=parallelism,
                             extra_env=extra_env)  # fmt: skip
        env_path.write_text(json.dumps(env))
        return env

    env = write_env(free_port())
    _migrate(home, env, timeout=timeout)

    def start_once() -> AirflowDeployment:
        api_port = free_port()
        write_env(api_port)
        deployment = AirflowDeployment(str(home), api_port, USERNAME, password, marker, pids={})
        deployment.save()
        if watch_pid:
            deployment.watchdog_pid = _spawn_watchdog(home, watch_pid)
            deployment.save()
        try:
            for component in COMPONENTS:
                deployment.spawn(component)
            deployment.wait_ready(timeout)
        except BaseException as err:
            deployment.stop(grace=10)
            if isinstance(err, DeploymentError) and "Address already in use" in str(err):
                from devstack.errors import LocalStackError

                raise LocalStackError(str(err)) from err  # retry_port_race starts again on new ports
            raise
        return deployment

    return retry_port_race(start_once)


def _migrate(home: Path, env: dict[str, str], *, timeout: float) -> None:
    log = home / "logs" / "db-migrate.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], stdout=out, stderr=subprocess.STDOUT,
                              env=env, cwd=home, timeout=timeout, check=False)  # fmt: skip
    if done.returncode != 0:
        raise DeploymentError(f"airflow db migrate failed ({done.returncode}); its log ends with:\n{_tail(log)}")


def _spawn_watchdog(home: Path, watch_pid: int) -> int:
    env = {k: v for k, v in os.environ.items() if k != MARKER_VAR}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")]))
    with open(home / "logs" / "watchdog.log", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack.airflow_deployment", "watchdog", "--home", str(home),
             "--pid", str(watch_pid)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
        )  # fmt: skip
    return process.pid


def read_state(home: Path | str) -> AirflowDeployment | None:
    """The deployment recorded in ``home``, if one of its components still runs."""
    try:
        record = AirflowDeployment(**json.loads((Path(home) / STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return record if record.is_alive() else None


def stop(home: Path | str) -> bool:
    """Stop the deployment recorded in ``home``; whether one was running."""
    record = read_state(home)
    if record is None:
        (Path(home) / STATE_FILE).unlink(missing_ok=True)
        return False
    record.stop()
    return True


# --- the REST API -----------------------------------------------------------------------------------------


class AirflowApi:
    """The public REST API (``/api/v2``) of a deployment, as the simple auth manager's user."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._token: str | None = None

    # plumbing

    def _send(self, method: str, url: str, body: Any = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def token(self) -> str:
        if self._token is None:
            answer = self._send("POST", f"{self.base_url}/auth/token",
                                {"username": self.username, "password": self.password})  # fmt: skip
            self._token = answer["access_token"]
        return self._token

    def request(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """``method`` on ``/api/v2/<path>``; a 401 gets a new token once. HTTP errors raise ``ApiError``."""
        params = {k: v for k, v in query.items() if v is not None}
        url = f"{self.base_url}/api/v2/{path.lstrip('/')}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        for attempt in (1, 2):
            try:
                return self._send(method, url, body, self.token())
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 1:
                    self._token = None
                    continue
                raise ApiError(err.code, f"{method} {path}: HTTP {err.code}: {err.read()[:2000]!r}") from None
        raise AssertionError("unreachable")

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, **query)

    def _all(self, path: str, key: str, **query: Any) -> list[dict]:
        items: list[dict] = []
        while True:
            page = self.get(path, limit=100, offset=len(items), **query)
            items += page[key]
            if not page[key] or len(items) >= page["total_entries"]:
                return items

    # deployment

    def health(self) -> dict:
        return self._send("GET", f"{self.base_url}/api/v2/monitor/health")

    def jobs(self, job_type: str, *, alive: bool | None = None) -> list[dict]:
        return self.get("jobs", job_type=job_type, is_alive=None if alive is None else str(alive).lower(),
                        limit=100)["jobs"]  # fmt: skip

    def create_connection(self, conn_id: str, conn_type: str, *, host: str | None = None,
                          extra: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        """A new connection in the metadata database (tasks find it unless an ``AIRFLOW_CONN_*`` of the name wins)."""
        self.request("POST", "connections", {"connection_id": conn_id, "conn_type": conn_type, "host": host,
                                             "extra": json.dumps(dict(extra or {}))})  # fmt: skip

    # DAGs and runs

    def dag(self, dag_id: str) -> dict:
        return self.get(f"dags/{dag_id}")

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 300) -> None:
        """Until the DAG processor has parsed every one of ``dag_ids``."""
        missing = set(dag_ids)

        def parsed() -> bool:
            for dag_id in list(missing):
                try:
                    self.dag(dag_id)
                    missing.discard(dag_id)
                except ApiError as err:
                    if err.status != 404:
                        raise
            return not missing

        _wait(parsed, timeout, lambda: f"the DAG processor to parse {sorted(missing)}; {self.import_errors()}")

    def import_errors(self) -> list[dict]:
        return self.get("importErrors", limit=100)["import_errors"]

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"dags/{dag_id}", {"is_paused": False})

    def reparse(self, dag_id: str) -> None:
        """Ask the DAG processor to parse ``dag_id``'s file now (it registers an unpaused DAG's asset watchers)."""
        self.request("PUT", f"parseDagFile/{self.dag(dag_id)['file_token']}")

    def start_watchers(self, dag_id: str, asset_names: Iterable[str], timeout: float = 300) -> None:
        """Unpause ``dag_id`` and have it parsed again, until the assets it is scheduled on have their watchers.

        Airflow registers the watchers of an asset only while a DAG scheduled on it is unpaused, at parse time.
        """
        self.unpause(dag_id)
        self.reparse(dag_id)
        names = list(asset_names)
        _wait(lambda: all(self.asset(name)["watchers"] for name in names), timeout,
              f"the watchers of {names} (DAG {dag_id})")  # fmt: skip

    def pause(self, dag_id: str) -> None:
        self.request("PATCH", f"dags/{dag_id}", {"is_paused": True})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, *, run_id: str | None = None) -> str:
        """Trigger a run (unpause the DAG first: a paused DAG's runs wait); its run id."""
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"dags/{dag_id}/dagRuns/{run_id}")

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self._all(f"dags/{dag_id}/dagRuns", "dag_runs", order_by="id")

    def wait_for_run(self, dag_id: str, run_id: str, *, states: Sequence[str] = FINAL_RUN_STATES,
                     timeout: float = 600, deployment: AirflowDeployment | None = None) -> dict:  # fmt: skip
        """The run once its state is one of ``states``; fails fast when a component of ``deployment`` died."""
        run: dict = {}

        def reached() -> bool:
            nonlocal run
            if deployment is not None:
                deployment.check_components()
            run = self.dag_run(dag_id, run_id)
            return run["state"] in states

        _wait(reached, timeout, lambda: f"{dag_id} run {run_id} to be {'/'.join(states)} (now {run.get('state')}; "
              f"tasks {self.task_states(dag_id, run_id)})")  # fmt: skip
        return run

    # task instances and XComs

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        return {ti["task_id"]: ti for ti in self._all(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                                                      "task_instances")}  # fmt: skip

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {task_id: ti["state"] for task_id, ti in self.task_instances(dag_id, run_id).items()}

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict:
        return self.get(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        return self.get(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")["task_instances"]

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, states: Sequence[str], *,
                      timeout: float = 600, deployment: AirflowDeployment | None = None) -> dict:  # fmt: skip
        ti: dict = {}

        def reached() -> bool:
            nonlocal ti
            if deployment is not None:
                deployment.check_components()
            try:
                ti = self.task_instance(dag_id, run_id, task_id)
            except ApiError as err:
                if err.status == 404:
                    return False
                raise
            if ti["state"] in states:
                return True
            if ti["state"] in FINAL_TASK_STATES:
                raise DeploymentError(f"{dag_id}.{task_id} in {run_id} ended {ti['state']}, not {'/'.join(states)}")
            return False

        _wait(reached, timeout, lambda: f"{dag_id}.{task_id} in {run_id} to be {'/'.join(states)} "
              f"(now {ti.get('state')})")  # fmt: skip
        return ti

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The task instance's state store (what ``ResumableJobMixin`` keeps across tries): key → value."""
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store"
        return {e["key"]: e["value"] for e in self.get(path, limit=100)["task_state_store"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        value = self.get(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value

    # assets

    def asset(self, name: str) -> dict:
        """The active asset named ``name``."""
        found = [a for a in self.get("assets", name_pattern=name, limit=100)["assets"] if a["name"] == name]
        if len(found) != 1:
            raise DeploymentError(f"expected one active asset named {name!r}, found {found}")
        return found[0]

    def asset_events(self, asset_id: int, *, attempts: int = 30) -> list[dict]:
        """The asset's events, oldest first, each with the runs it created (``created_dagruns``).

        Airflow 3.3 answers HTTP 500 while one of those runs is queued and not started yet (its
        ``start_date`` is still null; apache/airflow#71360): a moment later it answers, so ask again.
        """
        for attempt in range(attempts):
            try:
                return self._all("assets/events", "asset_events", asset_id=asset_id, order_by="timestamp")
            except ApiError as err:
                if err.status != 500 or attempt == attempts - 1:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def upstream_asset_events(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"]

    def asset_state(self, asset_id: int) -> dict[str, Any]:
        """The asset's state store (AIP-103): key → value."""
        entries = self.get(f"assets/{asset_id}/state-store", limit=100)["asset_state_store"]
        return {e["key"]: e["value"] for e in entries}


class ApiError(DeploymentError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- small helpers ----------------------------------------------------------------------------------------


def _wait(condition, timeout: float, what, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise DeploymentError(f"Timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _parse_time(value: str | None) -> datetime:
    if not value:
        return datetime.min.replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- command line -----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airflow-local", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "watchdog"])
    parser.add_argument("--home", type=Path, default=None, help="the deployment's AIRFLOW_HOME")
    parser.add_argument("--dags", type=Path, action="append", default=[], help="a DAG folder (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="more environment")
    parser.add_argument("--pid", type=int, default=0, help="watchdog: the process to watch")
    args = parser.parse_args(argv)
    if args.command == "watchdog":
        return run_watchdog(args.pid, args.home / STATE_FILE)
    home = args.home or _default_home()
    if args.command == "start":
        dags = args.dags or [Path(__file__).resolve().parents[1] / "example_dags"]
        bundles = {f"dags_{i}" if i else "dags": path for i, path in enumerate(dags)}
        extra = dict(item.split("=", 1) for item in args.env)
        deployment = start(home, bundles=bundles, extra_env=extra)
        print(f"airflow-local: API server {deployment.api_url} (user {deployment.username}, password in "
              f"{Path(deployment.home) / PASSWORDS_FILE}); home {deployment.home}")  # fmt: skip
        return 0
    if args.command == "stop":
        print("airflow-local: stopped" if stop(home) else "airflow-local: was not running")
        return 0
    running = read_state(home)
    if running is None:
        print("airflow-local: not running")
        return 3
    pids = ", ".join(f"{c} {p}" for c, p in running.pids.items())
    print(f"airflow-local: {running.api_url}; {pids}")
    return 0


def _default_home() -> Path:
    from airflow_spark_streaming.spark.jvm import cache_dir

    return Path(os.environ.get("AIRFLOW_LOCAL_HOME") or cache_dir() / "airflow-local")


if __name__ == "__main__":
    sys.exit(main())
