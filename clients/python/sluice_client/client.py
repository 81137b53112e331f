"""The endpoint and its signed calls: boto3 for Kinesis, SigV4 by botocore for the
consumer-group API (service name ``kinesis``, JSON 1.1)."""

from __future__ import annotations

import json

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import HTTPClientError
from botocore.httpsession import URLLib3Session

GROUPS_TARGET_PREFIX = "SluiceConsumerGroups_20261205."


class SluiceError(Exception):
    """An AWS error answer: ``kind`` is its type (``LeaseLostException``, ...)."""

    def __init__(self, kind: str, message: str, status: int):
        super().__init__(f"{kind}: {message}")
        self.kind, self.message, self.status = kind, message, status

    @property
    def retryable(self) -> bool:
        """The server was away or busy: worth trying again after a pause."""
        return self.status == 0 or self.status >= 500 or self.kind in (
            "ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException")


class Sluice:
    """One Sluice endpoint, with the credentials boto3 finds (or ``session``'s)."""

    def __init__(self, endpoint_url: str, verify: str | bool | None = None,
                 region_name: str = "us-east-1", session: boto3.Session | None = None):
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region_name = region_name
        self.session = session or boto3.Session()
        self.verify = verify
        self.kinesis = self.session.client("kinesis", endpoint_url=self.endpoint_url,
                                           region_name=region_name, verify=verify)
        self._http = URLLib3Session(verify=True if verify is None else verify)

    def groups(self, operation: str, payload: dict) -> dict:
        """One consumer-group operation; raises ``SluiceError`` with the AWS error."""
        body = json.dumps(payload).encode()
        request = AWSRequest(method="POST", url=self.endpoint_url + "/", data=body, headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": GROUPS_TARGET_PREFIX + operation,
        })
        credentials = self.session.get_credentials()
        if credentials is None:
            raise SluiceError("MissingAuthenticationToken", "boto3 found no credentials", 0)
        SigV4Auth(credentials.get_frozen_credentials(), "kinesis", self.region_name).add_auth(request)
        try:
            response = self._http.send(request.prepare())
        except (HTTPClientError, OSError) as e:
            raise SluiceError("ConnectionError", str(e), 0) from e
        answer = json.loads(response.content) if response.content else {}
        if response.status_code >= 300:
            kind = str(answer.get("__type", "Error")).split("#")[-1]
            raise SluiceError(kind, answer.get("message", ""), response.status_code)
        return answer
