"""Readiness (`GET /ready`) says whether the catalog and the object store answer, so
an orchestrator takes a server whose dependencies are away out of service; liveness
(`GET /health`) stays up meanwhile (a restart would not bring them back)."""

from __future__ import annotations

import http.client
import json
import os
import time

from harness import PostgresDatabase, SluiceServer


def get(server, path: str) -> tuple[int, dict]:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def wait_for(server, status: int, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        got, body = get(server, "/ready")
        if got == status or time.monotonic() > deadline:
            assert got == status, body
            return body
        time.sleep(0.2)


def test_readiness_follows_the_object_store(binary):
    srv = SluiceServer(binary, name="sluice-ready").start()
    try:
        assert wait_for(srv, 200) == {"status": "ready", "catalog": "ok", "object_store": "ok"}
        segments = srv.data_dir / "objects" / "segments"
        aside = srv.data_dir / "objects" / "segments-away"
        os.rename(segments, aside)
        try:
            body = wait_for(srv, 503)
            assert body["object_store"] == "unreachable" and body["catalog"] == "ok", body
            assert get(srv, "/health")[0] == 200
        finally:
            os.rename(aside, segments)
        wait_for(srv, 200)
    finally:
        srv.close()


def test_readiness_follows_the_catalog(binary):
    from conftest import require_postgres
    db = PostgresDatabase(require_postgres(": readiness of a lost database"))
    srv = SluiceServer(binary, name="sluice-ready-pg", database_url=db.url).start()
    try:
        wait_for(srv, 200)
        db.close()  # DROP DATABASE ... WITH (FORCE): its connections end
        body = wait_for(srv, 503)
        assert body["catalog"] == "unreachable", body
        assert get(srv, "/health")[0] == 200
    finally:
        srv.kill()
        srv.close()
