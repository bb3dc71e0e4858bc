"""The operator API: list, read, answer and stop durable executions from outside, with one
interface over a local store (``LocalOperator``) and over AWS Lambda (``AwsOperator``). The
``duragent`` command, its ``--aws`` mode and the web console are thin shells over it::

    from duragent.ops import LocalOperator

    with LocalOperator.open(".duragent/duragent.db") as ops:
        page = ops.pending(limit=50)                      # what waits for a person, with a total
        for item in page.items:
            if item.kind == "tool_approval":
                ops.approve(item.callback_id, edits={"amount": 10})   # checked against the tool's schema
"""

from .aws import AwsOperator, RemoteError
from .base import Operator
from .journal import CostSplit, Invocation, cost_split, invocations
from .local import LocalOperator, StoreMissingError, store_path
from .types import Answered, Execution, ExecutionSummary, Page, PendingCallback
from .values import InputError

__all__ = ["Answered", "AwsOperator", "CostSplit", "Execution", "ExecutionSummary", "InputError", "Invocation",
           "LocalOperator", "Operator", "Page", "PendingCallback", "RemoteError", "StoreMissingError",
           "cost_split", "invocations", "store_path"]
