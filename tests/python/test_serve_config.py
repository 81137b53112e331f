"""`sluice serve` configuration: an operator's certificate, and SLUICE_* environment."""

from __future__ import annotations

import os
import ssl

from harness import SluiceServer, unique_name


def test_operator_certificate_replaces_the_made_one(binary, tmp_path):
    # A first server makes a CA and a server certificate; a second one is given that
    # certificate and key, and must serve them instead of making its own.
    maker = SluiceServer(binary, name="sluice-certmaker").start()
    try:
        tls = maker.data_dir / "tls"
        cert, key, ca = tls / "server.pem", tls / "server-key.pem", maker.ca
        assert oct(os.stat(key).st_mode & 0o777) == "0o600"
        served = SluiceServer(binary, name="sluice-operator-cert",
                              extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
        served.start()
        try:
            # No CA is made or announced when the operator brings the certificate.
            assert not (served.data_dir / "tls").exists()
            assert not any(line.startswith("sluice: CA certificate") for line in served._stdout_lines)
            served.ca = ca
            client = served.client()
            name = unique_name("opcert")
            client.create_stream(StreamName=name, ShardCount=1)
            assert client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamName"] == name
            # The certificate really is the operator's: another CA does not verify it.
            other = SluiceServer(binary, name="sluice-other-ca").start()
            try:
                ctx = ssl.create_default_context(cafile=other.ca)
                import socket
                with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
                    try:
                        ctx.wrap_socket(sock, server_hostname="localhost")
                        raise AssertionError("a certificate from another CA verified")
                    except ssl.SSLCertVerificationError:
                        pass
            finally:
                other.close()
        finally:
            served.close()
    finally:
        maker.close()


def test_settings_come_from_the_environment(binary):
    srv = SluiceServer(binary, name="sluice-env",
                       extra_env={"SLUICE_REGION": "eu-west-1", "SLUICE_ACCOUNT_ID": "123456789012"})
    srv.start()
    try:
        client = srv.client(region="eu-west-1")
        name = unique_name("env")
        client.create_stream(StreamName=name, ShardCount=1)
        arn = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        assert arn == f"arn:aws:kinesis:eu-west-1:123456789012:stream/{name}"
        # The server's region is the one requests must be signed for.
        from harness import expect_error
        with expect_error("InvalidSignatureException", "IncompleteSignatureException"):
            srv.client(region="us-east-1").list_streams()
    finally:
        srv.close()


def test_bad_settings_are_refused_with_the_key_named(binary):
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_ACCOUNT_ID"] = "12"
    r = subprocess.run([str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", "/nonexistent/never"],
                       env=env, capture_output=True, timeout=30)
    assert r.returncode != 0
    assert b"SLUICE_ACCOUNT_ID" in r.stderr


def test_the_root_key_can_come_from_the_environment(binary):
    import secrets
    key = secrets.token_hex(32)
    srv = SluiceServer(binary, name="sluice-rootenv", extra_env={"SLUICE_ROOT_KEY": key})
    srv.start()
    try:
        # No key file is made; the bootstrap secret was sealed under the given key.
        assert not (srv.data_dir / "root.key").exists()
        srv.client().list_streams()
        srv.stop()
        # The same key opens what it sealed after a restart...
        srv.start()
        srv.client().list_streams()
        srv.stop()
        # ...another key opens nothing: the server refuses to start, saying why (its
        # sealed server secrets do not open), rather than serve and fail every request.
        srv.extra_env["SLUICE_ROOT_KEY"] = secrets.token_hex(32)
        try:
            srv.start()
            raise AssertionError("sluice started under another root key")
        except RuntimeError as e:
            assert "exited with" in str(e)
        assert "does not open under the root key" in srv.log_path.read_text()
    finally:
        srv.close()


def test_a_malformed_root_key_in_the_environment_is_refused(binary, tmp_path):
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_ROOT_KEY"] = "not-hex"
    r = subprocess.run([str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")],
                       env=env, capture_output=True, timeout=30)
    assert r.returncode != 0 and b"64 hex characters" in r.stderr, r.stderr
    assert b"not-hex" not in r.stderr


def test_kinesis_throughput_limits_are_the_default(binary):
    import subprocess
    out = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True, timeout=30).stdout
    for flag, default in [("--shard-write-bytes-per-second", "1048576"), ("--shard-write-records-per-second", "1000"),
                          ("--shard-read-bytes-per-second", "2097152"), ("--shard-read-calls-per-second", "5")]:
        line = out[out.index(flag):]
        line = line[: line.index("--", len(flag))]
        assert f"[default: {default}]" in line, (flag, line)


def test_secrets_can_come_from_files(binary, tmp_path):
    # As a Kubernetes Secret is mounted: the database URL in a file named by
    # SLUICE_DATABASE_URL_FILE, the root key in a group-readable (0440) file.
    import secrets
    import subprocess
    url_file = tmp_path / "url"
    url_file.write_text(f"sqlite://{tmp_path / 'catalog.db'}?mode=rwc\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_DATABASE_URL_FILE"] = str(url_file)
    r = subprocess.run([str(binary), "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "is migrated" in r.stdout, r.stderr
    assert (tmp_path / "catalog.db").exists()
    key_file = tmp_path / "root.key"
    key_file.write_text(secrets.token_hex(32) + "\n")
    os.chmod(key_file, 0o440)
    srv = SluiceServer(binary, name="sluice-files", extra_args=["--root-key-file", str(key_file)])
    srv.start()
    try:
        srv.client().list_streams()
    finally:
        srv.close()
    # Readable by others, it is refused.
    os.chmod(key_file, 0o444)
    r = subprocess.run([str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
                        "--root-key-file", str(key_file)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "chmod 600" in r.stderr, r.stderr
