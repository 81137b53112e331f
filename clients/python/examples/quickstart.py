"""Puts 100 records (aggregated, with idempotency keys) and reads them back as a member
of a consumer group. Credentials are boto3's (AWS_SHARED_CREDENTIALS_FILE, ...)."""
import os

from sluice_client import ConsumerGroup, Producer, Sluice

sluice = Sluice(os.environ.get("SLUICE_ENDPOINT_URL", "https://127.0.0.1:4567"),
                verify=os.environ.get("SLUICE_CA", "./sluice-data/tls/ca.pem"))
stream = os.environ.get("SLUICE_STREAM", "orders")

stored = Producer(sluice, stream, aggregate=True).put(
    [(f"customer-{i % 10}", f"order {i}".encode()) for i in range(100)])
print(f"stored {len(stored)} records, the first at {stored[0].sequence_number}")

with ConsumerGroup(sluice, stream, "python-quickstart") as group:
    for n, record in enumerate(group, start=1):
        if n == 100:
            print(f"read 100 records, the last: {record.data.decode()}")
            break
