"""The Streams page's FastAPI app: JSON about the deployed queries, and the page's script.

Mounted by the API server under :data:`URL_PREFIX`. A plugin's app is not behind Airflow's auth, so every
route depends on :func:`airflow.api_fastapi.core_api.security.get_user` (a Bearer token, or the UI's
``_token`` cookie), and shows only the queries of DAGs the auth manager lets the user read. The auth
manager comes from :func:`airflow.api_fastapi.app.get_auth_manager`: ``request.app`` here is this sub-app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI, HTTPException, Response

from airflow_spark_streaming.plugins.streams.discovery import StreamRef, discover_streams
from airflow_spark_streaming.plugins.streams.reader import DEFAULT_TTL_SECONDS, StreamReader

URL_PREFIX = "/spark-streaming"
STATIC = Path(__file__).parent / "static"
#: The page's module: uPlot first (its ``var uPlot`` is then in the module's scope), then the page.
BUNDLE_PARTS = ("uPlot.iife.min.js", "streams.js")
STATIC_FILES = {"uPlot.min.css": "text/css", "icon.svg": "image/svg+xml", "icon-dark.svg": "image/svg+xml"}


@cache
def bundle() -> bytes:
    """uPlot, the bundle's own URL (the page finds its JSON beside it), then the page."""
    uplot, page = ((STATIC / name).read_bytes() for name in BUNDLE_PARTS)
    return b"\n".join([uplot, b";const SCRIPT_URL = import.meta.url;", page])


def _authorized_dag_ids(user: Any) -> set[str]:
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))


def _visible(ref: StreamRef, dag_ids: set[str]) -> dict[str, Any]:
    return {
        "tasks": [{"dag_id": t.dag_id, "task_id": t.task_id, "kind": t.kind} for t in ref.tasks if t.dag_id in dag_ids],
    }


def create_app(
    *,
    reader: StreamReader | None = None,
    discover: Callable[[], list[StreamRef]] = discover_streams,
    discovery_ttl: float = DEFAULT_TTL_SECONDS,
) -> FastAPI:
    """The app the plugin mounts.

    :param reader: reads the cards and histories (a cached :class:`StreamReader` by default).
    :param discover: lists the queries the deployment names (from the metadata database by default).
    :param discovery_ttl: seconds a discovery is reused.
    """
    reader = reader or StreamReader()
    app = FastAPI(title="Spark Structured Streaming: Streams page", docs_url=None, redoc_url=None, openapi_url=None)
    found: dict[str, Any] = {"at": -1.0, "refs": []}
    lock = threading.Lock()

    def refs() -> list[StreamRef]:
        with lock:
            if found["at"] < 0 or time.monotonic() - found["at"] > discovery_ttl:
                found["refs"], found["at"] = discover(), time.monotonic()
            return found["refs"]

    def readable(user: Any) -> tuple[list[StreamRef], set[str]]:
        dag_ids = _authorized_dag_ids(user)
        return [r for r in refs() if r.dag_ids & dag_ids], dag_ids

    def one(stream_id: str, user: Any) -> tuple[StreamRef, set[str]]:
        match = next((r for r in refs() if r.stream_id == stream_id), None)
        if match is None:
            raise HTTPException(404, f"No stream {stream_id!r} is named by a deployed DAG.")
        dag_ids = _authorized_dag_ids(user)
        if not match.dag_ids & dag_ids:
            raise HTTPException(403, "You may not read the DAGs that name this stream.")
        return match, dag_ids

    @app.get("/api/streams")
    def list_streams(user: GetUserDep) -> dict[str, Any]:
        visible, dag_ids = readable(user)
        cards = reader.cards(visible)
        return {"streams": [{**card, **_visible(ref, dag_ids)} for ref, card in zip(visible, cards, strict=True)]}

    @app.get("/api/streams/{stream_id}")
    def stream_detail(stream_id: str, user: GetUserDep) -> dict[str, Any]:
        ref, dag_ids = one(stream_id, user)
        visible = [r for r in refs() if r.dag_ids & dag_ids]  # the sink's readers: only queries the user may see
        return {**reader.card(ref, among=visible), **_visible(ref, dag_ids)}

    @app.get("/api/streams/{stream_id}/history")
    def stream_history(stream_id: str, user: GetUserDep) -> dict[str, Any]:
        ref, _ = one(stream_id, user)
        return {"stream_id": ref.stream_id, **reader.history(ref)}

    # The UI loads the page with import(): it needs a JavaScript MIME type.
    @app.get("/static/streams.js")
    def page_script(user: GetUserDep) -> Response:
        return Response(bundle(), media_type="text/javascript", headers={"Cache-Control": "private, max-age=300"})

    @app.get("/static/{name}")
    def static_file(name: str, user: GetUserDep) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, f"No static file {name!r}.")
        return Response((STATIC / name).read_bytes(), media_type=STATIC_FILES[name],
                        headers={"Cache-Control": "private, max-age=300"})  # fmt: skip

    return app
