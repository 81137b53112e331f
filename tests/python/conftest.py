"""Fixtures for the black-box suite: the real `sluice serve`, on SQLite and on Postgres.

Every test that uses `server` or `make_server` runs once per backend:
  - sqlite: always;
  - postgres: when SLUICE_TEST_POSTGRES_URL is set (a fresh database per server),
    skipped otherwise. With CI=true, a set but unreachable URL fails the run.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    MotoServer,
    PostgresDatabase,
    SluiceServer,
    SplitDeployment,
    psql,
    sluice_bin,
    unique_name,
)

PG_ENV = "SLUICE_TEST_POSTGRES_URL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def binary() -> Path:
    path = sluice_bin()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"sluice binary not found at {path}: build it (cargo build --workspace --bins) "
                    f"or set SLUICE_BIN", pytrace=False)
    return path


_pg_checked: dict[str, str | None] = {}


def require_postgres(reason: str = "") -> str:
    """The Postgres admin URL; skips (or, under CI, fails) when there is none."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} not set{reason}")
    if url not in _pg_checked:
        try:
            r = psql(url, "SELECT 1", timeout=15)
            _pg_checked[url] = None if r.returncode == 0 else (r.stderr.strip() or f"psql exit {r.returncode}")
        except (OSError, Exception) as e:  # psql missing or hung
            _pg_checked[url] = repr(e)
    err = _pg_checked[url]
    if err is not None:
        msg = f"{PG_ENV} is set but Postgres is unreachable: {err}"
        if _in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request) -> str:
    if request.param == "postgres":
        url = os.environ.get(PG_ENV)
        if not url:
            pytest.skip(f"{PG_ENV} not set")
        if url not in _pg_checked:
            try:
                r = psql(url, "SELECT 1", timeout=15)
                _pg_checked[url] = None if r.returncode == 0 else (r.stderr.strip() or f"psql exit {r.returncode}")
            except (OSError, Exception) as e:  # psql missing or hung
                _pg_checked[url] = repr(e)
        err = _pg_checked[url]
        if err is not None:
            msg = f"{PG_ENV} is set but Postgres is unreachable: {err}"
            if _in_ci():
                pytest.fail(msg, pytrace=False)
            pytest.skip(msg)
    return request.param


class ServerFactory:
    """Starts servers on the current backend; everything it started is closed at teardown."""

    def __init__(self, binary: Path, backend: str, label: str):
        self.binary = binary
        self.backend = backend
        self.label = label
        self.servers: list[SluiceServer] = []
        self.databases: list[PostgresDatabase] = []

    def __call__(self, *extra_args: str) -> SluiceServer:
        db_url = None
        if self.backend == "postgres":
            db = PostgresDatabase(os.environ[PG_ENV])
            self.databases.append(db)
            db_url = db.url
        srv = SluiceServer(self.binary, backend=self.backend, database_url=db_url,
                           extra_args=list(extra_args), name=f"sluice-{self.label}")
        self.servers.append(srv)
        srv.start()
        return srv

    def close(self) -> None:
        errors = []
        for srv in self.servers:
            try:
                srv.close()
            except Exception as e:  # keep closing the others
                errors.append(e)
        for db in self.databases:
            try:
                db.close()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def server(binary, backend):
    """One server per backend for the whole session; tests use unique stream names."""
    factory = ServerFactory(binary, backend, "shared")
    try:
        # Many tests share this account: lift the open-shard limit (test_account_shard_limit
        # checks the limit on a server of its own).
        yield factory("--account-shard-limit", "100000")
    finally:
        factory.close()


@pytest.fixture
def make_server(binary, backend):
    """Start a dedicated server (with extra CLI flags) for one test."""
    factory = ServerFactory(binary, backend, "dedicated")
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def kinesis(server):
    return server.client()


@pytest.fixture
def kms(server):
    return server.client(service="kms")


@pytest.fixture
def raw_kms(server):
    """A KMS client without botocore's parameter validation."""
    return server.client(service="kms", validate=False)


@pytest.fixture
def raw_kinesis(server):
    """A client without botocore's parameter validation: bad values reach the server."""
    return server.client(validate=False)


def wait_active(client, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        summary = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if summary["StreamStatus"] == "ACTIVE":
            return summary
        if time.monotonic() > deadline:
            raise AssertionError(f"stream {name} not ACTIVE after {timeout}s: {summary['StreamStatus']}")
        time.sleep(0.2)


def create_stream(client, name: str | None = None, shards: int = 1, prefix: str = "s") -> str:
    name = name or unique_name(prefix)
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_active(client, name)
    return name


@pytest.fixture
def new_stream(kinesis, request):
    """new_stream(shards=1) -> name of a fresh ACTIVE stream on the shared server."""
    prefix = request.node.name.replace("[", "-").replace("]", "")[:40]

    def make(shards: int = 1, client=None) -> str:
        return create_stream(client or kinesis, shards=shards, prefix=prefix)

    return make


@pytest.fixture(scope="session")
def split_postgres() -> str:
    return require_postgres(": the split deployment (control and data planes) needs Postgres")


@pytest.fixture(scope="module")
def moto(split_postgres):
    """An S3-compatible server (moto_server) with one bucket, for the split deployment."""
    srv = MotoServer(bucket=unique_name("sluice").lower())
    try:
        srv.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def make_split(binary, split_postgres, moto):
    """make_split(data_planes=3) -> a started SplitDeployment on a fresh Postgres
    database and the module's moto bucket; every process is stopped at teardown.
    Skips without SLUICE_TEST_POSTGRES_URL (the split deployment needs Postgres)."""
    admin_url = split_postgres
    made: list[SplitDeployment] = []

    def make(data_planes: int = 3, bootstrap_credentials: Path | None = None, **env: str) -> SplitDeployment:
        dep = SplitDeployment(binary, admin_url, moto, data_planes=data_planes, extra_env=env,
                              bootstrap_credentials=bootstrap_credentials)
        made.append(dep)
        return dep.start()

    try:
        yield make
    finally:
        errors = []
        for dep in made:
            try:
                dep.close()
            except Exception as e:  # noqa: BLE001 - keep closing the others
                errors.append(e)
        if errors:
            raise errors[0]
