"""The local S3 server process: moto with authentication enforced and mutations under one lock.

Started by :func:`devstack.s3.start`; it imports moto and werkzeug only, so it
is up in seconds even on a busy machine. Usage: ``python -m devstack.s3_serve HOME PORT``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

HOST = "127.0.0.1"
REGION = "us-east-1"
USER_NAME = "lake"
CREDENTIALS_FILE = "credentials.json"
_MUTATING = frozenset({"PUT", "POST", "DELETE"})


def _serve(home: Path, port: int) -> None:
    """Run moto in this process: auth enforced, mutations under one lock."""
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"  # read by moto at import
    os.environ.setdefault("MOTO_PORT", str(port))
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    iam = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
    iam.create_user(REGION, USER_NAME)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(USER_NAME, "everything", json.dumps(policy))
    key = iam.create_access_key(USER_NAME)

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        if environ.get("REQUEST_METHOD") not in _MUTATING:
            return app(environ, start_response)
        with lock:
            # Consume the response inside the lock: moto may build it lazily.
            return list(app(environ, start_response))

    descriptor = os.open(home / CREDENTIALS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key}, out)
    run_simple(HOST, port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), int(sys.argv[2]))
