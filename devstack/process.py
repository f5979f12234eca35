"""The processes and ports of the local services: free ports, bounded waits, starting and stopping processes.

Each service (:mod:`devstack.kafka`, :mod:`devstack.s3`, :mod:`devstack.yarn`,
:mod:`devstack.spark_cluster`) starts its processes in a new session with
:func:`spawn`, waits with :func:`wait_for` (:func:`terminated_on_failure`) and starts again when a
port it picked was taken first (:func:`retry_port_race`). Its home, state file, stop and CLI
are :class:`devstack.service.Service`'s.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from devstack.errors import LocalStackError, PortInUseError

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
    """``pid`` runs and is not a zombie (a zombie child is not a running service)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # the state follows the command name, which may hold spaces and parentheses
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
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
