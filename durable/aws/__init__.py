"""AWS Lambda durable functions backend: ``handler = lambda_handler(fn)`` is the Lambda entry
point; checkpoints go through boto3's ``lambda`` client (endpoint from the standard
``AWS_ENDPOINT_URL_LAMBDA``); step results over 1 MiB go to S3 (``DURAGENT_S3_BUCKET``)."""

from .client import LambdaCheckpointClient, RetryableCheckpointError
from .handler import lambda_handler
from .offload import S3PayloadStore

__all__ = ["LambdaCheckpointClient", "RetryableCheckpointError", "S3PayloadStore", "lambda_handler"]
