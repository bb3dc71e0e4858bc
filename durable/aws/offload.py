"""Step results over AWS's payload limit, kept in S3.

A checkpoint payload is limited to 1 MiB (STEP, CONTEXT, CALLBACK...). A larger step result (a
long model response, a big document) is written to ``s3://BUCKET/PREFIX<execution>/<op>/<sha256>``
and the checkpoint stores a small pointer instead::

    {"__duragent_offload__": "s3://bucket/duragent/<execution>/<op>/<sha256>", "sha256": "...", "bytes": 1234567}

Replay reads the object back and checks its digest. The key is content-addressed, so a retried
upload writes the same object. Without a bucket the step fails with an error that says how to
configure one, before its result could be lost. The bucket comes from ``DURAGENT_S3_BUCKET`` or
``lambda_handler(fn, offload_bucket=...)``; the S3 client from boto3's standard configuration
(``AWS_ENDPOINT_URL_S3`` for a local S3-compatible server).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

from ..errors import PayloadTooLargeError, SerializationError
from ..model import MAX_ASYNC_PAYLOAD_BYTES
from ..serdes import OFFLOAD_MARKER, is_offload_pointer
from .client import RetryableCheckpointError

BUCKET_ENV = "DURAGENT_S3_BUCKET"
PREFIX_ENV = "DURAGENT_S3_PREFIX"
DEFAULT_PREFIX = "duragent/"


class S3PayloadStore:
    """``PayloadStore`` on S3. ``bucket=None`` still reads pointers back but refuses to offload."""

    def __init__(self, bucket: str | None = None, *, prefix: str = DEFAULT_PREFIX, s3_client: Any = None) -> None:
        self.bucket = bucket or None
        self.prefix = prefix
        self._s3 = s3_client

    @classmethod
    def from_env(cls, bucket: str | None = None, *, s3_client: Any = None) -> S3PayloadStore:
        """The store for ``bucket``, else ``$DURAGENT_S3_BUCKET`` (prefix ``$DURAGENT_S3_PREFIX``)."""
        return cls(bucket or os.environ.get(BUCKET_ENV), prefix=os.environ.get(PREFIX_ENV, DEFAULT_PREFIX),
                   s3_client=s3_client)

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3")
        return self._s3

    def offload(self, payload: str, *, execution_arn: str, operation_id: str) -> str:
        data = payload.encode()
        if self.bucket is None:
            raise PayloadTooLargeError(
                f"operation {operation_id} produced {len(data)} bytes, over the {MAX_ASYNC_PAYLOAD_BYTES}-byte "
                f"checkpoint limit of AWS Lambda durable functions. Set {BUCKET_ENV} (or "
                "lambda_handler(fn, offload_bucket=...)) to an S3 bucket the function can write, and large "
                "results are kept there with a pointer in the checkpoint; or return a reference instead "
                "of the data")
        digest = hashlib.sha256(data).hexdigest()
        execution = re.sub(r"[^A-Za-z0-9_.-]", "_", execution_arn.rsplit("/", 1)[-1])[:128]
        key = f"{self.prefix}{execution}/{operation_id}/{digest}"
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json")
        except Exception as exc:  # the result is still in memory: let Lambda retry the invocation
            raise RetryableCheckpointError(f"could not offload {len(data)} bytes to s3://{self.bucket}/{key}: "
                                           f"{exc}") from exc
        return json.dumps({OFFLOAD_MARKER: f"s3://{self.bucket}/{key}", "sha256": digest, "bytes": len(data)},
                          separators=(",", ":"))

    def load(self, pointer: str) -> str:
        try:
            ref = json.loads(pointer)
            url = str(ref[OFFLOAD_MARKER])
            bucket, _, key = url.removeprefix("s3://").partition("/")
        except (ValueError, KeyError, TypeError) as exc:
            raise SerializationError(f"bad offload pointer {pointer[:200]!r}: {exc}") from None
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("NoSuchKey", "NoSuchBucket", "AccessDenied"):
                raise SerializationError(f"offloaded payload {url} cannot be read back ({code})") from exc
            raise RetryableCheckpointError(f"could not read offloaded payload {url}: {exc}") from exc
        if ref.get("sha256") and hashlib.sha256(body).hexdigest() != ref["sha256"]:
            raise SerializationError(f"offloaded payload {url} does not match its checkpointed sha256")
        return body.decode()  # type: ignore[no-any-return]


__all__ = ["BUCKET_ENV", "S3PayloadStore", "is_offload_pointer"]
