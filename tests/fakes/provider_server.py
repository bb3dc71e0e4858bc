"""A fake model provider: a real HTTP server on 127.0.0.1 that speaks three wire formats, so the
real anthropic, openai and boto3 SDKs can be pointed at it through their own base-URL settings.

    POST /v1/messages                        Anthropic Messages (SSE when "stream": true)
    POST /v1/chat/completions                OpenAI Chat Completions (SSE when "stream": true)
    POST /model/{modelId}/converse           Bedrock Converse
    POST /model/{modelId}/converse-stream    Bedrock ConverseStream (AWS event-stream binary framing)

It answers from a script, a queue of neutral items shared by all three routes:

    server.enqueue(Reply(text="hi", usage=FakeUsage(input_tokens=10, output_tokens=2)))
    server.enqueue(Reply(tool_calls=[FakeToolCall("add", {"a": 1})]))
    server.enqueue(FakeError(429, headers={"retry-after": "7"}), FakeError(529), Malformed())

and records every request (path, headers without credentials, parsed body). Credentials are never
recorded or logged; ``auth_headers`` keeps only the *names* of those that were sent. When the
script is empty, ``responder(recorded_request) -> item`` (a constructor argument, or
``server.responder = fn``) answers each request by what it asks (for jobs too large or too
concurrent to script in order).

It also keeps the provider's bill: ``bills`` holds one entry per answer the provider would charge
for (interactive answers at list price, batch items at the batch rate), and ``counts`` the
requests per endpoint, so tests compare a ledger with what was really billed. ``hold(after=n)``
keeps every model request from the n-th on waiting (billed, unanswered) until ``release()``: a
test can kill a worker with calls truly in flight.

The providers' asynchronous APIs live in ``provider_async``: Anthropic Message Batches, OpenAI
Files + Batch, and the OpenAI Responses API (background mode included). ``prompt_cache=True``
plays Anthropic prompt caching (``prompt_cache.py``): usage is then computed from the request's
cache breakpoints instead of taken from the script.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import struct
import threading
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-amz-security-token", "cookie",
                            "proxy-authorization"})


# -- the script ------------------------------------------------------------------------------------
@dataclass
class FakeUsage:
    input_tokens: int = 10
    output_tokens: int = 5
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass
class FakeToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    """A dict, or (OpenAI only) a raw string sent verbatim, e.g. invalid JSON."""
    id: str | None = None


@dataclass
class Reply:
    """A successful model answer in neutral form; each route renders it in its own wire format."""

    text: str | None = None
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    stop_reason: str | None = None
    """Neutral (end_turn, tool_use, max_tokens, stop_sequence, refusal) or a provider's own word,
    sent verbatim. Default: tool_use when there are tool calls, else end_turn."""
    usage: FakeUsage = field(default_factory=FakeUsage)
    chunks: list[str] | None = None
    """How streamed text is cut (default: about three pieces)."""

    def stop(self) -> str:
        return self.stop_reason or ("tool_use" if self.tool_calls else "end_turn")

    def text_chunks(self) -> list[str]:
        if self.chunks is not None:
            return self.chunks
        text = self.text or ""
        if not text:
            return []
        size = max(1, -(-len(text) // 3))
        return [text[i:i + size] for i in range(0, len(text), size)]


@dataclass
class FakeError:
    """An error response. ``mid_stream``: for a streaming request, answer 200, stream some text,
    then send the error inside the stream (an SSE error event / an event-stream exception)."""

    status: int
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    """Provider-specific: OpenAI ``error.code``, Bedrock ``x-amzn-ErrorType``, Anthropic ``error.type``."""
    mid_stream: bool = False

    def text(self) -> str:
        return self.message or f"fake error {self.status}"


@dataclass
class Malformed:
    """A 200 whose body is not what the API promises (default: not JSON at all)."""

    body: bytes = b'{"this is": not json'
    content_type: str = "application/json"


@dataclass
class Expired:
    """A batch item the provider never got to before the batch's window closed (not billed)."""


CONTEXT_TOO_LONG = "prompt is too long: 250000 tokens > 200000 maximum (input is too long for requested model)"
"""A message every adapter must read as context-too-long."""

Item = Reply | FakeError | Malformed | Expired


@dataclass(frozen=True)
class Bill:
    """One answer the provider charges for."""

    endpoint: str
    model: str
    usage: FakeUsage
    batch: bool = False
    """Answered inside a batch: charged at the batch rate."""
    custom_id: str | None = None
    """For batch items: the id the caller gave the request."""


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names; credentials removed (see ``auth_headers``)."""
    auth_headers: list[str]
    """Names of the credential headers that were sent (never their values)."""
    body: Any
    model_id: str | None = None
    """For Bedrock routes: the model id decoded from the path."""


# -- wire formats ------------------------------------------------------------------------------------
NEUTRAL_TO_OPENAI = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length",
                     "stop_sequence": "stop", "refusal": "content_filter"}
NEUTRAL_TO_BEDROCK = {"refusal": "content_filtered"}
ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                         404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                         500: "api_error", 529: "overloaded_error"}
OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                      404: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error"}
BEDROCK_ERROR_CODES = {400: "ValidationException", 401: "UnrecognizedClientException",
                       403: "AccessDeniedException", 404: "ResourceNotFoundException",
                       408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
                       500: "InternalServerException", 503: "ServiceUnavailableException",
                       529: "ServiceUnavailableException"}


def call_id(call: FakeToolCall, index: int, prefix: str) -> str:
    return call.id or f"{prefix}{index}"


def call_arguments_json(call: FakeToolCall) -> str:
    return call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)


def call_arguments_dict(call: FakeToolCall) -> dict[str, Any]:
    if isinstance(call.arguments, dict):
        return call.arguments
    try:
        value = json.loads(call.arguments)
    except ValueError:
        return {"_unparseable": call.arguments}
    return value if isinstance(value, dict) else {"value": value}


def json_chunks(text: str) -> list[str]:
    """Cut a JSON string in two, as providers stream partial tool input."""
    middle = len(text) // 2
    return [p for p in (text[:middle], text[middle:]) if p]


def anthropic_message(reply: Reply, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for i, call in enumerate(reply.tool_calls):
        content.append({"type": "tool_use", "id": call_id(call, i, "toolu_"), "name": call.name,
                        "input": call_arguments_dict(call)})
    u = reply.usage
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": reply.stop(), "stop_sequence": None,
            "usage": {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                      "cache_read_input_tokens": u.cache_read_tokens,
                      "cache_creation_input_tokens": u.cache_write_tokens}}


def anthropic_error_body(error: FakeError) -> dict[str, Any]:
    kind = error.code or ANTHROPIC_ERROR_TYPES.get(error.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.text()}}


def sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


def anthropic_stream(reply: Reply, model: str, error: FakeError | None = None) -> Iterator[bytes]:
    u = reply.usage
    start = anthropic_message(reply, model)
    start.update(content=[], stop_reason=None)
    start["usage"] = {"input_tokens": u.input_tokens, "output_tokens": 1,
                      "cache_read_input_tokens": u.cache_read_tokens,
                      "cache_creation_input_tokens": u.cache_write_tokens}
    yield sse("message_start", {"type": "message_start", "message": start})
    index = 0
    if reply.text or error is not None:
        yield sse("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}})
        yield sse("ping", {"type": "ping"})
        for piece in reply.text_chunks():
            yield sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": piece}})
        if error is not None:
            yield sse("error", anthropic_error_body(error))
            return
        yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        index = 1
    for i, call in enumerate(reply.tool_calls):
        yield sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": call_id(call, i, "toolu_"), "name": call.name, "input": {}}})
        for piece in json_chunks(json.dumps(call_arguments_dict(call))):
            yield sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                              "delta": {"type": "input_json_delta", "partial_json": piece}})
        yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    yield sse("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": reply.stop(), "stop_sequence": None},
                                "usage": {"output_tokens": u.output_tokens}})
    yield sse("message_stop", {"type": "message_stop"})


def openai_usage(u: FakeUsage) -> dict[str, Any]:
    prompt = u.input_tokens + u.cache_read_tokens
    return {"prompt_tokens": prompt, "completion_tokens": u.output_tokens,
            "total_tokens": prompt + u.output_tokens, "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens}}


def openai_tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [{"id": call_id(call, i, "call_"), "type": "function",
             "function": {"name": call.name, "arguments": call_arguments_json(call)}}
            for i, call in enumerate(reply.tool_calls)]


def openai_completion(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = openai_tool_calls(reply)
    finish = NEUTRAL_TO_OPENAI.get(reply.stop(), reply.stop())
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": openai_usage(reply.usage)}


def openai_error_body(error: FakeError) -> dict[str, Any]:
    return {"error": {"message": error.text(), "type": OPENAI_ERROR_TYPES.get(error.status, "server_error"),
                      "param": None, "code": error.code}}


def openai_stream(reply: Reply, model: str, include_usage: bool, error: FakeError | None = None) -> Iterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    yield sse(None, chunk({"role": "assistant", "content": ""}))
    for piece in reply.text_chunks():
        yield sse(None, chunk({"content": piece}))
    if error is not None:
        yield sse(None, openai_error_body(error))
        return
    for i, call in enumerate(reply.tool_calls):
        yield sse(None, chunk({"tool_calls": [{"index": i, "id": call_id(call, i, "call_"), "type": "function",
                                               "function": {"name": call.name, "arguments": ""}}]}))
        for piece in json_chunks(call_arguments_json(call)):
            yield sse(None, chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    yield sse(None, chunk({}, NEUTRAL_TO_OPENAI.get(reply.stop(), reply.stop())))
    if include_usage:
        yield sse(None, {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000,
                         "model": model, "choices": [], "usage": openai_usage(reply.usage)})
    yield sse(None, "[DONE]")


def bedrock_usage(u: FakeUsage) -> dict[str, Any]:
    return {"inputTokens": u.input_tokens, "outputTokens": u.output_tokens,
            "totalTokens": u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens,
            "cacheReadInputTokens": u.cache_read_tokens, "cacheWriteInputTokens": u.cache_write_tokens}


def bedrock_converse(reply: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"text": reply.text})
    for i, call in enumerate(reply.tool_calls):
        content.append({"toolUse": {"toolUseId": call_id(call, i, "tooluse_"), "name": call.name,
                                    "input": call_arguments_dict(call)}})
    return {"output": {"message": {"role": "assistant", "content": content}},
            "stopReason": NEUTRAL_TO_BEDROCK.get(reply.stop(), reply.stop()),
            "usage": bedrock_usage(reply.usage), "metrics": {"latencyMs": 1}}


def bedrock_error_code(error: FakeError) -> str:
    fallback = "ValidationException" if error.status < 500 else "InternalServerException"
    return error.code or BEDROCK_ERROR_CODES.get(error.status, fallback)


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total length, headers length, CRC32), string headers
    (type 7), payload, and a CRC32 of everything before it."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack("!B", len(raw_name)) + raw_name + b"\x07" + struct.pack("!H", len(raw_value))
        encoded += raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack("!I", zlib.crc32(message))


def bedrock_event(event_type: str, body: dict[str, Any]) -> bytes:
    return event_message({":event-type": event_type, ":content-type": "application/json",
                          ":message-type": "event"}, json.dumps(body).encode())


def bedrock_stream(reply: Reply, error: FakeError | None = None) -> Iterator[bytes]:
    yield bedrock_event("messageStart", {"role": "assistant"})
    index = 0
    if reply.text or error is not None:
        for piece in reply.text_chunks():
            yield bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
        if error is not None:
            code = bedrock_error_code(error)
            member = code[0].lower() + code[1:]  # stream exceptions are named like shape members
            yield event_message({":exception-type": member, ":content-type": "application/json",
                                 ":message-type": "exception"}, json.dumps({"message": error.text()}).encode())
            return
        yield bedrock_event("contentBlockStop", {"contentBlockIndex": 0})
        index = 1
    for i, call in enumerate(reply.tool_calls):
        yield bedrock_event("contentBlockStart", {"contentBlockIndex": index, "start": {
            "toolUse": {"toolUseId": call_id(call, i, "tooluse_"), "name": call.name}}})
        for piece in json_chunks(json.dumps(call_arguments_dict(call))):
            yield bedrock_event("contentBlockDelta", {"contentBlockIndex": index,
                                                      "delta": {"toolUse": {"input": piece}}})
        yield bedrock_event("contentBlockStop", {"contentBlockIndex": index})
        index += 1
    yield bedrock_event("messageStop", {"stopReason": NEUTRAL_TO_BEDROCK.get(reply.stop(), reply.stop())})
    yield bedrock_event("metadata", {"usage": bedrock_usage(reply.usage), "metrics": {"latencyMs": 1}})


# -- the server ------------------------------------------------------------------------------------
class ScriptExhausted(FakeError):
    pass


class ProviderServer:
    """Start with ``with ProviderServer() as server:`` (or ``start()``/``stop()``); ``url`` is the
    base to hand an SDK: ``url`` for Anthropic and Bedrock, ``url + "/v1"`` for OpenAI."""

    def __init__(self, *, responder: Callable[[RecordedRequest], Item] | None = None, prompt_cache: bool = False,
                 batch_polls: int = 1, response_polls: int = 1) -> None:
        self.script: deque[Item] = deque()
        self.requests: list[RecordedRequest] = []
        self.responder: Callable[[RecordedRequest], Item] | None = responder
        """Answers requests by their content once the script is empty (concurrent callers)."""
        self.bills: list[Bill] = []
        self.counts: Counter[str] = Counter()
        """Requests per endpoint, e.g. ``counts["POST /v1/messages/batches"]``."""
        self.batch_polls = batch_polls
        """How many status reads a batch stays in progress for (while not held)."""
        self.response_polls = response_polls
        """How many reads a background response stays queued/in progress for (while not held)."""
        self.cache = None
        if prompt_cache:
            from .prompt_cache import PromptCache
            self.cache = PromptCache()
        self.batches: dict[str, Any] = {}
        self.files: dict[str, Any] = {}
        self.responses: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._gate = threading.Event()
        self._gate.set()
        self._hold_from: int | None = None
        self._hold_creations = False
        self._model_requests = 0
        self._held = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> ProviderServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # script and records
    def enqueue(self, *items: Item) -> None:
        with self._lock:
            self.script.extend(items)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self.requests[-1]

    @property
    def model_request_count(self) -> int:
        """Interactive model requests (messages, chat completions, converse, responses creation)."""
        with self._lock:
            return self._model_requests

    def billed(self, *, batch: bool | None = None) -> list[Bill]:
        with self._lock:
            return [b for b in self.bills if batch is None or b.batch == batch]

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    # holding answers (calls in flight)
    def hold(self, after: int = 0) -> None:
        """Hold every model request from the ``after``-th on (0-based, counted from the start),
        and keep background responses in progress, until ``release()``."""
        with self._lock:
            self._hold_from = after
            self._gate.clear()

    def hold_creations(self) -> None:
        """Hold the answer to each batch creation (the batch exists; its creator does not know
        its id) until ``release()``."""
        with self._lock:
            self._hold_creations = True
            self._gate.clear()

    def release(self) -> None:
        with self._lock:
            self._hold_from = None
            self._hold_creations = False
            self._gate.set()

    @property
    def held(self) -> int:
        """Model requests waiting at the gate right now."""
        with self._lock:
            return self._held

    @property
    def holding(self) -> bool:
        """Model requests are being held (background responses stay in progress meanwhile)."""
        return self._hold_from is not None

    def wait_if_held(self, index: int) -> None:
        with self._lock:
            if self._hold_from is None or index < self._hold_from:
                return
            self._held += 1
        self._wait_at_gate()

    def wait_if_holding(self) -> None:
        """Hold a batch creation's answer after ``hold_creations()``."""
        with self._lock:
            if not self._hold_creations:
                return
            self._held += 1
        self._wait_at_gate()

    def _wait_at_gate(self) -> None:
        """Wait for the release, counted in ``_held`` (the caller counted itself in)."""
        try:
            self._gate.wait()
        finally:
            with self._lock:
                self._held -= 1

    def record(self, recorded: RecordedRequest, endpoint: str) -> None:
        with self._lock:
            self.requests.append(recorded)
            self.counts[endpoint] += 1

    def next_item(self, recorded: RecordedRequest | None) -> Item:
        with self._lock:
            if self.script:
                return self.script.popleft()
        if self.responder is not None and recorded is not None:
            return self.responder(recorded)
        return ScriptExhausted(418, "fake provider server: the script is exhausted")

    def bill(self, endpoint: str, model: str, usage: FakeUsage, *, batch: bool = False,
             custom_id: str | None = None) -> None:
        with self._lock:
            self.bills.append(Bill(endpoint, model, usage, batch, custom_id))

    def _next(self, recorded: RecordedRequest, endpoint: str) -> tuple[Item, int]:
        self.record(recorded, endpoint)
        with self._lock:
            index = self._model_requests
            self._model_requests += 1
        return self.next_item(recorded), index


MODEL_ROUTES = ("/v1/messages", "/v1/chat/completions", "/model/*/converse", "/model/*/converse-stream")


class _Handler(BaseHTTPRequestHandler):
    fake: ProviderServer
    server_version = "FakeProvider/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Silent: a request log could carry credentials, and tests read the records instead."""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("content-type") or ""
        body: Any
        if content_type.startswith("multipart/form-data"):
            body = {"multipart": True, "bytes": len(raw)}
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() not in SECRET_HEADERS}
        auth = sorted({k.lower() for k in self.headers.keys() if k.lower() in SECRET_HEADERS})
        path, _, query = self.path.partition("?")
        model_id = None
        route = path
        if path.startswith("/model/"):
            rest = path[len("/model/"):]
            encoded_id, _, action = rest.rpartition("/")
            model_id = unquote(encoded_id)
            route = f"/model/*/{action}"
        recorded = RecordedRequest(method=method, path=path, headers=headers, auth_headers=auth, body=body,
                                   model_id=model_id)
        if method == "POST" and route in MODEL_ROUTES:
            item, index = self.fake._next(recorded, f"POST {route}")
            if isinstance(item, Expired):
                item = FakeError(504, "the request expired")
            body = body if isinstance(body, dict) else {}
            if route == "/v1/messages":
                self._anthropic(item, body, index)
            elif route == "/v1/chat/completions":
                self._openai(item, body, index)
            else:
                self._bedrock(item, index, stream=route.endswith("converse-stream"))
            return
        from . import provider_async

        if not provider_async.handle(self, recorded, query, raw, content_type):
            self._send_json(404, {"message": f"fake provider server: no route {method} {path}"})

    def _settle(self, endpoint: str, item: Item, model: str, index: int) -> None:
        """Bill an answer as the provider decides it (before sending: a caller that dies waiting
        is billed all the same), then hold it if the test asked."""
        if isinstance(item, Reply):
            self.fake.bill(endpoint, model, item.usage)
        self.fake.wait_if_held(index)

    # one method per wire format
    def _anthropic(self, item: Item, body: dict[str, Any], index: int) -> None:
        model = str(body.get("model", "claude-fake"))
        stream = bool(body.get("stream"))
        if self.fake.cache is not None and isinstance(item, Reply):
            from .prompt_cache import CacheRequestError

            try:
                use = self.fake.cache.use(body)
            except CacheRequestError as exc:
                item = FakeError(400, str(exc))
            else:
                item = dataclasses.replace(item, usage=FakeUsage(
                    input_tokens=use.input_tokens, output_tokens=item.usage.output_tokens,
                    cache_read_tokens=use.cache_read_tokens, cache_write_tokens=use.cache_write_tokens))
        self._settle("POST /v1/messages", item, model, index)
        if isinstance(item, FakeError) and not (item.mid_stream and stream):
            self._send_json(item.status, anthropic_error_body(item), item.headers)
        elif isinstance(item, Malformed):
            self._send_raw(200, item.body, item.content_type)
        elif isinstance(item, FakeError):
            self._send_stream("text/event-stream", anthropic_stream(Reply(text="partial "), model, item))
        elif stream:
            self._send_stream("text/event-stream", anthropic_stream(item, model))
        else:
            self._send_json(200, anthropic_message(item, model))

    def _openai(self, item: Item, body: dict[str, Any], index: int) -> None:
        model = str(body.get("model", "gpt-fake"))
        stream = bool(body.get("stream"))
        self._settle("POST /v1/chat/completions", item, model, index)
        if isinstance(item, FakeError) and not (item.mid_stream and stream):
            self._send_json(item.status, openai_error_body(item), item.headers)
        elif isinstance(item, Malformed):
            self._send_raw(200, item.body, item.content_type)
        elif isinstance(item, FakeError):
            self._send_stream("text/event-stream", openai_stream(Reply(text="partial "), model, False, item))
        elif stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._send_stream("text/event-stream", openai_stream(item, model, include_usage))
        else:
            self._send_json(200, openai_completion(item, model))

    def _bedrock(self, item: Item, index: int, *, stream: bool) -> None:
        self._settle("POST /model/*/converse", item, self.path, index)
        if isinstance(item, FakeError) and not (item.mid_stream and stream):
            headers = {"x-amzn-ErrorType": f"{bedrock_error_code(item)}:http://internal.amazon.com/coral/",
                       **item.headers}
            self._send_json(item.status, {"message": item.text()}, headers)
        elif isinstance(item, Malformed):
            self._send_raw(200, item.body, item.content_type)
        elif isinstance(item, FakeError):
            self._send_stream("application/vnd.amazon.eventstream", bedrock_stream(Reply(text="partial "), item))
        elif stream:
            self._send_stream("application/vnd.amazon.eventstream", bedrock_stream(item))
        else:
            self._send_json(200, bedrock_converse(item))

    # transport
    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(body).encode(), "application/json", headers)

    def _send_raw(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("x-amzn-requestid", "fake-request-id")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the caller is gone (killed): fine
            self.close_connection = True

    def _send_stream(self, content_type: str, parts: Iterator[bytes]) -> None:
        """No content-length: the body ends when the connection closes (HTTP/1.0 semantics)."""
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("cache-control", "no-cache")
        self.send_header("x-amzn-requestid", "fake-request-id")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for part in parts:
                self.wfile.write(part)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the caller is gone (killed): fine
            pass


@pytest.fixture
def provider_server() -> Iterator[ProviderServer]:
    """A started fake provider server, stopped after the test."""
    with ProviderServer() as server:
        yield server
