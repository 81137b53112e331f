"""The client libraries (clients/rust, clients/python) against the real server: each
README's example is its example file, and runs as written; the Python package installs
with pip from the repository; its KPL format agrees with the public aws_kinesis_agg
package both ways; its producer's retried calls are stored once."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest


ROOT = Path(__file__).resolve().parents[2]


def readme_block(path: Path, language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)
    assert blocks, f"{path} has no {language} block"
    return blocks[-1]


def example_env(server, stream: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
    env.update({
        "SLUICE_ENDPOINT": f"127.0.0.1:{server.port}",
        "SLUICE_ENDPOINT_URL": f"https://127.0.0.1:{server.port}",
        "SLUICE_CA": server.ca,
        "SLUICE_STREAM": stream,
        "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_file),
    })
    return env


@pytest.fixture(scope="module")
def python_package(tmp_path_factory) -> Path:
    """clients/python installed by pip into a directory of its own (built from a copy,
    so the build leaves nothing in the checkout)."""
    target = tmp_path_factory.mktemp("sluice-client")
    source = tmp_path_factory.mktemp("sluice-client-source") / "python"
    shutil.copytree(ROOT / "clients" / "python", source)
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--disable-pip-version-check", "--target", str(target),
                        str(source)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (target / "sluice_client" / "group.py").exists()
    return target


def test_the_rust_example_runs_as_the_readme_shows_it(server, new_stream):
    example = ROOT / "clients" / "rust" / "examples" / "quickstart.rs"
    assert readme_block(ROOT / "clients" / "rust" / "README.md", "rust") == example.read_text()
    binary = ROOT / "target" / "debug" / "examples" / "quickstart"
    assert binary.exists(), "cargo test --workspace builds the examples"
    stream = new_stream(shards=2)
    p = subprocess.run([str(binary)], env=example_env(server, stream), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "stored 100 records" in p.stdout and "read 100 records" in p.stdout, p.stdout


def test_the_python_example_runs_as_the_readme_shows_it(server, new_stream, python_package):
    example = ROOT / "clients" / "python" / "examples" / "quickstart.py"
    assert readme_block(ROOT / "clients" / "python" / "README.md", "python") == example.read_text()
    stream = new_stream(shards=2)
    env = example_env(server, stream)
    env["PYTHONPATH"] = str(python_package)
    p = subprocess.run([sys.executable, str(example)], env=env, capture_output=True, text=True,
                       timeout=120, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr
    assert "stored 100 records" in p.stdout and "read 100 records" in p.stdout, p.stdout


def load(python_package):
    if str(python_package) not in sys.path:
        sys.path.insert(0, str(python_package))
    import sluice_client
    from sluice_client import kpl
    return sluice_client, kpl


def test_the_python_kpl_format_agrees_with_aws_kinesis_agg(python_package):
    from aws_kinesis_agg.aggregator import RecordAggregator
    from aws_kinesis_agg.deaggregator import deaggregate_records
    _, kpl = load(python_package)
    users = [("a", b"one"), ("b", b""), ("a", "three \u00e9".encode())]
    aggregator = RecordAggregator()
    for key, data in users:
        aggregator.add_user_record(key, data)
    _, _, theirs = aggregator.clear_and_get().get_contents()
    assert [(u.partition_key, u.data) for u in kpl.deaggregate(theirs)] == users
    ours = kpl.aggregate(users)
    record = {"kinesis": {"partitionKey": "a", "data": base64.b64encode(ours).decode(),
                          "sequenceNumber": "1", "kinesisSchemaVersion": "1.0",
                          "approximateArrivalTimestamp": 0}}
    back = deaggregate_records([record])
    assert [(r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"]))
            for r in back] == users
    assert all(r["kinesis"].get("aggregated") for r in back), "read as an aggregate, not passed through"
    assert kpl.deaggregate(b"plain") is None
    assert kpl.deaggregate(ours[:-1] + bytes([ours[-1] ^ 1])) is None


def test_the_python_group_and_producer_against_the_server(server, kinesis, new_stream, python_package):
    sluice_client, _ = load(python_package)
    stream = new_stream(shards=2)
    session = boto3.Session(
        aws_access_key_id=server.credentials()[0], aws_secret_access_key=server.credentials()[1])
    sluice = sluice_client.Sluice(f"https://127.0.0.1:{server.port}", verify=server.ca, session=session)
    records = [(f"k{i % 4}", f"r{i}".encode()) for i in range(40)]
    stored = sluice_client.Producer(sluice, stream, aggregate=True).put(records)
    assert [s.sub_sequence_number is not None for s in stored] == [True] * 40
    plain = sluice_client.Producer(sluice, stream).put([("p", b"plain")])
    assert plain[0].sub_sequence_number is None
    with sluice_client.ConsumerGroup(sluice, stream, "py", lease_timeout_seconds=5) as group:
        got = []
        for record in group:
            got.append(record)
            if len(got) == 41:
                break
    assert sorted((r.partition_key, r.data) for r in got) == sorted(records + [("p", b"plain")])
    # A checkpoint inside an aggregate: the group's next member starts after that record.
    with sluice_client.ConsumerGroup(sluice, stream, "inside") as group:
        batch = group.next_batch()
        while not any(r.sub_sequence_number == 3 for r in batch[2]):
            batch = group.next_batch()
        inside = next(r for r in batch[2] if r.sub_sequence_number == 3)
        group.checkpoint(inside)
    described = sluice.groups("DescribeConsumerGroup", {"StreamName": stream, "GroupName": "inside"})
    shard = next(s for s in described["ConsumerGroup"]["Shards"] if s["ShardId"] == inside.shard_id)
    assert shard["Checkpoint"] == {"SequenceNumber": inside.sequence_number, "SubSequenceNumber": 3}
    with sluice_client.ConsumerGroup(sluice, stream, "inside") as again:
        batch = again.next_batch()
        while batch[0] != inside.shard_id:
            batch = again.next_batch()
        first = batch[2][0]
        assert (first.sequence_number, first.sub_sequence_number) == (inside.sequence_number, 4)
