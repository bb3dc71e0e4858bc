"""A support agent on AWS Lambda durable functions: it looks orders up on its own, and a refund
waits for a human's approval. Waiting costs nothing: the function returns PENDING and Lambda
invokes it again when the reviewer answers (``duragent approve --aws CALLBACK_ID``).

The model is Amazon Bedrock (``bedrock:MODEL_ID``, the function's role needs
``bedrock:InvokeModel``), so no API key is stored anywhere. ``template.yaml`` beside this file
deploys it; README.md has the steps.
"""

from __future__ import annotations

import os
from typing import Any

from duragent.agents import Agent
from duragent.durable import DurableContext
from duragent.durable.aws import lambda_handler
from duragent.tools import tool

DEFAULT_MODEL = "bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0"

ORDERS = {  # stands in for the shop's database
    "A-1001": {"order_id": "A-1001", "customer": "Ada", "total": 42.50, "status": "delivered damaged"},
    "A-1002": {"order_id": "A-1002", "customer": "Grace", "total": 18.00, "status": "in transit"},
}


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look an order up by its id.

    Args:
        order_id: the order id, e.g. "A-1001".
    """
    order = ORDERS.get(order_id)
    if order is None:
        raise ValueError(f"no order {order_id}")
    return order


@tool(requires_approval=True, at_most_once=True)
def issue_refund(order_id: str, amount: float, reason: str) -> dict[str, Any]:
    """Refund (part of) an order to the customer. A person approves every refund first.

    Args:
        order_id: the order to refund.
        amount: how much, in the order's currency.
        reason: one sentence the customer will read.
    """
    return {"order_id": order_id, "refunded": amount, "reason": reason, "status": "refunded"}


agent = Agent(
    model=os.environ.get("DURAGENT_MODEL", DEFAULT_MODEL),
    tools=[lookup_order, issue_refund],
    system="You are a support agent for a small shop. Look orders up before acting. Offer a refund "
           "only for damaged or lost goods, and say what you did in one short paragraph.",
    name="support",
)


def support(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    """The durable function: ``{"message": "..."}`` in, the agent's reply out."""
    result = agent.run(ctx, event["message"])
    return {"reply": result.output, "turns": result.turns, "usage": result.usage.model_dump()}


handler = lambda_handler(support)
"""The Lambda entry point (template.yaml: ``Handler: handler.handler``)."""
