"""The way in: a client without a valid credential holds no share of the body budget,
so connections that announce large bodies and never send them cannot starve anyone."""

from __future__ import annotations

import datetime as dt
import socket
import ssl

from harness import JSON_CT, REGION, TARGET_PREFIX

HELD = 70  # more than the 512 MiB budget holds at 8 MiB each (bodies may be 16 MiB)
BODY = 8 * 1024 * 1024


def held_request(server, authorization: str) -> ssl.SSLSocket:
    """A TLS connection that sends a request's headers announcing an 8 MiB body, and
    then nothing."""
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    tls = server.ssl_context().wrap_socket(raw, server_hostname="localhost")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    head = (
        "POST / HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: {JSON_CT}\r\n"
        f"X-Amz-Target: {TARGET_PREFIX}ListStreams\r\n"
        f"X-Amz-Date: {now}\r\n"
        f"Authorization: {authorization}\r\n"
        f"Content-Length: {BODY}\r\n\r\n"
    )
    tls.sendall(head.encode())
    return tls


def status_of(sock: ssl.SSLSocket) -> str:
    sock.settimeout(10)
    first = sock.recv(4096).split(b"\r\n", 1)[0].decode()
    return first


def test_held_bodies_without_a_valid_credential_hold_no_budget(server):
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
    unknown_key = (
        f"AWS4-HMAC-SHA256 Credential=AKIAUNKNOWNKEY000000/{today}/{REGION}/kinesis/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    held = []
    try:
        for i in range(HELD):
            held.append(held_request(server, "x" if i % 2 == 0 else unknown_key))
        # Each is refused without its body being waited for ...
        answers = [status_of(s) for s in held[:6]]
        assert all(a.startswith("HTTP/1.1 400") for a in answers), answers
        # ... and while they all stay open, signed requests are served, not 503.
        for _ in range(3):
            r = server.json_call("ListStreams", {})
            assert r.status == 200, r
    finally:
        for s in held:
            s.close()


def test_a_signed_request_whose_body_never_comes_is_cut_off(server):
    """A valid credential admits the body's wait, but only for its deadline (10 s for
    a small body): then the request is answered 408 and its budget share returned."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b"{}"
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body,
                     headers={"Content-Type": JSON_CT, "X-Amz-Target": TARGET_PREFIX + "ListStreams"})
    key, secret = server.credentials()
    SigV4Auth(Credentials(key, secret), "kinesis", REGION).add_auth(req)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    tls = server.ssl_context().wrap_socket(raw, server_hostname="localhost")
    try:
        head = "POST / HTTP/1.1\r\n" + f"Host: 127.0.0.1:{server.port}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in req.headers.items() if k.lower() != "host"
        ) + f"Content-Length: {len(body)}\r\n\r\n"
        tls.sendall(head.encode())
        tls.settimeout(30)
        answer = tls.recv(4096).decode(errors="replace")
        assert answer.startswith("HTTP/1.1 408"), answer[:200]
        assert "RequestTimeoutException" in answer, answer
    finally:
        tls.close()
    assert server.json_call("ListStreams", {}).status == 200
