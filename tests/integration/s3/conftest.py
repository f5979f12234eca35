"""A real S3-compatible server (moto, auth enforced) for the whole session, and connections to it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support.folder_markers import mark_folder


def pytest_collection_modifyitems(items):
    mark_folder(items, Path(__file__).parent, pytest.mark.s3)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One local S3 server on a free 127.0.0.1 port; it accepts only its own access key."""
    from devstack import s3

    server = s3.start(tmp_path_factory.mktemp("s3"), port=0)
    yield server
    s3.stop(Path(server.home))


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket per test."""
    name = f"lake-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def storage_conn(s3_server, monkeypatch):
    """Define an ``aws`` connection to the server (or with overrides) and return its id."""
    import json

    def make(conn_id: str = "lake_s3", **overrides) -> str:
        connection = json.loads(s3_server.connection_uri())
        extra = {**connection["extra"], **overrides.pop("extra", {})}
        connection.update(overrides, extra=extra)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        return conn_id

    return make
