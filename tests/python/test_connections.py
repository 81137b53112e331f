"""What a connection may hold: caps per process and per address, a TLS handshake
first (plain HTTP is answered 400 and closed), timeouts for the handshake, the headers
and idleness, and certificates reloaded from disk without dropping open connections."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import os
import shutil
import socket
import ssl
import time
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from harness import JSON_CT, REGION, TARGET_PREFIX, SluiceServer


@pytest.fixture(scope="module")
def capped(binary):
    srv = SluiceServer(binary, name="sluice-capped", extra_args=[
        "--max-connections", "40", "--max-connections-per-address", "30"]).start()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def impatient(binary):
    srv = SluiceServer(binary, name="sluice-impatient", extra_args=[
        "--idle-timeout-seconds", "2", "--handshake-timeout-seconds", "1"]).start()
    yield srv
    srv.close()


def tcp(server, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(15)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    return sock


def tls(server, source: str = "127.0.0.1") -> ssl.SSLSocket:
    return server.ssl_context().wrap_socket(tcp(server, source), server_hostname="localhost")


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed `sock` (reads nothing more); fails after `seconds`."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError, OSError) as e:
        if isinstance(e, TimeoutError | socket.timeout):
            raise AssertionError(f"still open after {seconds}s") from e
    return time.monotonic() - started


def signed_list_streams(server) -> tuple[dict, bytes]:
    body = b"{}"
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={
        "Content-Type": JSON_CT, "X-Amz-Target": TARGET_PREFIX + "ListStreams"})
    SigV4Auth(Credentials(*server.credentials()), "kinesis", REGION).add_auth(req)
    return dict(req.headers.items()), body


def call_on(conn: http.client.HTTPSConnection, server) -> int:
    headers, body = signed_list_streams(server)
    conn.request("POST", "/", body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status


def refused(server, source: str) -> bool:
    """Whether a new connection from `source` is closed before its handshake completes."""
    try:
        sock = tls(server, source)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError):
        return True
    sock.close()
    return False


def test_plain_http_on_the_tls_port_is_told_to_use_https(capped):
    with tcp(capped) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert b"Connection: close" in head
    assert b"HTTPS only" in body
    # Bytes that are neither TLS nor HTTP get nothing and a closed connection.
    with tcp(capped) as sock:
        sock.sendall(b"\x00\x01\x02\x03")
        try:
            assert sock.recv(4096) == b""
        except ConnectionResetError:
            pass


def test_connections_are_capped_per_address_and_in_all(capped):
    held = []
    try:
        for _ in range(30):
            held.append(tls(capped, "127.0.0.1"))
        assert refused(capped, "127.0.0.1"), "a 31st connection from one address was served"
        # Another address still gets in, up to the process's cap of 40.
        for _ in range(10):
            held.append(tls(capped, "127.0.0.2"))
        assert refused(capped, "127.0.0.3"), "a 41st connection was served"
        # Connections given back make room again.
        for sock in held[:5]:
            sock.close()
        del held[:5]
        deadline = time.monotonic() + 10
        while refused(capped, "127.0.0.3"):
            assert time.monotonic() < deadline, "closed connections never gave their places back"
            time.sleep(0.1)
    finally:
        for sock in held:
            sock.close()
    # With everything closed, requests are served as usual.
    assert capped.json_call("ListStreams", {}).status == 200


def test_a_connection_that_never_starts_its_handshake_is_closed(impatient):
    with tcp(impatient) as sock:
        assert closed_within(sock, 10) < 8


def test_a_connection_that_stalls_in_its_headers_is_closed(impatient):
    with tls(impatient) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: localhost\r\n")
        assert closed_within(sock, 10) < 8


def test_a_connection_that_drips_its_headers_is_closed(impatient):
    # One byte every half second keeps the connection from idling; the header deadline
    # (10 s from the connection's start) still closes it.
    sock = tls(impatient)
    started = time.monotonic()
    try:
        for byte in (b"POST / HTTP/1.1\r\nX-Slow: " + b"a" * 100):
            sock.sendall(bytes([byte]))
            time.sleep(0.5)
            if time.monotonic() - started > 20:
                raise AssertionError("a dripping client kept its connection for 20 s")
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
        pass
    finally:
        sock.close()
    assert time.monotonic() - started < 16


def test_an_idle_keep_alive_connection_is_closed_and_the_next_one_served(impatient):
    conn = http.client.HTTPSConnection("127.0.0.1", impatient.port, context=impatient.ssl_context(), timeout=15)
    try:
        assert call_on(conn, impatient) == 200
        # A busy connection stays: calls less than the idle timeout apart.
        for _ in range(3):
            time.sleep(1)
            assert call_on(conn, impatient) == 200
        assert closed_within(conn.sock, 10) < 6
    finally:
        conn.close()
    assert impatient.json_call("ListStreams", {}).status == 200


def make_pair(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for localhost signed by it, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (directory / f"{name}-ca.pem", directory / f"{name}.pem", directory / f"{name}-key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def served_certificate(port: int) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
            return sock.getpeercert(binary_form=True)


def test_certificates_are_reloaded_from_disk_without_dropping_connections(binary, tmp_path):
    old_ca, old_cert, old_key = make_pair(tmp_path, "old")
    new_ca, new_cert, new_key = make_pair(tmp_path, "new")
    live_cert, live_key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(old_cert, live_cert)
    shutil.copy(old_key, live_key)
    srv = SluiceServer(binary, name="sluice-reload",
                       extra_args=["--tls-cert", str(live_cert), "--tls-key", str(live_key)]).start()
    try:
        srv.ca = str(old_ca)
        open_conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.ssl_context(), timeout=15)
        assert call_on(open_conn, srv) == 200
        # The files are replaced as cert-manager does: each renamed into place.
        for source, target in ((new_key, live_key), (new_cert, live_cert)):
            staged = target.with_suffix(".staged")
            shutil.copy(source, staged)
            os.replace(staged, target)
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding
        wanted = x509.load_pem_x509_certificate(new_cert.read_bytes()).public_bytes(Encoding.DER)
        deadline = time.monotonic() + 15
        while served_certificate(srv.port) != wanted:
            assert time.monotonic() < deadline, "the new certificate was not served within 15 s"
            time.sleep(0.25)
        # New clients verify against the new CA ...
        srv.ca = str(new_ca)
        assert srv.json_call("ListStreams", {}).status == 200
        # ... and the connection opened before the swap is undisturbed.
        assert call_on(open_conn, srv) == 200
        open_conn.close()
    finally:
        srv.close()


def test_the_made_certificate_has_a_finite_life_and_is_for_servers(capped):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    tls_dir = capped.data_dir / "tls"
    cert = x509.load_pem_x509_certificate((tls_dir / "server.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((tls_dir / "ca.pem").read_bytes())
    now = dt.datetime.now(dt.timezone.utc)
    assert cert.not_valid_after_utc < now + dt.timedelta(days=400)
    assert ca.not_valid_after_utc < now + dt.timedelta(days=11 * 365)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert oct((tls_dir / "ca-key.pem").stat().st_mode & 0o777) == "0o600"


def test_data_directory_is_private_and_served_by_one_process(binary, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    first = SluiceServer(binary, name="sluice-lock")
    first.data_dir = data
    first.start()
    try:
        assert oct(data.stat().st_mode & 0o777) == "0o700"
        for name in ("catalog.db", "catalog.db-wal", "root.key", "credentials"):
            path = data / name
            if path.exists():
                assert oct(path.stat().st_mode & 0o777) == "0o600", name
        assert (data / "catalog.db").exists()
        import subprocess
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        second = subprocess.run([str(binary), "serve", "--data-dir", str(data), "--listen", "127.0.0.1:0"],
                                env=env, capture_output=True, timeout=60)
        assert second.returncode != 0
        assert b"another sluice is serving from" in second.stderr, second.stderr
    finally:
        first.close()


def test_json_logs_carry_the_request_id(binary):
    srv = SluiceServer(binary, name="sluice-jsonlog", extra_env={"SLUICE_LOG_FORMAT": "json",
                                                                   "SLUICE_LOG": "info,sluice_data_plane=debug"})
    srv.start()
    try:
        r = srv.json_call("DescribeStream", {"StreamName": "no-such-stream"})
        request_id = r.headers["x-amzn-requestid"]
        deadline = time.monotonic() + 10
        while True:
            lines = [json.loads(line) for line in srv.log_path.read_text().splitlines()
                     if line.startswith("{")]
            mine = [line for line in lines if request_id in json.dumps(line)]
            if mine or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert mine, "no JSON log line names the request id"
        assert all("\x1b[" not in json.dumps(line) for line in lines)
    finally:
        srv.close()
