"""The Streams page's app in process (FastAPI's TestClient), with a stub auth manager that grants per DAG.

It needs a migrated metadata database (the auth manager checks revoked tokens there), hence integration.

Airflow's simple auth manager has no per-DAG permissions, so :class:`OneDagAuthManager` (a subclass of it)
lets the user ``one`` read only ``dag_a``. The tokens are real JWTs signed by the auth manager; the
queries are real-format checkpoints on disk. Discovery is injected here; the deployment tests discover
from a real metadata database.
"""

from __future__ import annotations

import json
import secrets

import pytest
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from fastapi.testclient import TestClient

from airflow_spark_streaming.plugins.streams.app import create_app
from airflow_spark_streaming.plugins.streams.discovery import StreamRef, TaskRef, stream_id
from airflow_spark_streaming.plugins.streams.reader import StreamReader
from tests.support.stream_checkpoints import rows, write_kafka_checkpoint

DAGS = {"dag_a", "dag_b"}
KAFKA_SECRET = "kafka-pw-" + secrets.token_hex(8)
STORAGE_SECRET = "storage-key-" + secrets.token_hex(8)


class OneDagAuthManager(SimpleAuthManager):
    """``one`` may read ``dag_a`` only; ``admin`` everything."""

    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        if user.username == "admin":
            return True
        return method == "GET" and details is not None and details.id == "dag_a"

    def get_authorized_dag_ids(self, *, user, method="GET", session=None) -> set[str]:
        return self.filter_authorized_dag_ids(dag_ids=DAGS, user=user, method=method)


@pytest.fixture
def auth_manager(monkeypatch, airflow_db):
    from airflow.api_fastapi import app as airflow_app
    from airflow.configuration import conf

    conf.set("api_auth", "jwt_secret", secrets.token_urlsafe(32))
    # the signer and validator are cached per class: drop those made with another test's secret
    for cached in (OneDagAuthManager._get_token_signer, OneDagAuthManager._get_token_validator):
        cached.__func__.cache_clear()
    manager = OneDagAuthManager()
    monkeypatch.setattr(airflow_app._AuthManagerState, "instance", manager)
    return manager


@pytest.fixture
def streams(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    write_kafka_checkpoint(a, batches=12, topic="orders_a")
    write_kafka_checkpoint(b, batches=5, topic="orders_b")
    # Connections holding secrets: the page reads through them and must never show them.
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_WITH_SECRET", json.dumps(
        {"conn_type": "kafka", "password": KAFKA_SECRET,
         "extra": {"bootstrap.servers": "127.0.0.1:1", "sasl.password": KAFKA_SECRET}}))  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_STORAGE_WITH_SECRET", json.dumps(
        {"conn_type": "aws", "login": "AKIAEXAMPLE", "password": STORAGE_SECRET}))  # fmt: skip
    return [
        StreamRef(
            stream_id(str(a)),
            str(a),
            query_name="orders_a",
            kafka_config_id="kafka_with_secret",
            tasks=[TaskRef("dag_a", "start", "SparkStreamingSubmitOperator")],
        ),  # fmt: skip
        StreamRef(
            stream_id(str(b)),
            str(b),
            query_name="orders_b",
            storage_conn_id=None,
            sink_table=f"s3://AKIAEXAMPLE:{STORAGE_SECRET}@bucket/orders_b",
            tasks=[TaskRef("dag_b", "watch", "KafkaLagSensor")],
        ),  # fmt: skip
    ]


@pytest.fixture
def client(auth_manager, streams):
    app = create_app(reader=StreamReader(kafka_timeout=1.0), discover=lambda: streams)
    return TestClient(app)


def _token(manager, username, role="viewer") -> dict[str, str]:
    return {"Authorization": f"Bearer {manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))}"}


def test_every_endpoint_refuses_a_request_without_a_token(client, streams):
    for path in ("/api/streams", f"/api/streams/{streams[0].stream_id}",
                 f"/api/streams/{streams[0].stream_id}/history", "/static/streams.js", "/static/icon.svg"):  # fmt: skip
        assert client.get(path).status_code == 401, path
    assert client.get("/api/streams", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403


def test_a_user_sees_only_the_streams_of_dags_they_may_read(client, auth_manager, streams):
    one = _token(auth_manager, "one")
    listed = client.get("/api/streams", headers=one).json()["streams"]
    assert [s["query_name"] for s in listed] == ["orders_a"]
    assert listed[0]["tasks"] == [{"dag_id": "dag_a", "task_id": "start", "kind": "SparkStreamingSubmitOperator"}]
    assert listed[0]["latest_committed_batch"] == 11 and listed[0]["last_batch"]["input_rows"] == rows(11)
    other = streams[1].stream_id
    assert client.get(f"/api/streams/{other}", headers=one).status_code == 403
    assert client.get(f"/api/streams/{other}/history", headers=one).status_code == 403
    assert client.get("/api/streams/0000000000000000", headers=one).status_code == 404
    history = client.get(f"/api/streams/{streams[0].stream_id}/history", headers=one).json()
    assert history["batches"] == 12 and history["partitions"] == ["orders_a:0", "orders_a:1"]

    admin = _token(auth_manager, "admin", "admin")
    assert [s["query_name"] for s in client.get("/api/streams", headers=admin).json()["streams"]] == [
        "orders_a", "orders_b"]  # fmt: skip
    assert client.get(f"/api/streams/{other}", headers=admin).json()["latest_committed_batch"] == 4


def test_the_ui_cookie_authenticates_too(client, auth_manager):
    token = auth_manager.generate_jwt(SimpleAuthManagerUser(username="one", role="viewer"))
    client.cookies.set("_token", token)
    assert client.get("/api/streams").status_code == 200


def test_no_response_holds_a_connection_secret_or_a_credential_in_a_location(client, auth_manager, streams):
    admin = _token(auth_manager, "admin", "admin")
    bodies = [client.get("/api/streams", headers=admin).text]
    for ref in streams:
        bodies += [client.get(f"/api/streams/{ref.stream_id}", headers=admin).text,
                   client.get(f"/api/streams/{ref.stream_id}/history", headers=admin).text]  # fmt: skip
    card = json.loads(bodies[0])["streams"][1]
    assert card["sink_table"] == "s3://bucket/orders_b"
    for body in bodies:
        assert KAFKA_SECRET not in body and STORAGE_SECRET not in body and "AKIAEXAMPLE" not in body


def test_the_page_script_is_javascript_that_sets_the_airflow_plugin_global(client, auth_manager):
    one = _token(auth_manager, "one")
    script = client.get("/static/streams.js", headers=one)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    body = script.text
    assert (
        body.index("var uPlot=") < body.index("import.meta.url") < body.index("globalThis.AirflowPlugin = StreamsPage")
    )
    assert "https://" not in body.split("*/", 1)[1]  # nothing fetched from elsewhere at view time
    css = client.get("/static/uPlot.min.css", headers=one)
    assert css.headers["content-type"].startswith("text/css") and ".uplot" in css.text
    assert client.get("/static/../app.py", headers=one).status_code == 404
