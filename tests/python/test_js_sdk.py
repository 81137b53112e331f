"""The JavaScript SDK v3 (@aws-sdk/client-kinesis) against the real binary.

The SDK talks HTTP/2 when the server offers it (Sluice's TLS offers h2 and http/1.1) and
signs the :authority pseudo-header as `host`. Each handler runs tests/node/kinesis-sdk.mjs
end to end: create, put, list shards, get records, register a consumer and SubscribeToShard
(an event stream, over HTTP/2 where the handler speaks it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import unique_name

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


def _node() -> str:
    node = shutil.which("node")
    installed = (NODE_DIR / "node_modules" / "@aws-sdk" / "client-kinesis").is_dir()
    if node and installed:
        return node
    why = "node is not installed" if not node else f"{NODE_DIR}/node_modules is missing (npm ci)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"the JS SDK tests cannot run: {why}", pytrace=False)
    pytest.skip(why)


def run_sdk(server, handler: str) -> dict[str, dict]:
    key, secret = server.credentials()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "SLUICE_ENDPOINT": server.endpoint,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "NODE_EXTRA_CA_CERTS": server.ca,
        "STREAM": unique_name("js"),
        "HANDLER": handler,
        # Node 20 is older than the SDK's supported floor; the warning is noise here.
        "AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE": "1",
        "NODE_NO_WARNINGS": "1",
    }
    r = subprocess.run([_node(), str(NODE_DIR / "kinesis-sdk.mjs")], cwd=NODE_DIR, env=env,
                       capture_output=True, text=True, timeout=120)
    steps: dict[str, dict] = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            steps[record.pop("step")] = record
    assert r.returncode == 0, f"handler {handler}: {steps.get('error')}\n{r.stdout}\n{r.stderr[-3000:]}"
    return steps


@pytest.mark.parametrize("handler", ["default", "http2", "http1"])
def test_js_sdk_end_to_end(server, handler):
    steps = run_sdk(server, handler)
    assert steps["create"]["arn"].startswith("arn:aws:kinesis:us-east-1:")
    assert steps["put"]["failed"] == 0
    assert steps["put"]["shard"] == "shardId-000000000000"
    assert steps["list-shards"]["shards"] == ["shardId-000000000000"]
    assert steps["get-records"]["data"] == ["first", "record-1", "record-2", "record-3"]
    assert steps["subscribe"]["data"] == ["first", "record-1", "record-2", "record-3"]
    assert "delete" in steps
