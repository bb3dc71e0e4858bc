"""Step results become JSON payloads in history and come back typed by the step's return annotation;
a custom serdes writes its own payload verbatim; what cannot be serialized fails the step at once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pydantic

from duragent.durable import DurableContext, LocalRuntime, StepConfig, StepError


class Order(pydantic.BaseModel):
    id: str
    amount: float
    items: list[str]


@dataclasses.dataclass
class Receipt:
    number: int
    issued: dt.datetime


ISSUED = dt.datetime(2025, 3, 1, 12, 30, tzinfo=dt.UTC)


def make_order(order_id: str) -> Order:
    return Order(id=order_id, amount=12.5, items=["tea", "cake"])


def make_receipt() -> Receipt:
    return Receipt(number=7, issued=ISSUED)


def make_timestamp() -> dt.datetime:
    return ISSUED


def test_typed_results_come_back_as_their_types_on_first_run_and_replay(rt: LocalRuntime, events: Any) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        order = ctx.step(make_order, "o-1", name="order")
        receipt = ctx.step(make_receipt, name="receipt")
        when = ctx.step(make_timestamp, name="when")
        seen.append((order, receipt, when))
        ctx.wait(5)
        return {"order": order, "receipt": receipt, "when": when}

    eid = rt.start(handler)
    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "SUCCEEDED", info.error
    assert len(seen) == 2
    for order, receipt, when in seen:
        assert isinstance(order, Order) and order == make_order("o-1")
        assert isinstance(receipt, Receipt) and receipt == make_receipt()
        assert isinstance(when, dt.datetime) and when == ISSUED
    # the payloads are plain JSON any reader can use
    payload = events(eid, "StepSucceeded", "order")[0]["StepSucceededDetails"]["Result"]["Payload"]
    assert json.loads(payload) == {"id": "o-1", "amount": 12.5, "items": ["tea", "cake"]}
    receipt_payload = events(eid, "StepSucceeded", "receipt")[0]["StepSucceededDetails"]["Result"]["Payload"]
    assert json.loads(receipt_payload) == {"number": 7, "issued": "2025-03-01T12:30:00Z"}
    assert info.result["order"] == {"id": "o-1", "amount": 12.5, "items": ["tea", "cake"]}


def test_an_unannotated_step_returns_plain_json_on_first_run_and_replay(rt: LocalRuntime) -> None:
    seen = []

    def untyped():  # type: ignore[no-untyped-def]
        return make_receipt()

    def handler(event: Any, ctx: DurableContext) -> Any:
        seen.append(ctx.step(untyped, name="untyped"))
        ctx.wait(1)
        return seen[-1]

    info = rt.run(handler)
    assert seen == [{"number": 7, "issued": "2025-03-01T12:30:00Z"}] * 2  # same shape both times
    assert info.result == seen[0]


def test_a_result_that_cannot_be_serialized_fails_the_step_without_retry(rt: LocalRuntime, events: Any) -> None:
    calls = []

    def handle() -> object:
        calls.append(1)
        return object()

    def handler(event: Any, ctx: DurableContext) -> list[Any]:
        try:
            ctx.step(handle, name="handle")  # the default policy would retry an ordinary error
        except StepError as exc:
            return [exc.error_type, exc.message]
        return ["no error"]

    eid = rt.start(handler)
    rt.run_until_idle()
    error_type, message = rt.get(eid).result
    assert error_type == "duragent.SerializationError"
    assert "cannot serialize a value of type object" in message and "serdes" in message
    assert calls == [1]
    [failed] = events(eid, "StepFailed", "handle")
    assert failed["StepFailedDetails"]["RetryDetails"] == {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 0}
    assert failed["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] == "duragent.SerializationError"


def test_a_step_result_over_the_payload_limit_fails_the_step(rt: LocalRuntime) -> None:
    calls = []

    def huge() -> str:
        calls.append(1)
        return "x" * (1024 * 1024 + 1)

    def handler(event: Any, ctx: DurableContext) -> list[Any]:
        try:
            ctx.step(huge)
        except StepError as exc:
            return [exc.error_type, exc.message]
        return ["no error"]

    error_type, message = rt.run(handler).result
    assert error_type == "duragent.PayloadTooLargeError"
    assert "1048576" in message
    assert calls == [1]


class Shouting:
    """A custom serdes: its payload is not JSON at all."""

    def serialize(self, value: str) -> str:
        return f"HELLO {value.upper()}!"

    def deserialize(self, data: str | None) -> str:
        assert data is not None and data.startswith("HELLO ")
        return data[len("HELLO "):-1].lower()


def test_a_custom_serdes_writes_its_payload_verbatim(rt: LocalRuntime, events: Any) -> None:
    seen = []

    def handler(event: Any, ctx: DurableContext) -> str:
        value = ctx.step(lambda: "world", name="greet", config=StepConfig(serdes=Shouting()))
        seen.append(value)
        ctx.wait(1)
        return value

    eid = rt.start(handler)
    rt.run_until_idle()
    [ok] = events(eid, "StepSucceeded", "greet")
    assert ok["StepSucceededDetails"]["Result"]["Payload"] == "HELLO WORLD!"
    assert seen == ["world", "world"]
    assert rt.get(eid).result == "world"


def test_a_non_json_execution_result_fails_the_execution(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        return {"handle": object()}

    info = rt.run(handler)
    assert info.status == "FAILED"
    assert info.error is not None and info.error["ErrorType"] == "duragent.SerializationError"
