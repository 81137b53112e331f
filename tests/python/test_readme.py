"""The README's commands, run as a new user would: every ```sh block in order, in one
shell, beside a fresh `sluice serve` whose data directory is ./sluice-data (only the
port differs: 4567 may be taken here), with the AWS CLI the suite installs and the
`sluice` binary under test on PATH; then its Python example."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO_ROOT, SluiceServer

README = REPO_ROOT / "README.md"
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```", re.S | re.M)


def blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README.read_text()) if lang == kind]


@pytest.fixture(scope="module")
def fresh(binary):
    srv = SluiceServer(binary, name="sluice-readme")
    srv.data_dir = srv.tmp_root / "sluice-data"
    srv.start()
    yield srv
    srv.close()


def as_written(text: str, server) -> str:
    return text.replace("127.0.0.1:4567", f"127.0.0.1:{server.port}")


def test_the_readme_commands_run_as_written(fresh, binary):
    script = "set -euo pipefail\n" + "\n".join(as_written(b, fresh) for b in blocks("sh"))
    assert "kinesis put-record" in script and "sluice get" in script, "the README lost its examples"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([str(Path(binary).parent), venv_bin, env.get("PATH", "")])
    env["SLUICE_ENDPOINT"] = f"127.0.0.1:{fresh.port}"
    p = subprocess.run(["bash", "-c", script], cwd=fresh.tmp_root, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    # put-record stored "hello" (not its base64 text), whatever the CLI's version.
    client = fresh.client()
    shards = client.list_shards(StreamName="orders")["Shards"]
    stored = []
    for shard in shards:
        it = client.get_shard_iterator(StreamName="orders", ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        stored += [r["Data"] for r in client.get_records(ShardIterator=it)["Records"]]
    assert b"hello" in stored, stored
    # `sluice get --decrypt` printed the encrypted record opened and the plain one as is.
    import json
    printed = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{\"ShardId\"")]
    opened = {base64.b64decode(r["Data"]): r["Decrypted"] for r in printed if "Decrypted" in r}
    assert opened.get(b"card 4111 1111 1111 1111") is True, printed
    assert opened.get(b"hello") is False, printed


def test_the_readme_python_example_runs(fresh):
    (example,) = blocks("python")
    env_before = dict(os.environ)
    cwd = os.getcwd()
    try:
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(fresh.tmp_root / "sluice-data" / "credentials")
        os.chdir(fresh.tmp_root)
        scope: dict = {}
        exec(compile(as_written(example, fresh), "README.md", "exec"), scope)
        assert "StreamNames" in scope["kinesis"].list_streams()
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env_before)
