"""`sluice bench` against a server with Kinesis's per-shard limits on: it finishes,
says the limits were what it measured and how to lift them, and leaves no stream."""

from __future__ import annotations

import os
import subprocess

from harness import SluiceServer


def test_bench_under_the_shard_limits_finishes_and_cleans_up(binary):
    limits = {f"SLUICE_SHARD_{k}_PER_SECOND": v for k, v in
              (("WRITE_BYTES", "1048576"), ("WRITE_RECORDS", "1000"), ("READ_BYTES", "2097152"),
               ("READ_CALLS", "5"))}
    srv = SluiceServer(binary, name="sluice-bench", extra_env=limits).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        p = subprocess.run([str(binary), "bench", "--endpoint", f"127.0.0.1:{srv.port}", "--ca", srv.ca,
                            "--credentials", str(srv.credentials_file), "--seconds", "2", "--shards", "1",
                            "--connections", "4", "--record-bytes", "1024"],
                           env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "GetRecords" in p.stdout and "PutRecords" in p.stdout
        assert "--shard-write-bytes-per-second 0" in p.stdout, p.stdout
        assert not [s for s in srv.client().list_streams()["StreamNames"] if s.startswith("bench-")]
    finally:
        srv.close()
