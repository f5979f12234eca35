"""Buckets and connections on the session's S3-compatible server (``s3_server``, in tests/integration/conftest.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support.folder_markers import mark_folder


def pytest_collection_modifyitems(items):
    mark_folder(items, Path(__file__).parent, pytest.mark.s3)


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
