"""Firehose through boto3's `firehose` client against the real binary: delivery streams
that buffer records in Sluice's log and deliver them to SeaweedFS (a real S3-compatible
store) and to an HTTPS endpoint started here, with AWS's API shapes and errors."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import http.server
import io
import json
import os
import re
import ssl
import threading
import time
import zipfile

import pytest

from harness import (ACCOUNT_ID, PostgresDatabase, SeaweedServer, SluiceServer,
                     error_code, unique_name)

ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/lake"


@pytest.fixture(scope="module")
def weed():
    srv = SeaweedServer().start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A CA and a certificate for 127.0.0.1 it signed, for the HTTPS receiver."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    root = tmp_path_factory.mktemp("receiver-tls")
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "firehose test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (root / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (root / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return root


@pytest.fixture(scope="module")
def sluice(binary, backend, tls_files, weed):
    """One server for the module, trusting the receiver's CA for destinations."""
    db = PostgresDatabase(os.environ["SLUICE_TEST_POSTGRES_URL"]) if backend == "postgres" else None
    srv = SluiceServer(binary, backend=backend, database_url=db.url if db else None,
                       name="sluice-firehose",
                       extra_env={"SLUICE_DESTINATION_CA_BUNDLE": str(tls_files / "ca.pem"),
                                  # Kinesis channels deliver within seconds here, not 300 s.
                                  "SLUICE_CHANNEL_MIN_FRESHNESS_SECONDS": "1"})
    try:
        srv.start()
        put = srv.admin("PUT", "/admin/v1/tenants/self/connections/lake", {
            "settings": {"s3_endpoint": weed.endpoint, "s3_access_key_id": weed.ACCESS_KEY},
            "s3_secret_access_key": weed.SECRET_KEY})
        assert put.status == 200, put.body
        yield srv
    finally:
        srv.close()
        if db:
            db.close()


@pytest.fixture
def firehose(sluice):
    return sluice.client(service="firehose")


def s3_destination(bucket: str, **extra) -> dict:
    return {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", **extra}


def wait_for(predicate, timeout: float = 60, every: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def records_in(objects: dict[str, bytes], unzip=gzip.decompress) -> list[bytes]:
    out = []
    for body in objects.values():
        out.extend(line for line in unzip(body).split(b"\n") if line)
    return out


def payload(i: int, size: int = 1024) -> bytes:
    head = json.dumps({"id": i}).encode()
    return head + b" " * (size - len(head) - 1)


def test_direct_put_lands_every_record_in_s3_in_gzip_objects(sluice, firehose, weed):
    bucket = unique_name("lake").lower().replace("_", "-")
    weed.create_bucket(bucket)
    name = unique_name("ds")
    arn = firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_destination(
            bucket, Prefix="orders/", CompressionFormat="GZIP",
            BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 2},
            ProcessingConfiguration={"Enabled": True, "Processors": [
                {"Type": "AppendDelimiterToRecord"}]}))["DeliveryStreamARN"]
    assert arn == f"arn:aws:firehose:us-east-1:{ACCOUNT_ID}:deliverystream/{name}"
    total = 2000
    for start in range(0, total, 500):
        out = firehose.put_record_batch(DeliveryStreamName=name, Records=[
            {"Data": payload(i)} for i in range(start, start + 500)])
        assert out["FailedPutCount"] == 0
        assert len(out["RequestResponses"]) == 500
        assert all(r["RecordId"] for r in out["RequestResponses"])
    single = firehose.put_record(DeliveryStreamName=name, Record={"Data": payload(total)})
    assert single["RecordId"]

    def delivered():
        objects = weed.objects(bucket)
        got = records_in(objects)
        return (objects, got) if len(got) >= total + 1 else None

    objects, got = wait_for(delivered, timeout=90, what="every record in the bucket")
    ids = sorted(json.loads(r)["id"] for r in got)
    assert ids == list(range(total + 1)), "each record exactly once"
    assert len(objects) > 1, "1 MiB buffers make more than one object of 2 MB"
    key_form = re.compile(
        rf"^orders/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/{name}-1-\d{{4}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}-[0-9a-f-]{{36}}\.gz$")
    for key in objects:
        assert key_form.match(key), key
    text = sluice.admin("GET", "/metrics").body.decode()
    series = f'delivery_stream="{ACCOUNT_ID}/{name}"'

    def value(metric: str) -> float:
        lines = [l for l in text.splitlines() if l.startswith(metric + "{") and series in l]
        assert lines, f"{metric} for {name} is not exported"
        return float(lines[0].rsplit(" ", 1)[1])

    assert value("sluice_firehose_incoming_records_total") == total + 1
    assert value("sluice_firehose_delivered_records_total") >= total + 1
    assert value("sluice_firehose_delivered_bytes_total") >= (total + 1) * 1023
    assert f"sluice_firehose_delivery_latency_seconds_count{{{series}}}" in text or \
        any(l.startswith("sluice_firehose_delivery_latency_seconds") and series in l for l in text.splitlines())
    assert any(l.startswith("sluice_firehose_data_freshness_seconds") and series in l for l in text.splitlines())


def test_a_stream_source_delivers_every_record_across_a_reshard(sluice, firehose, weed):
    kinesis = sluice.client()
    bucket = unique_name("src").lower().replace("_", "-")
    weed.create_bucket(bucket)
    stream = unique_name("fs")
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    before = b"put before the delivery stream existed"
    kinesis.put_record(StreamName=stream, Data=before, PartitionKey="early")
    name = unique_name("ds")
    firehose.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=s3_destination(
            bucket, CompressionFormat="UNCOMPRESSED",
            BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 1},
            ProcessingConfiguration={"Enabled": True, "Processors": [
                {"Type": "AppendDelimiterToRecord"}]}))
    described = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert described["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == stream_arn
    sent = []
    for i in range(300):
        data = f"rec-{i}".encode()
        sent.append(data)
        kinesis.put_record(StreamName=stream, Data=data, PartitionKey=f"k{i}")
        if i == 150:
            shards = kinesis.list_shards(StreamName=stream)["Shards"]
            first = shards[0]
            lo = int(first["HashKeyRange"]["StartingHashKey"])
            hi = int(first["HashKeyRange"]["EndingHashKey"])
            kinesis.split_shard(StreamName=stream, ShardToSplit=first["ShardId"],
                                NewStartingHashKey=str((lo + hi) // 2))
            wait_for(lambda: kinesis.describe_stream_summary(StreamName=stream)
                     ["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", what="the split")
    # A KPL aggregate (made by the public aws_kinesis_agg package) is delivered as its
    # user records, as Firehose does.
    from aws_kinesis_agg.aggregator import RecordAggregator

    aggregator = RecordAggregator()
    for i in range(5):
        user = f"agg-{i}".encode()
        sent.append(user)
        aggregator.add_user_record(f"ak{i}", user)
    key, _hash_key, data = aggregator.clear_and_get().get_contents()
    kinesis.put_record(StreamName=stream, Data=data, PartitionKey=key)
    with pytest.raises(Exception) as refused:
        firehose.put_record(DeliveryStreamName=name, Record={"Data": b"x"})
    assert error_code(refused.value) == "InvalidArgumentException"

    def delivered():
        got = records_in(weed.objects(bucket), unzip=lambda b: b)
        return got if len(got) >= len(sent) else None

    got = wait_for(delivered, timeout=90, what="every stream record in the bucket")
    assert sorted(got) == sorted(sent), "every record put after creation, once, and none from before"
    assert before not in got


class Receiver(http.server.ThreadingHTTPServer):
    """An HTTPS endpoint with Firehose's contract that fails its first `failures` requests."""

    def __init__(self, tls_files, failures: int):
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_files / "cert.pem", tls_files / "key.pem")
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.failures = failures
        self.requests: list[tuple[dict, dict]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}/ingest"


class ReceiverHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        doc = json.loads(body)
        server: Receiver = self.server  # type: ignore[assignment]
        with server.lock:
            server.requests.append(({k.lower(): v for k, v in self.headers.items()}, doc))
            fail = len(server.requests) <= server.failures
        if fail:
            answer, status = {"requestId": doc["requestId"], "errorMessage": "try again"}, 503
        else:
            answer, status = {"requestId": doc["requestId"], "timestamp": int(time.time() * 1000)}, 200
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_an_https_endpoint_that_fails_twice_still_receives_every_record(firehose, weed, tls_files):
    receiver = Receiver(tls_files, failures=2)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        bucket = unique_name("http").lower().replace("_", "-")
        weed.create_bucket(bucket)
        name = unique_name("ds")
        firehose.create_delivery_stream(
            DeliveryStreamName=name,
            HttpEndpointDestinationConfiguration={
                "EndpointConfiguration": {"Url": receiver.url, "Name": "receiver",
                                          "AccessKey": "endpoint-secret-key"},
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
                "RequestConfiguration": {"ContentEncoding": "GZIP", "CommonAttributes": [
                    {"AttributeName": "team", "AttributeValue": "payments"}]},
                "RetryOptions": {"DurationInSeconds": 60},
                "S3Configuration": s3_destination(bucket),
            })
        described = json.dumps(firehose.describe_delivery_stream(DeliveryStreamName=name), default=str)
        assert "endpoint-secret-key" not in described
        sent = [f"event-{i}".encode() for i in range(50)]
        out = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in sent])
        assert out["FailedPutCount"] == 0
        wait_for(lambda: len(receiver.requests) >= 3, timeout=60, what="two failures and a success")
        time.sleep(1)
        ok = receiver.requests[2:]
        got = [base64.b64decode(r["data"]) for _, doc in ok for r in doc["records"]]
        assert sorted(set(got)) == sorted(sent)
        headers, doc = receiver.requests[0]
        assert headers["x-amz-firehose-access-key"] == "endpoint-secret-key"
        assert headers["x-amz-firehose-request-id"] == doc["requestId"]
        assert headers["x-amz-firehose-protocol-version"] == "1.0"
        assert json.loads(headers["x-amz-firehose-common-attributes"]) == {
            "commonAttributes": {"team": "payments"}}
        assert headers["x-amz-firehose-source-arn"].endswith(f":deliverystream/{name}")
        # The retries of one buffer carry one request id.
        assert len({doc["requestId"] for _, doc in receiver.requests[:3]}) == 1
        assert weed.objects(bucket) == {}, "nothing failed for good, so nothing went to S3"
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_what_an_endpoint_never_takes_goes_to_the_error_prefix(sluice, firehose, weed, tls_files):
    receiver = Receiver(tls_files, failures=10**6)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        bucket = unique_name("err").lower().replace("_", "-")
        weed.create_bucket(bucket)
        name = unique_name("ds")
        firehose.create_delivery_stream(
            DeliveryStreamName=name,
            HttpEndpointDestinationConfiguration={
                "EndpointConfiguration": {"Url": receiver.url},
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                "RetryOptions": {"DurationInSeconds": 2},
                "S3Configuration": s3_destination(bucket, ErrorOutputPrefix="failed/"),
            })
        firehose.put_record(DeliveryStreamName=name, Record={"Data": b"undeliverable"})
        try:
            objects = wait_for(lambda: weed.objects(bucket), timeout=60, what="the error object")
        except AssertionError:
            print(sluice.diagnostics())
            raise
        (key, body), = objects.items()
        assert key.startswith("failed/http-endpoint-failed/"), key
        line = json.loads(body.splitlines()[0])
        assert base64.b64decode(line["rawData"]) == b"undeliverable"
        assert line["errorCode"].startswith("HttpEndpoint.")
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_zip_objects_read_back(firehose, weed):
    """A ZIP object holds one entry with the buffer (Snappy and HADOOP_SNAPPY are read
    back by encode.rs's unit tests: Python here has no Snappy decoder)."""
    fmt = "ZIP"
    bucket = unique_name("zip").lower().replace("_", "-")
    weed.create_bucket(bucket)
    name = unique_name("ds")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_destination(
            bucket, CompressionFormat=fmt, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0}))
    firehose.put_record(DeliveryStreamName=name, Record={"Data": b"zipped"})
    objects = wait_for(lambda: weed.objects(bucket), timeout=60, what="the zip object")
    (key, body), = objects.items()
    assert key.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert z.read(z.namelist()[0]) == b"zipped"


def test_the_api_answers_as_firehose_does(sluice, firehose, weed):
    raw = sluice.client(service="firehose", validate=False)
    bucket = unique_name("api").lower().replace("_", "-")
    weed.create_bucket(bucket)
    name = unique_name("ds")
    firehose.create_delivery_stream(
        DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_destination(bucket),
        Tags=[{"Key": "team", "Value": "data"}])
    d = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["DeliveryStreamStatus"] == "ACTIVE" and d["DeliveryStreamType"] == "DirectPut"
    assert d["VersionId"] == "1" and d["HasMoreDestinations"] is False
    dest = d["Destinations"][0]
    assert dest["DestinationId"] == "destinationId-000000000001"
    ext = dest["ExtendedS3DestinationDescription"]
    assert ext["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 300}
    assert ext["CompressionFormat"] == "UNCOMPRESSED"
    assert d["DeliveryStreamEncryptionConfiguration"]["Status"] == "DISABLED"
    assert name in firehose.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
    assert name in firehose.list_delivery_streams(
        Limit=10000, DeliveryStreamType="DirectPut")["DeliveryStreamNames"]
    assert name not in firehose.list_delivery_streams(
        Limit=10000, DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"]
    # The buffer is no Kinesis stream a tenant sees.
    assert not [s for s in sluice.client().list_streams()["StreamNames"] if name in s]

    firehose.update_destination(
        DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
        DestinationId="destinationId-000000000001",
        ExtendedS3DestinationUpdate={"Prefix": "v2/", "BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 60}})
    d = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["VersionId"] == "2"
    ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert ext["Prefix"] == "v2/" and ext["BucketARN"] == f"arn:aws:s3:::{bucket}"
    with pytest.raises(Exception) as stale:
        firehose.update_destination(
            DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
            DestinationId="destinationId-000000000001", ExtendedS3DestinationUpdate={"Prefix": "v3/"})
    assert error_code(stale.value) == "ConcurrentModificationException"

    firehose.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "env", "Value": "test"}])
    tags = firehose.list_tags_for_delivery_stream(DeliveryStreamName=name)
    assert tags["Tags"] == [{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "data"}]
    firehose.untag_delivery_stream(DeliveryStreamName=name, TagKeys=["env"])
    page = firehose.list_tags_for_delivery_stream(DeliveryStreamName=name, Limit=1)
    assert page["Tags"] == [{"Key": "team", "Value": "data"}] and page["HasMoreTags"] is False

    firehose.start_delivery_stream_encryption(
        DeliveryStreamName=name,
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
    enc = firehose.describe_delivery_stream(DeliveryStreamName=name)[
        "DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
    assert enc["Status"] == "ENABLED" and enc["KeyType"] == "AWS_OWNED_CMK"
    assert firehose.put_record(DeliveryStreamName=name, Record={"Data": b"x"})["Encrypted"] is True
    key_arn = sluice.client(service="kms").create_key()["KeyMetadata"]["Arn"]
    firehose.start_delivery_stream_encryption(
        DeliveryStreamName=name,
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": key_arn})
    assert firehose.describe_delivery_stream(DeliveryStreamName=name)[
        "DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]["KeyARN"] == key_arn
    firehose.stop_delivery_stream_encryption(DeliveryStreamName=name)

    def code(call, **kw):
        with pytest.raises(Exception) as e:
            call(**kw)
        return error_code(e.value)

    assert code(firehose.create_delivery_stream, DeliveryStreamName=name,
                ExtendedS3DestinationConfiguration=s3_destination(bucket)) == "ResourceInUseException"
    assert code(firehose.describe_delivery_stream, DeliveryStreamName="nope") == "ResourceNotFoundException"
    assert code(firehose.put_record, DeliveryStreamName="nope",
                Record={"Data": b"x"}) == "ResourceNotFoundException"
    assert code(firehose.create_delivery_stream, DeliveryStreamName=unique_name("ds"),
                ExtendedS3DestinationConfiguration=s3_destination(
                    bucket, ProcessingConfiguration={"Enabled": True, "Processors": [
                        {"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn",
                                                           "ParameterValue": "arn:aws:lambda:us-east-1:123456789012:function:f"}]}]})
                ) == "InvalidArgumentException"
    assert code(firehose.create_delivery_stream, DeliveryStreamName=unique_name("ds"),
                ExtendedS3DestinationConfiguration={
                    "RoleARN": f"arn:aws:iam::{ACCOUNT_ID}:role/unregistered",
                    "BucketARN": f"arn:aws:s3:::{bucket}"}) == "InvalidArgumentException"
    assert code(raw.create_delivery_stream, DeliveryStreamName=unique_name("ds"),
                ExtendedS3DestinationConfiguration=s3_destination(
                    bucket, BufferingHints={"SizeInMBs": 129})) == "InvalidArgumentException"
    assert code(raw.put_record_batch, DeliveryStreamName=name,
                Records=[{"Data": b"x"}] * 501) == "ValidationException"
    assert code(raw.put_record, DeliveryStreamName=name,
                Record={"Data": b"x" * 1_024_001}) == "ValidationException"
    assert code(raw.put_record_batch, DeliveryStreamName=name,
                Records=[{"Data": b"x" * 1_000_000}] * 5) == "InvalidArgumentException"
    firehose.delete_delivery_stream(DeliveryStreamName=name)
    assert code(firehose.describe_delivery_stream, DeliveryStreamName=name) == "ResourceNotFoundException"


def test_acknowledged_records_survive_kill_9_and_are_delivered(binary, weed):
    srv = SluiceServer(binary, name="sluice-firehose-crash")
    try:
        srv.start()
        assert srv.admin("PUT", "/admin/v1/tenants/self/connections/lake", {
            "settings": {"s3_endpoint": weed.endpoint, "s3_access_key_id": weed.ACCESS_KEY},
            "s3_secret_access_key": weed.SECRET_KEY}).status == 200
        firehose = srv.client(service="firehose")
        bucket = unique_name("crash").lower().replace("_", "-")
        weed.create_bucket(bucket)
        name = unique_name("ds")
        # Buffers that would not be delivered for 15 minutes: everything is still
        # buffered when the server dies.
        firehose.create_delivery_stream(
            DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_destination(
                bucket, BufferingHints={"SizeInMBs": 128, "IntervalInSeconds": 900},
                ProcessingConfiguration={"Enabled": True, "Processors": [
                    {"Type": "AppendDelimiterToRecord"}]}))
        acknowledged = []
        for batch in range(4):
            records = [f"crash-{batch}-{i}".encode() for i in range(250)]
            out = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
            acknowledged += [r for r, resp in zip(records, out["RequestResponses"]) if "RecordId" in resp]
        assert len(acknowledged) == 1000
        srv.kill()
        srv.restart()
        firehose = srv.client(service="firehose")
        version = firehose.describe_delivery_stream(DeliveryStreamName=name)[
            "DeliveryStreamDescription"]["VersionId"]
        firehose.update_destination(
            DeliveryStreamName=name, CurrentDeliveryStreamVersionId=version,
            DestinationId="destinationId-000000000001",
            ExtendedS3DestinationUpdate={"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}})

        def delivered():
            got = records_in(weed.objects(bucket), unzip=lambda b: b)
            return got if set(acknowledged) <= set(got) else None

        got = wait_for(delivered, timeout=90, what="every acknowledged record after the restart")
        duplicates = len(got) - len(set(got))
        print(f"acknowledged {len(acknowledged)}, delivered {len(got)}, duplicates {duplicates}")
    finally:
        srv.close()


def test_ingestion_is_metered_as_firehose_bills_it(sluice, firehose, weed):
    bucket = unique_name("bill").lower().replace("_", "-")
    weed.create_bucket(bucket)
    name = unique_name("ds")
    firehose.create_delivery_stream(
        DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_destination(bucket))
    # 3 records of 6 KB bill 2 increments of 5 KB each: 30 KiB.
    firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x" * 6000}] * 3)
    now = int(time.time() * 1000)
    report = sluice.admin("GET", f"/admin/v1/tenants/{ACCOUNT_ID}/usage?from={now - 3_600_000}&to={now + 60_000}")
    assert report.status == 200, report.body
    lines = [l for l in report.json()["lines"]
             if l["metric"] == "firehose_ingested_gib" and l["stream"] == f"firehose/{name}"]
    assert lines, report.json()["lines"][-5:]
    assert sum(float(l["quantity"]) for l in lines) == pytest.approx(30 / 1024 / 1024)


@pytest.fixture(scope="module")
def warehouse():
    """A Postgres database of its own, as the warehouse a Redshift destination loads."""
    from conftest import require_postgres
    from harness import psql

    db = PostgresDatabase(require_postgres(" (the warehouse destination loads Postgres)"))
    try:
        yield db, lambda sql: psql(db.url, sql)
    finally:
        db.close()


def test_a_postgres_table_receives_the_rows(firehose, weed, warehouse):
    db, sql = warehouse
    table = unique_name("orders").lower().replace("-", "_")
    created = sql(f"CREATE TABLE {table} (id integer, name text, amount numeric, note text)")
    assert created.returncode == 0, created.stderr
    bucket = unique_name("stage").lower().replace("_", "-")
    weed.create_bucket(bucket)
    name = unique_name("ds")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        RedshiftDestinationConfiguration={
            "RoleARN": ROLE,
            "ClusterJDBCURL": f"jdbc:postgresql://127.0.0.1:5432/{db.name}",
            "Username": "postgres",
            "Password": "not-needed-under-trust",
            "CopyCommand": {"DataTableName": table, "DataTableColumns": "id,name,amount",
                            "CopyOptions": "JSON 'auto'"},
            "S3Configuration": s3_destination(
                bucket, Prefix="staging/", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 1}),
        })
    d = json.dumps(firehose.describe_delivery_stream(DeliveryStreamName=name), default=str)
    assert "not-needed-under-trust" not in d
    rows = [{"ID": i, "Name": f"o'{i}\"", "amount": i * 1.5, "ignored": True} for i in range(200)]
    for start in range(0, 200, 100):
        out = firehose.put_record_batch(DeliveryStreamName=name, Records=[
            {"Data": json.dumps(r).encode()} for r in rows[start:start + 100]])
        assert out["FailedPutCount"] == 0

    def loaded():
        r = sql(f"SELECT count(*), count(DISTINCT id) FROM {table}")
        return r.stdout.strip() if r.stdout.strip().startswith("200|") else None

    assert wait_for(loaded, timeout=90, what="200 rows in the table") == "200|200"
    got = sql(f"SELECT name, amount, note IS NULL FROM {table} WHERE id = 7").stdout.strip()
    assert got == "o'7\"|10.5|t", got
    assert any(k.startswith("staging/") for k in weed.objects(bucket)), "staged in S3 first"

    csv_table = unique_name("csv").lower().replace("-", "_")
    assert sql(f"CREATE TABLE {csv_table} (a integer, b text)").returncode == 0
    csv_name = unique_name("ds")
    firehose.create_delivery_stream(
        DeliveryStreamName=csv_name,
        RedshiftDestinationConfiguration={
            "RoleARN": ROLE,
            "ClusterJDBCURL": f"jdbc:postgresql://127.0.0.1:5432/{db.name}",
            "Username": "postgres",
            "CopyCommand": {"DataTableName": csv_table, "CopyOptions": "CSV DELIMITER ';'"},
            "S3Configuration": s3_destination(
                bucket, Prefix="csv/", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 1}),
        })
    firehose.put_record_batch(DeliveryStreamName=csv_name, Records=[
        {"Data": f"{i};row {i}\n".encode()} for i in range(30)])
    wait_for(lambda: sql(f"SELECT count(*) FROM {csv_table}").stdout.strip() == "30",
             timeout=90, what="30 CSV rows")


class BulkReceiver(http.server.ThreadingHTTPServer):
    """An HTTPS `_bulk` endpoint that checks the protocol (NDJSON action and document
    pairs, basic credentials), refuses each document's first try with 429 once, and a
    document holding "bad" for good (400), keeping what it indexed by index and id."""

    def __init__(self, tls_files):
        super().__init__(("127.0.0.1", 0), BulkHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_files / "cert.pem", tls_files / "key.pem")
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.lock = threading.Lock()
        self.indexed: dict[tuple[str, str], dict] = {}
        self.seen: set[str] = set()
        self.requests = 0
        self.problems: list[str] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


class BulkHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server: BulkReceiver = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        auth = self.headers.get("Authorization", "")
        lines = body.decode().split("\n")
        items = []
        with server.lock:
            server.requests += 1
            if self.path != "/_bulk":
                server.problems.append(f"path {self.path}")
            if auth != "Basic " + base64.b64encode(b"indexer:search-secret").decode():
                server.problems.append(f"authorization {auth!r}")
            if self.headers.get("Content-Type") != "application/x-ndjson" or lines[-1] != "":
                server.problems.append("not NDJSON")
            for action, doc in zip(lines[0:-1:2], lines[1:-1:2]):
                meta = json.loads(action)["index"]
                source = json.loads(doc)
                key = (meta["_index"], meta["_id"])
                if "bad" in source.get("msg", ""):
                    items.append({"index": {"status": 400, "error": {"type": "mapper_parsing_exception"}}})
                elif meta["_id"] not in server.seen:
                    server.seen.add(meta["_id"])
                    items.append({"index": {"status": 429, "error": {"type": "es_rejected_execution_exception"}}})
                else:
                    server.indexed[key] = source
                    items.append({"index": {"_index": meta["_index"], "_id": meta["_id"], "status": 201}})
        data = json.dumps({"took": 1, "errors": any(i["index"]["status"] >= 300 for i in items),
                           "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_opensearch_gets_bulk_requests_with_stable_ids(sluice, firehose, weed, tls_files):
    receiver = BulkReceiver(tls_files)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        put = sluice.admin("PUT", "/admin/v1/tenants/self/connections/search", {
            "settings": {"http_username": "indexer"}, "http_password": "search-secret"})
        assert put.status == 200, put.body
        listed = sluice.admin("GET", "/admin/v1/tenants/self/connections").body.decode()
        assert "search-secret" not in listed and weed.SECRET_KEY not in listed
        bucket = unique_name("os").lower().replace("_", "-")
        weed.create_bucket(bucket)
        name = unique_name("ds")
        firehose.create_delivery_stream(
            DeliveryStreamName=name,
            AmazonopensearchserviceDestinationConfiguration={
                "RoleARN": f"arn:aws:iam::{ACCOUNT_ID}:role/search",
                "ClusterEndpoint": receiver.url,
                "IndexName": "logs",
                "IndexRotationPeriod": "OneDay",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
                "RetryOptions": {"DurationInSeconds": 30},
                "S3Configuration": s3_destination(bucket, ErrorOutputPrefix="os-errors/"),
            })
        d = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        assert d["Destinations"][0]["AmazonopensearchserviceDestinationDescription"]["IndexName"] == "logs"
        docs = [{"msg": f"line {i}"} for i in range(40)] + [{"msg": "a bad one"}]
        out = firehose.put_record_batch(DeliveryStreamName=name, Records=[
            {"Data": json.dumps(doc).encode()} for doc in docs])
        assert out["FailedPutCount"] == 0
        wait_for(lambda: len(receiver.indexed) >= 40, timeout=60, what="40 documents indexed")
        errors = wait_for(lambda: weed.objects(bucket, "os-errors/"), timeout=60, what="the refused document")
        assert receiver.problems == []
        today = time.strftime("%Y-%m-%d", time.gmtime())
        assert {idx for idx, _ in receiver.indexed} == {f"logs-{today}"}
        assert sorted(d["msg"] for d in receiver.indexed.values()) == sorted(f"line {i}" for i in range(40))
        assert receiver.requests >= 2, "refused items were sent again"
        (key, body), = errors.items()
        assert key.startswith("os-errors/elasticsearch-failed/"), key
        assert json.loads(base64.b64decode(json.loads(body.splitlines()[0])["rawData"])) == {"msg": "a bad one"}
    finally:
        receiver.shutdown()
        receiver.server_close()


class HecReceiver(http.server.ThreadingHTTPServer):
    """An HTTPS Splunk HTTP Event Collector that checks the protocol (token, channel,
    event bodies) and acknowledges an ackId only on the second ack poll."""

    TOKEN = "11111111-2222-3333-4444-555555555555"

    def __init__(self, tls_files):
        super().__init__(("127.0.0.1", 0), HecHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_files / "cert.pem", tls_files / "key.pem")
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.lock = threading.Lock()
        self.events: list = []
        self.pending: dict[int, list] = {}
        self.polls: dict[int, int] = {}
        self.next_ack = 0
        self.problems: list[str] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


class HecHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, doc: dict, status: int = 200):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        server: HecReceiver = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Authorization") != f"Splunk {HecReceiver.TOKEN}":
            return self.answer({"text": "Invalid token", "code": 4}, 403)
        if not self.headers.get("X-Splunk-Request-Channel"):
            return self.answer({"text": "Data channel is missing", "code": 10}, 400)
        with server.lock:
            if self.path == "/services/collector/event":
                decoder, at, events = json.JSONDecoder(), 0, []
                text = body.decode()
                while at < len(text):
                    event, at = decoder.raw_decode(text, at)
                    if "event" not in event or "time" not in event:
                        server.problems.append(f"not an HEC event: {event}")
                    events.append(event["event"])
                ack = server.next_ack
                server.next_ack += 1
                server.pending[ack] = events
                return self.answer({"text": "Success", "code": 0, "ackId": ack})
            if self.path.startswith("/services/collector/ack"):
                acks = json.loads(body)["acks"]
                out = {}
                for ack in acks:
                    server.polls[ack] = server.polls.get(ack, 0) + 1
                    done = server.polls[ack] >= 2
                    if done and ack in server.pending:
                        server.events.extend(server.pending.pop(ack))
                    out[str(ack)] = done
                return self.answer({"acks": out})
            server.problems.append(f"path {self.path}")
            return self.answer({"text": "not found"}, 404)


def test_splunk_gets_hec_events_and_acknowledgments(firehose, weed, tls_files):
    receiver = HecReceiver(tls_files)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        bucket = unique_name("hec").lower().replace("_", "-")
        weed.create_bucket(bucket)
        name = unique_name("ds")
        firehose.create_delivery_stream(
            DeliveryStreamName=name,
            SplunkDestinationConfiguration={
                "HECEndpoint": receiver.url,
                "HECEndpointType": "Event",
                "HECToken": HecReceiver.TOKEN,
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
                "S3Configuration": s3_destination(bucket),
            })
        d = json.dumps(firehose.describe_delivery_stream(DeliveryStreamName=name), default=str)
        assert HecReceiver.TOKEN not in d
        sent = [{"n": i} for i in range(20)] + ["plain text"]
        firehose.put_record_batch(DeliveryStreamName=name, Records=[
            {"Data": (json.dumps(e) if isinstance(e, dict) else e).encode()} for e in sent])
        wait_for(lambda: len(receiver.events) >= len(sent), timeout=60, what="acknowledged events")
        assert receiver.problems == []
        assert sorted(map(json.dumps, receiver.events)) == sorted(map(json.dumps, sent))
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_the_firehose_bench_phase_measures_to_the_last_byte_in_s3(binary, sluice, weed):
    import subprocess

    bucket = unique_name("bench").lower().replace("_", "-")
    weed.create_bucket(bucket)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    p = subprocess.run([str(binary), "bench", "--endpoint", f"127.0.0.1:{sluice.port}", "--ca", sluice.ca,
                        "--credentials", str(sluice.credentials_file), "--seconds", "1",
                        "--connections", "2", "--shards", "1", "--phases", "firehose",
                        "--firehose-role-arn", ROLE, "--firehose-bucket-arn", f"arn:aws:s3:::{bucket}"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Firehose in" in p.stdout and "to the last byte in S3" in p.stdout, p.stdout
    assert weed.objects(bucket, "sluice-bench/"), "the bench's records are in the bucket"
    names = sluice.client(service="firehose").list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
    assert not [n for n in names if n.startswith("bench-fh-")], "the bench leaves no delivery stream"


def test_dynamic_partitioning_writes_one_object_per_partition(firehose, weed):
    bucket = unique_name("dp").lower().replace("_", "-")
    weed.create_bucket(bucket)
    name = unique_name("ds")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_destination(
            bucket, Prefix="customer=!{partitionKeyFromQuery:customer}/year=!{timestamp:yyyy}/",
            ErrorOutputPrefix="failed/",
            BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 1},
            DynamicPartitioningConfiguration={"Enabled": True},
            ProcessingConfiguration={"Enabled": True, "Processors": [
                {"Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .customer.id}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
                {"Type": "AppendDelimiterToRecord"}]}))
    records = [{"customer": {"id": c}, "n": i} for i in range(30) for c in ("acme", "globex")]
    out = firehose.put_record_batch(DeliveryStreamName=name, Records=[
        {"Data": json.dumps(r).encode()} for r in records] + [{"Data": b"not json"}])
    assert out["FailedPutCount"] == 0
    year = time.strftime("%Y", time.gmtime())

    def delivered():
        objects = weed.objects(bucket)
        got = {k: v for k, v in objects.items() if k.startswith("customer=")}
        n = sum(len(v.splitlines()) for v in got.values())
        failed = [k for k in objects if k.startswith("failed/")]
        return (got, failed) if n >= len(records) and failed else None

    got, failed = wait_for(delivered, timeout=60, what="both partitions and the failed record")
    prefixes = {k.rsplit("/", 1)[0] for k in got}
    assert prefixes == {f"customer=acme/year={year}", f"customer=globex/year={year}"}, prefixes
    for key, body in got.items():
        customer = key.split("/")[0].split("=")[1]
        lines = [json.loads(line) for line in body.splitlines()]
        assert lines and all(line["customer"]["id"] == customer for line in lines)
    assert failed[0].startswith("failed/processing-failed/"), failed

    with pytest.raises(Exception) as e:
        firehose.create_delivery_stream(
            DeliveryStreamName=unique_name("ds"),
            ExtendedS3DestinationConfiguration=s3_destination(
                bucket, Prefix="plain/", ErrorOutputPrefix="failed/",
                DynamicPartitioningConfiguration={"Enabled": True},
                ProcessingConfiguration={"Enabled": True, "Processors": [
                    {"Type": "MetadataExtraction", "Parameters": [
                        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{c: .c}"}]}]}))
    assert error_code(e.value) == "InvalidArgumentException"


def test_json_records_become_parquet_with_the_described_columns(binary, sluice, firehose, weed):
    import subprocess

    import pyarrow.parquet as pq

    bucket = unique_name("pq").lower().replace("_", "-")
    weed.create_bucket(bucket)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    connect = ["--endpoint", f"127.0.0.1:{sluice.port}", "--ca", sluice.ca,
               "--credentials", str(sluice.credentials_file)]
    columns = ["id:bigint", "name:string", "at:timestamp", "tags:array<string>",
               "score:decimal(10,2)", "inner:struct<n:int>"]
    p = subprocess.run([str(binary), "table", *connect, "put", "analytics", "events",
                        *[a for c in columns for a in ("--column", c)]],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["version"] >= 1
    p = subprocess.run([str(binary), "table", *connect, "list"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    listed = {(t["database"], t["table"]): t for t in json.loads(p.stdout)["tables"]}
    assert [c["type"] for c in listed[("analytics", "events")]["columns"]][3] == "array<string>"
    bad = sluice.admin("PUT", "/admin/v1/tenants/self/tables/analytics/broken",
                       {"columns": [{"name": "a", "type": "array<strin>"}]})
    assert bad.status == 400 and b"strin" in bad.body, bad.body

    conversion = {
        "SchemaConfiguration": {"RoleARN": ROLE, "DatabaseName": "analytics", "TableName": "events",
                                "Region": "us-east-1", "VersionId": "LATEST"},
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
        "Enabled": True,
    }
    name = unique_name("ds")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_destination(
            bucket, Prefix="parquet/", ErrorOutputPrefix="errors/",
            BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 1},
            DataFormatConversionConfiguration=conversion))
    described = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    s3 = described["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert s3["DataFormatConversionConfiguration"]["SchemaConfiguration"]["TableName"] == "events"

    good = [{"ID": i, "Name": f"n{i}", "at": "2024-05-06T07:08:09Z", "tags": ["a", str(i)],
             "score": "1.25", "inner": {"N": i}, "ignored": True} for i in range(200)]
    bad_records = [b"not json", json.dumps({"id": "not a number"}).encode()]
    out = firehose.put_record_batch(DeliveryStreamName=name, Records=[
        {"Data": json.dumps(r).encode()} for r in good] + [{"Data": b} for b in bad_records])
    assert out["FailedPutCount"] == 0

    def delivered():
        objects = weed.objects(bucket)
        parquet = {k: v for k, v in objects.items() if k.startswith("parquet/")}
        rows = sum(pq.read_table(io.BytesIO(v)).num_rows for v in parquet.values())
        errors = {k: v for k, v in objects.items() if k.startswith("errors/")}
        failed = sum(len(v.splitlines()) for v in errors.values())
        return (parquet, errors) if rows >= len(good) and failed >= len(bad_records) else None

    parquet, errors = wait_for(delivered, timeout=90, what="the Parquet objects and the failures")
    assert all(k.endswith(".parquet") for k in parquet), list(parquet)
    table = pq.read_table(io.BytesIO(next(iter(parquet.values()))))
    assert table.schema.names == ["id", "name", "at", "tags", "score", "inner"]
    assert str(table.schema.field("score").type) == "decimal128(10, 2)"
    rows = sorted((r for v in parquet.values() for r in pq.read_table(io.BytesIO(v)).to_pylist()),
                  key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(200))
    first = rows[7]
    assert first["name"] == "n7" and first["tags"] == ["a", "7"] and first["inner"] == {"n": 7}
    assert str(first["score"]) == "1.25"
    assert first["at"] == dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    assert all(k.startswith("errors/format-conversion-failed/") for k in errors), list(errors)
    lines = [json.loads(line) for v in errors.values() for line in v.splitlines()]
    assert sorted(base64.b64decode(line["rawData"]) for line in lines) == sorted(bad_records)
    assert all(line["dataCatalogTable"]["tableName"] == "events" and line["ErrorMessage"]
               for line in lines)
    firehose.delete_delivery_stream(DeliveryStreamName=name)

    # Without BufferingHints, conversion buffers 128 MiB; and what Firehose refuses, Sluice does.
    name = unique_name("ds")
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_destination(bucket, DataFormatConversionConfiguration=conversion))
    s3 = firehose.describe_delivery_stream(DeliveryStreamName=name)[
        "DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert s3["BufferingHints"]["SizeInMBs"] == 128
    firehose.delete_delivery_stream(DeliveryStreamName=name)
    refused = [
        {"CompressionFormat": "GZIP"},
        {"BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}},
        {"DataFormatConversionConfiguration": {
            **conversion, "SchemaConfiguration": {"DatabaseName": "analytics", "TableName": "missing"}}},
        {"DataFormatConversionConfiguration": {
            **conversion, "OutputFormatConfiguration": {"Serializer": {"OrcSerDe": {}}}}},
    ]
    for extra in refused:
        config = s3_destination(bucket, **{"DataFormatConversionConfiguration": conversion, **extra})
        with pytest.raises(Exception) as e:
            firehose.create_delivery_stream(DeliveryStreamName=unique_name("ds"),
                                            ExtendedS3DestinationConfiguration=config)
        assert error_code(e.value) == "InvalidArgumentException", extra


def test_a_kinesis_channel_delivers_a_stream_to_s3(sluice, weed):
    """Kinesis's channels (CreateChannel and the rest) deliver an on-demand stream's
    records, as they are, to a bucket under the output key template."""
    kinesis = sluice.client()
    bucket = unique_name("ch").lower().replace("_", "-")
    weed.create_bucket(bucket)
    stream = unique_name("chsrc")
    kinesis.create_stream(StreamName=stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_for(lambda: kinesis.describe_stream_summary(StreamName=stream)[
        "StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", what="the stream")
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)[
        "StreamDescriptionSummary"]["StreamARN"]
    storage = {"BucketARN": f"arn:aws:s3:::{bucket}", "ExpectedBucketOwner": ACCOUNT_ID,
               "CompressionType": "GZIP"}
    source = [{"StreamARN": stream_arn, "RecordConfiguration": {"RecordFormatType": "JSON"}}]
    name = unique_name("channel")
    made = kinesis.create_channel(
        ChannelName=name, ServiceExecutionRoleARN=ROLE, StreamConfigurationList=source,
        S3DestinationConfiguration={"DataFreshnessInSeconds": 1, "StorageConfiguration": storage},
        Tags={"team": "data"})["ChannelDescription"]
    arn = made["ChannelARN"]
    assert arn.endswith(f":channel/{name}") and made["ChannelStatus"] == "ACTIVE"
    records = [json.dumps({"n": i}).encode() for i in range(50)]
    kinesis.put_records(StreamName=stream, Records=[
        {"Data": r, "PartitionKey": str(i)} for i, r in enumerate(records)])
    prefix = f"kinesis-channel/{name}/{made['ChannelId']}/"

    def delivered():
        got = weed.objects(bucket, prefix)
        lines = records_in(got)
        return (got, lines) if len(lines) >= len(records) else None

    got, lines = wait_for(delivered, timeout=90, what="the channel's objects")
    assert sorted(lines) == sorted(records)
    assert all(k.endswith(".gz") and f"/{name}-{made['ChannelId']}-" in k for k in got), list(got)

    described = kinesis.describe_channel(ChannelARN=arn)["ChannelDescription"]
    assert described["S3DestinationConfiguration"]["StorageConfiguration"] == storage
    assert described["StreamConfigurationList"][0]["StreamARN"] == stream_arn
    listed = kinesis.list_channels(StreamFilter=[{"StreamARN": stream_arn}])["ChannelSummaries"]
    assert [c["ChannelName"] for c in listed] == [name]
    assert listed[0]["ChannelDestinationType"] == "S3"
    updated = kinesis.update_channel(ChannelARN=arn, S3DestinationConfiguration={
        "DataFreshnessInSeconds": 600})["ChannelDescription"]
    assert updated["S3DestinationConfiguration"]["DataFreshnessInSeconds"] == 600
    names = sluice.client(service="firehose").list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
    assert not [n for n in names if "channel" in n], "a channel is not a delivery stream"

    def refused(code, **kw):
        args = dict(ChannelName=unique_name("channel"), ServiceExecutionRoleARN=ROLE,
                    StreamConfigurationList=source,
                    S3DestinationConfiguration={"StorageConfiguration": storage})
        args.update(kw)
        args = {k: v for k, v in args.items() if v is not None}
        with pytest.raises(Exception) as e:
            kinesis.create_channel(**args)
        assert error_code(e.value) == code, (kw, e.value)

    refused("LimitExceededException")  # one channel to S3 per stream
    refused("ResourceInUseException", ChannelName=name)
    refused("InvalidArgumentException", S3DestinationConfiguration={"StorageConfiguration": {
        **storage, "OutputKeyTemplate": "no/variables"}})
    refused("InvalidArgumentException", S3DestinationConfiguration=None,
            S3TablesDestinationConfiguration={
                "DeadLetterQueueS3Configuration": {"BucketARN": f"arn:aws:s3:::{bucket}",
                                                   "ExpectedBucketOwner": ACCOUNT_ID},
                "S3TablesConfigurationList": [{
                    "TableBucketARN": f"arn:aws:s3tables:us-east-1:{ACCOUNT_ID}:bucket/tables",
                    "Namespace": "ns", "TableName": "t", "CompressionType": "NONE"}]})
    provisioned = unique_name("chprov")
    kinesis.create_stream(StreamName=provisioned, ShardCount=1)
    prov_arn = kinesis.describe_stream_summary(StreamName=provisioned)[
        "StreamDescriptionSummary"]["StreamARN"]
    refused("InvalidArgumentException", StreamConfigurationList=[
        {"StreamARN": prov_arn, "RecordConfiguration": {"RecordFormatType": "JSON"}}])

    kinesis.delete_channel(ChannelARN=arn)
    with pytest.raises(Exception) as e:
        kinesis.describe_channel(ChannelARN=arn)
    assert error_code(e.value) == "ResourceNotFoundException"
