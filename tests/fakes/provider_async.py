"""The providers' asynchronous APIs, played by the fake provider server (shapes from the providers'
documentation and their SDKs' types; the real SDKs drive these routes over HTTP):

    Anthropic Message Batches
        POST /v1/messages/batches                 create (in_progress)
        GET  /v1/messages/batches[/{id}]          list / retrieve (in_progress -> ended)
        GET  /v1/messages/batches/{id}/results    the results, JSONL (one line per request)
        POST /v1/messages/batches/{id}/cancel     canceling -> ended, unprocessed items canceled
    OpenAI Files and Batch
        POST /v1/files                            upload (multipart, purpose "batch")
        GET  /v1/files/{id}[/content]             metadata / the bytes
        POST /v1/batches                          create (validating)
        GET  /v1/batches[/{id}]                   list / retrieve (validating -> in_progress -> completed
                                                  or expired), output and error files at the end
        POST /v1/batches/{id}/cancel              cancelling -> cancelled
    OpenAI Responses
        POST /v1/responses                        create; with "background": true it returns at once
                                                  (queued) and keeps the answer under its id
        GET  /v1/responses/{id}[?stream=true&starting_after=N]
                                                  retrieve (queued -> in_progress -> completed), or
                                                  stream its events after sequence number N
        POST /v1/responses/{id}/cancel            cancel a background response still running

Batches end after ``batch_polls`` status reads; background responses complete after
``response_polls`` reads, never while the server is holding model requests. Items come from the
script or the responder when the batch is processed; a succeeded item is billed once, at the batch rate; errored, expired and
canceled items are not billed.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .provider_server import (
    ANTHROPIC_ERROR_TYPES,
    Expired,
    FakeError,
    FakeToolCall,
    Item,
    Malformed,
    RecordedRequest,
    Reply,
    anthropic_message,
    call_arguments_json,
    call_id,
    openai_completion,
    openai_error_body,
    sse,
)

if TYPE_CHECKING:
    from .provider_server import ProviderServer, _Handler


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


# -- state ------------------------------------------------------------------------------------------
@dataclass
class FakeBatch:
    id: str
    provider: str
    requests: list[dict[str, Any]]
    """Each: custom_id, and params (Anthropic) or body (OpenAI)."""
    created_at: float
    endpoint: str = "/v1/messages"
    metadata: dict[str, Any] | None = None
    input_file_id: str | None = None
    polls: int = 0
    ended_at: float | None = None
    cancel_initiated_at: float | None = None
    outcomes: dict[str, Any] = field(default_factory=dict)
    """custom_id -> ("succeeded", body) | ("errored", FakeError) | ("expired", None) | ("canceled", None)."""
    output_file_id: str | None = None
    error_file_id: str | None = None
    opened: bool = False
    """OpenAI: left ``validating`` (first status read)."""


@dataclass
class FakeFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: float


@dataclass
class FakeResponse:
    id: str
    model: str
    body: dict[str, Any]
    item: Item
    created_at: float
    background: bool
    status: str = "queued"
    polls: int = 0
    done: threading.Event = field(default_factory=threading.Event)


# -- dispatch ---------------------------------------------------------------------------------------
def handle(handler: _Handler, recorded: RecordedRequest, query: str, raw: bytes, content_type: str) -> bool:
    """Serve one request of the asynchronous APIs; False when no route matches."""
    fake = handler.fake
    method, path = recorded.method, recorded.path
    parts = [p for p in path.split("/") if p]
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    body = recorded.body if isinstance(recorded.body, dict) else {}
    if parts[:3] == ["v1", "messages", "batches"]:
        endpoint = _endpoint(method, parts, 3, "/v1/messages/batches")
        fake.record(recorded, endpoint)
        return _anthropic_batches(handler, fake, method, parts[3:], body)
    if parts[:2] == ["v1", "files"]:
        fake.record(recorded, _endpoint(method, parts, 2, "/v1/files"))
        return _files(handler, fake, method, parts[2:], raw, content_type)
    if parts[:2] == ["v1", "batches"]:
        fake.record(recorded, _endpoint(method, parts, 2, "/v1/batches"))
        return _openai_batches(handler, fake, method, parts[2:], body)
    if parts[:2] == ["v1", "responses"]:
        if method == "POST" and len(parts) == 2:
            item, index = fake._next(recorded, "POST /v1/responses")
            return _create_response(handler, fake, body, item, index)
        fake.record(recorded, _endpoint(method, parts, 2, "/v1/responses"))
        return _responses(handler, fake, method, parts[2:], params)
    return False


def _endpoint(method: str, parts: list[str], depth: int, base: str) -> str:
    """``GET /v1/batches/{id}``-style names for the per-endpoint counts."""
    rest = parts[depth:]
    tail = "".join("/{id}" if i == 0 else f"/{p}" for i, p in enumerate(rest))
    return f"{method} {base}{tail}"


def _not_found(handler: _Handler, what: str) -> bool:
    handler._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"{what} not found"}})
    return True


# -- Anthropic Message Batches ------------------------------------------------------------------------
def _anthropic_batches(handler: _Handler, fake: ProviderServer, method: str, rest: list[str],
                       body: dict[str, Any]) -> bool:
    if method == "POST" and not rest:
        requests = body.get("requests") or []
        ids = [r.get("custom_id") for r in requests]
        if not requests or len(set(ids)) != len(ids):
            handler._send_json(400, {"type": "error", "error": {
                "type": "invalid_request_error", "message": "requests: custom_id values must be unique"}})
            return True
        batch = FakeBatch(id=fake.new_id("msgbatch_"), provider="anthropic", requests=requests,
                          created_at=time.time())
        with fake._lock:
            fake.batches[batch.id] = batch
        fake.wait_if_holding()  # created: a caller killed now never learns the id
        handler._send_json(200, _anthropic_batch_json(fake, batch))
        return True
    if method == "GET" and not rest:
        with fake._lock:
            mine = sorted((b for b in fake.batches.values() if b.provider == "anthropic"),
                          key=lambda b: b.created_at, reverse=True)
        data = [_anthropic_batch_json(fake, b) for b in mine]
        handler._send_json(200, {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                 "last_id": data[-1]["id"] if data else None})
        return True
    batch = fake.batches.get(rest[0]) if rest else None
    if batch is None or batch.provider != "anthropic":
        return _not_found(handler, "message batch")
    if method == "GET" and len(rest) == 1:
        _advance(fake, batch)
        handler._send_json(200, _anthropic_batch_json(fake, batch))
        return True
    if method == "GET" and rest[1:] == ["results"]:
        if batch.ended_at is None:
            handler._send_json(400, {"type": "error", "error": {
                "type": "invalid_request_error", "message": "results are available once the batch has ended"}})
            return True
        lines = [json.dumps({"custom_id": r["custom_id"], "result": _anthropic_result(batch, r)})
                 for r in reversed(batch.requests)]  # results come in no particular order
        handler._send_raw(200, ("\n".join(lines) + "\n").encode(), "application/binary")
        return True
    if method == "POST" and rest[1:] == ["cancel"]:
        if batch.ended_at is None:
            batch.cancel_initiated_at = time.time()
            _process(fake, batch, cancel=True)
        handler._send_json(200, _anthropic_batch_json(fake, batch))
        return True
    return False


def _anthropic_batch_json(fake: ProviderServer, batch: FakeBatch) -> dict[str, Any]:
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if batch.ended_at is None:
        counts["processing"] = len(batch.requests)
    else:
        for kind, _ in batch.outcomes.values():
            counts[kind] += 1
    status = "ended" if batch.ended_at is not None else "canceling" if batch.cancel_initiated_at else "in_progress"
    return {"id": batch.id, "type": "message_batch", "processing_status": status, "request_counts": counts,
            "created_at": _iso(batch.created_at), "expires_at": _iso(batch.created_at + 86400),
            "ended_at": _iso(batch.ended_at), "cancel_initiated_at": _iso(batch.cancel_initiated_at),
            "archived_at": None,
            "results_url": f"{fake.url}/v1/messages/batches/{batch.id}/results" if batch.ended_at else None}


def _anthropic_result(batch: FakeBatch, request: dict[str, Any]) -> dict[str, Any]:
    kind, value = batch.outcomes[request["custom_id"]]
    if kind == "succeeded":
        return {"type": "succeeded", "message": value}
    if kind == "errored":
        error_type = value.code or ANTHROPIC_ERROR_TYPES.get(value.status, "api_error")
        return {"type": "errored", "error": {"type": "error", "error": {"type": error_type, "message": value.text()}}}
    return {"type": kind}


# -- processing (both providers) ------------------------------------------------------------------------
def _advance(fake: ProviderServer, batch: FakeBatch) -> None:
    """One status read: a batch ends after ``batch_polls`` of them."""
    with fake._lock:
        batch.opened = True
        if batch.ended_at is not None:
            return
        batch.polls += 1
        if batch.polls < fake.batch_polls:
            return
    _process(fake, batch)


def _process(fake: ProviderServer, batch: FakeBatch, *, cancel: bool = False) -> None:
    with fake._lock:
        if batch.ended_at is not None:
            return
        for request in batch.requests:
            custom_id = request["custom_id"]
            if cancel:
                batch.outcomes[custom_id] = ("canceled", None)
                continue
            params = request.get("params") or request.get("body") or {}
            recorded = RecordedRequest(method="POST", path=f"batch:{batch.id}", headers={}, auth_headers=[],
                                       body={"custom_id": custom_id, **params})
            item = fake.next_item(recorded)
            model = str(params.get("model", "fake"))
            if isinstance(item, Reply):
                answer = anthropic_message(item, model) if batch.provider == "anthropic" else \
                    openai_completion(item, model)
                batch.outcomes[custom_id] = ("succeeded", answer)
                fake.bill(f"batch {batch.endpoint}", model, item.usage, batch=True, custom_id=custom_id)
            elif isinstance(item, Expired):
                batch.outcomes[custom_id] = ("expired", None)
            elif isinstance(item, FakeError):
                batch.outcomes[custom_id] = ("errored", item)
            else:  # Malformed: the provider failed on it
                batch.outcomes[custom_id] = ("errored", FakeError(500, "internal error"))
        batch.ended_at = time.time()
        if batch.provider == "openai":
            _openai_files_for(fake, batch)


# -- OpenAI Files ---------------------------------------------------------------------------------------
def _files(handler: _Handler, fake: ProviderServer, method: str, rest: list[str], raw: bytes,
           content_type: str) -> bool:
    if method == "POST" and not rest:
        fields = _multipart(raw, content_type)
        upload = fields.get("file")
        if upload is None or fields.get("purpose", (None, b""))[1].decode() != "batch":
            handler._send_json(400, openai_error_body(FakeError(400, "a file and purpose 'batch' are required")))
            return True
        file = FakeFile(id=fake.new_id("file-"), filename=upload[0] or "upload.jsonl", purpose="batch",
                        data=upload[1], created_at=time.time())
        with fake._lock:
            fake.files[file.id] = file
        handler._send_json(200, _file_json(file))
        return True
    file = fake.files.get(rest[0]) if rest else None
    if file is None:
        handler._send_json(404, openai_error_body(FakeError(404, "No such File object")))
        return True
    if method == "GET" and len(rest) == 1:
        handler._send_json(200, _file_json(file))
        return True
    if method == "GET" and rest[1:] == ["content"]:
        handler._send_raw(200, file.data, "application/octet-stream")
        return True
    return False


def _file_json(file: FakeFile) -> dict[str, Any]:
    return {"id": file.id, "object": "file", "bytes": len(file.data), "created_at": int(file.created_at),
            "filename": file.filename, "purpose": file.purpose, "status": "processed", "expires_at": None,
            "status_details": None}


def _multipart(raw: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, bytes) of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


# -- OpenAI Batch -------------------------------------------------------------------------------------------
def _openai_batches(handler: _Handler, fake: ProviderServer, method: str, rest: list[str],
                    body: dict[str, Any]) -> bool:
    if method == "POST" and not rest:
        file = fake.files.get(str(body.get("input_file_id")))
        if file is None:
            handler._send_json(400, openai_error_body(FakeError(400, "input_file_id: no such file")))
            return True
        try:
            lines = [json.loads(line) for line in file.data.decode().splitlines() if line.strip()]
        except ValueError:
            handler._send_json(400, openai_error_body(FakeError(400, "the input file is not JSONL")))
            return True
        endpoint = str(body.get("endpoint"))
        if any(line.get("url") != endpoint for line in lines):
            handler._send_json(400, openai_error_body(FakeError(400, "every line's url must be the batch endpoint")))
            return True
        batch = FakeBatch(id=fake.new_id("batch_"), provider="openai", requests=lines, created_at=time.time(),
                          endpoint=endpoint, metadata=body.get("metadata"), input_file_id=file.id)
        with fake._lock:
            fake.batches[batch.id] = batch
        fake.wait_if_holding()  # created: a caller killed now never learns the id
        handler._send_json(200, _openai_batch_json(batch))
        return True
    if method == "GET" and not rest:
        with fake._lock:
            mine = sorted((b for b in fake.batches.values() if b.provider == "openai"),
                          key=lambda b: b.created_at, reverse=True)
        data = [_openai_batch_json(b) for b in mine]
        handler._send_json(200, {"object": "list", "data": data, "has_more": False,
                                 "first_id": data[0]["id"] if data else None,
                                 "last_id": data[-1]["id"] if data else None})
        return True
    batch = fake.batches.get(rest[0]) if rest else None
    if batch is None or batch.provider != "openai":
        handler._send_json(404, openai_error_body(FakeError(404, "No such Batch object")))
        return True
    if method == "GET" and len(rest) == 1:
        if batch.opened:
            _advance(fake, batch)
        else:
            batch.opened = True  # validating -> in_progress on the first read
        handler._send_json(200, _openai_batch_json(batch))
        return True
    if method == "POST" and rest[1:] == ["cancel"]:
        if batch.ended_at is None:
            batch.cancel_initiated_at = time.time()
            _process(fake, batch, cancel=True)
        handler._send_json(200, _openai_batch_json(batch))
        return True
    return False


def _openai_files_for(fake: ProviderServer, batch: FakeBatch) -> None:
    """The output file (answers) and error file (failed, expired, cancelled requests) of a batch."""
    out: list[str] = []
    err: list[str] = []
    for request in batch.requests:
        custom_id = request["custom_id"]
        kind, value = batch.outcomes[custom_id]
        line_id = fake.new_id("batch_req_")
        if kind == "succeeded":
            out.append(json.dumps({"id": line_id, "custom_id": custom_id, "error": None, "response": {
                "status_code": 200, "request_id": fake.new_id("req_"), "body": value}}))
        elif kind == "errored":
            err.append(json.dumps({"id": line_id, "custom_id": custom_id, "error": None, "response": {
                "status_code": value.status, "request_id": fake.new_id("req_"), "body": openai_error_body(value)}}))
        else:
            code, message = ("batch_expired", "This request could not be executed before the completion window "
                             "expired.") if kind == "expired" else ("batch_cancelled", "This request was cancelled.")
            err.append(json.dumps({"id": line_id, "custom_id": custom_id, "response": None,
                                   "error": {"code": code, "message": message}}))
    for lines, attr in ((out, "output_file_id"), (err, "error_file_id")):
        if lines:
            file = FakeFile(id=fake.new_id("file-"), filename=f"{batch.id}_{attr}.jsonl", purpose="batch_output",
                            data=("\n".join(lines) + "\n").encode(), created_at=time.time())
            fake.files[file.id] = file
            setattr(batch, attr, file.id)


def _openai_batch_json(batch: FakeBatch) -> dict[str, Any]:
    kinds = [kind for kind, _ in batch.outcomes.values()]
    if batch.ended_at is None:
        status = "cancelling" if batch.cancel_initiated_at else "in_progress" if batch.opened else "validating"
    elif batch.cancel_initiated_at:
        status = "cancelled"
    else:
        status = "expired" if "expired" in kinds else "completed"
    return {"id": batch.id, "object": "batch", "endpoint": batch.endpoint, "errors": None,
            "input_file_id": batch.input_file_id, "completion_window": "24h", "status": status,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "created_at": int(batch.created_at), "expires_at": int(batch.created_at) + 86400,
            "completed_at": int(batch.ended_at) if batch.ended_at and status == "completed" else None,
            "in_progress_at": int(batch.created_at) if batch.opened else None,
            "request_counts": {"total": len(batch.requests), "completed": kinds.count("succeeded"),
                               "failed": len(kinds) - kinds.count("succeeded")},
            "metadata": batch.metadata}


# -- OpenAI Responses ---------------------------------------------------------------------------------------
def _create_response(handler: _Handler, fake: ProviderServer, body: dict[str, Any], item: Item, index: int) -> bool:
    model = str(body.get("model", "gpt-fake"))
    if isinstance(item, Expired):
        item = FakeError(500, "the response expired")
    background = bool(body.get("background"))
    if isinstance(item, FakeError) and not background:
        handler._send_json(item.status, openai_error_body(item), item.headers)
        return True
    if isinstance(item, Malformed):
        handler._send_raw(200, item.body, item.content_type)
        return True
    response = FakeResponse(id=fake.new_id("resp_"), model=model, body=body, item=item, created_at=time.time(),
                            background=background)
    with fake._lock:
        fake.responses[response.id] = response
    if not background:
        _complete(fake, response)
        fake.wait_if_held(index)
        if body.get("stream"):
            handler._send_stream("text/event-stream", _response_events(response, -1))
        else:
            handler._send_json(200, _response_json(response))
        return True
    if body.get("stream"):  # background and streamed: events as it runs, resumable by sequence number
        handler._send_stream("text/event-stream", _wait_then_events(fake, response, -1))
    else:
        handler._send_json(200, _response_json(response))
    return True


def _responses(handler: _Handler, fake: ProviderServer, method: str, rest: list[str], params: dict[str, str]) -> bool:
    response = fake.responses.get(rest[0]) if rest else None
    if response is None:
        handler._send_json(404, openai_error_body(FakeError(404, "No response found")))
        return True
    if method == "GET" and len(rest) == 1:
        if params.get("stream") == "true":
            after = int(params.get("starting_after", "-1"))
            handler._send_stream("text/event-stream", _wait_then_events(fake, response, after))
            return True
        with fake._lock:
            if response.status in ("queued", "in_progress"):
                response.polls += 1
                response.status = "in_progress"
                ready = not fake.holding and response.polls >= fake.response_polls
            else:
                ready = False
        if ready:
            _complete(fake, response)
        handler._send_json(200, _response_json(response))
        return True
    if method == "POST" and rest[1:] == ["cancel"]:
        if not response.background:
            handler._send_json(400, openai_error_body(FakeError(400, "Only background responses can be cancelled.")))
            return True
        with fake._lock:
            if response.status in ("queued", "in_progress"):
                response.status = "cancelled"
                response.done.set()
        handler._send_json(200, _response_json(response))
        return True
    if method == "DELETE" and len(rest) == 1:
        with fake._lock:
            fake.responses.pop(response.id, None)
        handler._send_json(200, {"id": response.id, "object": "response.deleted", "deleted": True})
        return True
    return False


def _complete(fake: ProviderServer, response: FakeResponse) -> None:
    """The model finished: completed (billed once) or failed."""
    with fake._lock:
        if response.status not in ("queued", "in_progress"):
            return
        if isinstance(response.item, Reply):
            response.status = "completed"
            fake.bill("POST /v1/responses", response.model, response.item.usage)
        else:
            response.status = "failed"
        response.done.set()


HEAD_EVENTS = 2
"""response.created and response.in_progress: the same whatever the response becomes."""


def _wait_then_events(fake: ProviderServer, response: FakeResponse, after: int) -> Iterator[bytes]:
    """A stream of a background response: the head at once, the rest once it is done (a held
    server keeps it running: the caller waits on an open stream, as on a long generation)."""
    if response.status in ("queued", "in_progress"):
        response.status = "in_progress"
        yield from _sse_after(_events(response)[:HEAD_EVENTS], after)
        after = max(after, HEAD_EVENTS - 1)
        deadline = time.time() + 120
        while response.status in ("queued", "in_progress") and time.time() < deadline:
            fake._gate.wait(timeout=0.05)
            if not fake.holding:
                _complete(fake, response)
    yield from _sse_after(_events(response), after)


def _sse_after(events: list[dict[str, Any]], after: int) -> Iterator[bytes]:
    for number, event in enumerate(events):
        if number > after:
            yield sse(event["type"], {**event, "sequence_number": number})


def _response_json(response: FakeResponse) -> dict[str, Any]:
    item = response.item
    output: list[dict[str, Any]] = []
    usage = None
    error = None
    if response.status == "completed" and isinstance(item, Reply):
        output = _output_items(item, response.id)
        u = item.usage
        usage = {"input_tokens": u.input_tokens + u.cache_read_tokens,
                 "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
                 "output_tokens": u.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": u.input_tokens + u.cache_read_tokens + u.output_tokens}
    elif response.status == "failed" and isinstance(item, FakeError):
        error = {"code": item.code or "server_error", "message": item.text()}
    incomplete = None
    if isinstance(item, Reply) and item.stop() == "max_tokens" and response.status == "completed":
        incomplete = {"reason": "max_output_tokens"}
    return {"id": response.id, "object": "response", "created_at": int(response.created_at),
            "status": "incomplete" if incomplete else response.status, "background": response.background,
            "model": response.model, "output": output, "usage": usage, "error": error,
            "incomplete_details": incomplete, "instructions": response.body.get("instructions"),
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": response.body.get("tools") or [],
            "metadata": response.body.get("metadata") or {}, "temperature": None, "top_p": None,
            "text": {"format": {"type": "text"}}}


def _output_items(reply: Reply, response_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.text:
        items.append({"type": "message", "id": f"msg_{response_id}", "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": reply.text, "annotations": []}]})
    for i, call in enumerate(reply.tool_calls):
        items.append(_function_call(call, i, response_id))
    return items


def _function_call(call: FakeToolCall, index: int, response_id: str) -> dict[str, Any]:
    return {"type": "function_call", "id": f"fc_{response_id}_{index}", "call_id": call_id(call, index, "call_"),
            "name": call.name, "arguments": call_arguments_json(call), "status": "completed"}


def _response_events(response: FakeResponse, after: int) -> Iterator[bytes]:
    return _sse_after(_events(response), after)


def _events(response: FakeResponse) -> list[dict[str, Any]]:
    """Every event of a response, in order (numbered by position: the sequence numbers)."""
    running = {**_response_json(response), "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [{"type": "response.created", "response": {**running, "status": "queued"}},
                                    {"type": "response.in_progress", "response": running}]
    item = response.item
    if response.status in ("completed", "incomplete") and isinstance(item, Reply):
        index = 0
        if item.text:
            message_id = f"msg_{response.id}"
            events.append({"type": "response.output_item.added", "output_index": 0, "item": {
                "type": "message", "id": message_id, "status": "in_progress", "role": "assistant", "content": []}})
            for piece in item.text_chunks():
                events.append({"type": "response.output_text.delta", "item_id": message_id, "output_index": 0,
                               "content_index": 0, "delta": piece, "logprobs": []})
            events.append({"type": "response.output_text.done", "item_id": message_id, "output_index": 0,
                           "content_index": 0, "text": item.text, "logprobs": []})
            index = 1
        for i, call in enumerate(item.tool_calls):
            events.append({"type": "response.output_item.done", "output_index": index + i,
                           "item": _function_call(call, i, response.id)})
        events.append({"type": "response.completed", "response": _response_json(response)})
    elif response.status == "cancelled":
        events.append({"type": "response.cancelled", "response": _response_json(response)})
    elif response.status == "failed":
        events.append({"type": "response.failed", "response": _response_json(response)})
    return events
