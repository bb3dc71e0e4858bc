"""A durable order workflow: a step, a 30-second cool-off wait, and a human approval callback.

Run it:
    duragent run examples/order_workflow.py:order --input '{"order_id": "A-1", "amount": 42}'
    duragent list --pending                      # shows the approval's callback id
    duragent callback succeed <CALLBACK_ID> --result '{"approved": true}'
    duragent worker --until-idle                 # after the wait is over: finishes the order
"""

from __future__ import annotations

from duragent.durable import CallbackConfig, DurableContext, Duration, durable_function, step_context


def charge_card(order_id: str, amount: float) -> dict:
    ctx = step_context()
    ctx.logger.info("charging %s for order %s (attempt %d)", amount, order_id, ctx.attempt)
    return {"order_id": order_id, "charged": amount, "receipt": f"rcpt-{order_id}"}


def ship(order_id: str) -> str:
    return f"shipment-{order_id}"


@durable_function
def order(event: dict, ctx: DurableContext) -> dict:
    charge = ctx.step(charge_card, event["order_id"], event["amount"], name="charge")
    ctx.wait(Duration.from_seconds(30), name="cool-off")

    def ask_reviewer(callback_id: str) -> dict:
        print(f"approval needed: duragent callback succeed {callback_id} --result '{{\"approved\": true}}'")
        return {"order_id": event["order_id"], "amount": event["amount"]}

    decision = ctx.wait_for_callback(ask_reviewer, name="review",
                                     config=CallbackConfig(timeout=Duration.from_hours(24)))
    if not decision.get("approved"):
        return {"charge": charge, "status": "rejected"}
    shipment = ctx.step(ship, event["order_id"], name="ship")
    return {"charge": charge, "shipment": shipment, "status": "shipped"}
