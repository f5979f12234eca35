"""What the local services share: ports, bounded waits, starting and stopping processes, state files, the CLI.

Each service (:mod:`devstack.kafka`, :mod:`devstack.s3`, :mod:`devstack.yarn`,
:mod:`devstack.spark_cluster`) starts its processes in a new session with
:func:`spawn`, waits with :func:`wait_for` (:func:`terminated_on_failure`), starts again when a port
it picked was taken first (:func:`retry_port_race`), records what runs in a
JSON state file (:func:`write_state_file`, :func:`read_state_file`), stops it with
:func:`stop_recorded` and serves ``start|stop|status`` with :func:`run_command`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from airflow_spark_streaming.exceptions import SparkStreamingError
from devstack.errors import LocalStackError, PortInUseError

Record = TypeVar("Record")
Started = TypeVar("Started")

# What a JVM (BindException) or Python (OSError) says when a port was taken before it could bind.
PORT_RACE = "Address already in use"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def claim_port(host: str, port: int | None, default: int, *, service: str, script: str, env_var: str) -> int:
    """``port`` (``None``: ``default``; ``0``: a free one), refused with PortInUseError when another process has it."""
    port = default if port is None else port
    port = port or free_port(host)
    if not port_is_free(host, port):
        raise PortInUseError(
            f"Port {port} on {host} is already in use by another process, so {service} cannot listen there; "
            f"stop that process (for example '{script} stop') or pick another port with {env_var}=<port>."
        )
    return port


def retry_port_race(start_once: Callable[[], Started], *, attempts: int = 3) -> Started:
    """Run ``start_once`` again, with newly picked ports, when another process took one of them first.

    :func:`free_port` finds a port free only at that moment; another process can bind it
    before the service's does. ``start_once`` must pick its free ports afresh and leave
    nothing running when it fails (:func:`terminated_on_failure`). Other failures are raised at once.
    """
    for _ in range(attempts - 1):
        try:
            return start_once()
        except LocalStackError as err:
            if PORT_RACE not in str(err):
                raise
    return start_once()


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.5) -> None:
    """Poll ``condition`` until it is true; raise after ``timeout`` seconds, never hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise LocalStackError(f"Timed out after {timeout:.0f}s waiting for {what}; see its log for the cause.")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child is not a broker.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def terminate(pid: int, grace: float = 30) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
    if pid_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, or nothing when it does not exist yet."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def spawn(command: Sequence[str], log: Path, **popen: Any) -> subprocess.Popen:
    """Start ``command`` in a session of its own (so :func:`terminate` stops its children), output to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            list(command), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            **popen,
        )  # fmt: skip


def check_running(process: subprocess.Popen, what: str, tail: Callable[[], str]) -> None:
    """Raise LocalStackError with the end of its log when ``process`` exited while starting."""
    if process.poll() is not None:
        raise LocalStackError(
            f"{what} exited with code {process.returncode} while starting; its log ends with:\n{tail()}"
        )


@contextmanager
def terminated_on_failure(processes: Iterable[subprocess.Popen]) -> Iterator[None]:
    """Terminate ``processes`` (in order) when the block raises: a failed start leaves nothing running."""
    pids = [process.pid for process in processes]
    try:
        yield
    except BaseException:
        for pid in pids:
            terminate(pid)
        raise


def write_state_file(path: Path, record: Any, *, private: bool = False) -> None:
    """Record a running service (a dataclass) as JSON; ``private`` (mode 0600) when it holds passwords."""
    if private:
        path.touch(mode=0o600)
        os.chmod(path, 0o600)
    path.write_text(json.dumps(asdict(record)))


def read_state_file(path: Path, record_type: type[Record]) -> Record | None:
    """The service recorded in ``path``, if it is still running (its record's ``is_alive()``)."""
    try:
        record = record_type(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return record if record.is_alive() else None


def stop_recorded(path: Path, record_type: type[Record], pids: Callable[[Record], Iterable[int]],
                  grace: float = 30) -> Record | None:  # fmt: skip
    """Terminate the processes of the service recorded in ``path`` (in order) and forget it.

    Returns the record, or ``None`` when nothing was running.
    """
    record = read_state_file(path, record_type)
    path.unlink(missing_ok=True)
    if record is not None:
        for pid in pids(record):
            terminate(pid, grace=grace)
    return record


def command_parser(prog: str, doc: str, home_help: str | None = None) -> argparse.ArgumentParser:
    """The ``start|stop|status [--home DIR]`` parser every local service has; add its own options to it."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--home", type=Path, default=None, help=home_help)
    return parser


def run_command(
    prog: str, command: str, *, start: Callable[[], Iterable[str]], stop: Callable[[], bool],
    status: Callable[[], str | None],
) -> int:  # fmt: skip
    """Run ``start``, ``stop`` or ``status``; print their lines, errors without a traceback.

    Exit codes: 0, 1 on an error, 3 for ``status`` when nothing runs. ``start``
    returns the lines to print, ``stop`` whether something ran, ``status`` a
    description of what runs or ``None``.
    """
    try:
        if command == "start":
            for line in start():
                print(f"{prog}: {line}")
        elif command == "stop":
            print(f"{prog}: stopped" if stop() else f"{prog}: was not running")
        else:
            running = status()
            print(f"{prog}: {running}" if running else f"{prog}: not running")
            return 0 if running else 3
    except SparkStreamingError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 1
    return 0
