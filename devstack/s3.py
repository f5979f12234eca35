"""A real S3-compatible server (moto's standalone server) on 127.0.0.1, for tests and the demo.

The server speaks the S3 and DynamoDB HTTP APIs in one Python process, from the
``moto[server]`` package of the ``dev`` extra; no Docker engine and no download.
Two things are set up on top of moto's defaults, so the local stack behaves
like S3 where the provider's guarantees depend on it:

* Authentication is enforced. One IAM user with one access key is created at
  start; any other key, or a wrong secret, is refused with 403, as on AWS. The
  key lives in ``credentials.json`` (mode 0600) in the server's home.
* Mutating requests are serialised. moto checks ``If-None-Match: *`` and then
  writes, without a lock; under one lock the conditional create is atomic, as
  S3 guarantees it (the lease and the Delta commits rely on it).

Usage::

    python -m devstack.s3 start|stop|status [--home DIR] [--port 9000]
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack.process import (
    check_running,
    claim_port,
    log_tail,
    pid_alive,
    port_is_free,
    retry_port_race,
    spawn,
    terminated_on_failure,
    wait_for,
)
from devstack.s3_serve import CREDENTIALS_FILE
from devstack.service import Service

DEFAULT_PORT = int(os.environ.get("S3_LOCAL_PORT", "9000"))
HOST = "127.0.0.1"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running server: where it lives, how to reach it, which access key it accepts."""

    home: str
    port: int
    pid: int
    access_key_id: str
    region: str = REGION

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def secret_access_key(self) -> str:
        return json.loads(_credentials_file(Path(self.home)).read_text())["secret_access_key"]

    def is_alive(self) -> bool:
        return pid_alive(self.pid)

    def client(self, service: str = "s3", **overrides):
        """A boto3 client for this server (tests and the demo set up buckets with it)."""
        import boto3
        from botocore.config import Config

        settings = {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "region_name": self.region,
            "config": Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, connect_timeout=5,
                             read_timeout=30),
        }  # fmt: skip
        return boto3.client(service, **{**settings, **overrides})

    def connection_uri(self, conn_type: str = "aws") -> str:
        """The ``aws`` connection for this server, as a JSON ``AIRFLOW_CONN_*`` value."""
        return json.dumps(
            {
                "conn_type": conn_type,
                "login": self.access_key_id,
                "password": self.secret_access_key,
                "extra": {"endpoint_url": self.endpoint_url, "region_name": self.region},
            }
        )


# A stopped server's access key is dead: its credentials file goes with it.
SERVICE = Service(prog="s3-local", record=S3Server, state_file="server.json", home_env="S3_LOCAL_HOME",
                  folder="s3-local", home_help="server folder (state, credentials, log)", grace=10,
                  leftovers=(CREDENTIALS_FILE,))  # fmt: skip


def default_home() -> Path:
    return SERVICE.default_home()


def _credentials_file(home: Path) -> Path:
    return home / CREDENTIALS_FILE


def read_state(home: Path | None = None) -> S3Server | None:
    """The server recorded in ``home``, if it is still running."""
    return SERVICE.read_state(home)


def start(home: Path | None = None, port: int | None = None, *, timeout: float = 120) -> S3Server:
    """Start a server in ``home`` (or return the one already running there).

    :param port: the HTTP port; ``0`` picks a free one.
    """

    def launch(home: Path) -> S3Server:
        home.mkdir(parents=True, exist_ok=True)

        def start_once() -> S3Server:
            claimed = claim_port(HOST, port, DEFAULT_PORT, service="the local S3 server", script="scripts/s3-local",
                                 env_var="S3_LOCAL_PORT")  # fmt: skip
            return _start_once(home, claimed, timeout)

        return retry_port_race(start_once)

    return SERVICE.start(home, launch)


def _start_once(home: Path, port: int, timeout: float) -> S3Server:
    credentials = _credentials_file(home)
    credentials.unlink(missing_ok=True)
    # A module of its own: the server process imports moto only, not Airflow.
    process = spawn([sys.executable, "-m", "devstack.s3_serve", str(home), str(port)], home / "server.log",
                    cwd=str(Path(__file__).resolve().parents[1]))  # fmt: skip

    def ready() -> bool:
        check_running(process, "The local S3 server", lambda: log_tail(home / "server.log"))
        return credentials.exists() and not port_is_free(HOST, port)

    with terminated_on_failure([process]):
        wait_for(ready, timeout=timeout, what=f"the S3 server on {HOST}:{port}", interval=0.2)
        key = json.loads(credentials.read_text())
        server = S3Server(home=str(home), port=port, pid=process.pid, access_key_id=key["access_key_id"])
        wait_for(lambda: _answers(server), timeout=timeout, what=f"the S3 API on {HOST}:{port}", interval=0.2)
    return server


def _answers(server: S3Server) -> bool:
    try:
        server.client().list_buckets()
    except Exception:  # not up yet
        return False
    return True


def stop(home: Path | None = None) -> bool:
    """Stop the server recorded in ``home`` and remove its credentials; return whether one was running."""
    return SERVICE.stop(home) is not None


def main(argv: list[str] | None = None) -> int:
    def options(parser) -> None:
        parser.add_argument("--port", type=int, default=None, help=f"HTTP port (default {DEFAULT_PORT})")

    def started(args, home: Path) -> list[str]:
        server = start(home, args.port)
        return [
            f"running on {server.endpoint_url} (pid {server.pid}, home {home}); "
            f"access key {server.access_key_id}, secret in {_credentials_file(home)}"
        ]

    return SERVICE.main(argv, doc=__doc__, options=options, start=started,
                        status=lambda server: f"running on {server.endpoint_url}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
