"""A client for Sluice on boto3.

- ``Sluice``: the endpoint, boto3's credentials, and signed calls to the
  consumer-group API.
- ``ConsumerGroup``: ``for record in group:`` reads a stream as a member of a
  server-side consumer group (leases, rebalancing, fencing and checkpoints are the
  server's); KPL aggregates come out as their user records; each batch is
  checkpointed once the loop asks for the record after it, or ``group.checkpoint(r)``.
- ``Producer``: ``put(records)`` with PutRecords' limits, optional KPL aggregation,
  idempotency keys and retries with backoff and jitter.
"""

from .client import Sluice, SluiceError
from .group import ConsumerGroup, Record
from .producer import Producer, Stored

__all__ = ["Sluice", "SluiceError", "ConsumerGroup", "Record", "Producer", "Stored"]
