"""Amazon Bedrock Converse API adapter (``bedrock:MODEL_ID``).

boto3 is imported when a model is built. Its retries are off (one attempt): every attempt is a
durable step attempt that the journal counts and backs off. Credentials, region and endpoint come
from boto3's standard configuration (``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` / ``AWS_ENDPOINT_URL``, ...).
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelError, ModelResponseError
from ..messages import (
    Message,
    ModelRequest,
    ModelResponse,
    StopReason,
    TextBlock,
    ToolCall,
    ToolResult,
    Usage,
)
from ._errors import NORMALIZATION_ERRORS, translate_botocore_error
from ._util import import_sdk, normalized, parse_arguments
from .base import AsyncTextCallback, TextCallback, request_in_thread

PROVIDER = "bedrock"

STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence", "content_filtered": "refusal", "guardrail_intervened": "refusal",
    "model_context_window_exceeded": "max_tokens",
}


class BedrockModel:
    """A Bedrock model (or inference profile) over Converse / ConverseStream.

    Args:
        name: the model id, e.g. ``anthropic.claude-3-5-sonnet-20240620-v1:0``.
        client: a ready boto3 ``bedrock-runtime`` client; its retry setting is then yours to choose.
        region: otherwise boto3's configured region.

    Raises:
        ModelConfigurationError: boto3 is missing or no region is configured.
    """

    provider = PROVIDER

    def __init__(self, name: str, *, client: Any = None, region: str | None = None) -> None:
        self.name = name
        if client is None:
            client = make_client(region)
        self._client = client

    @property
    def model_id(self) -> str:
        return f"{PROVIDER}:{self.name}"

    def __repr__(self) -> str:
        return f"BedrockModel({self.name!r})"

    def request(self, request: ModelRequest, *, on_text: TextCallback | None = None) -> ModelResponse:
        params = build_params(self.name, request)
        try:
            if on_text is None:
                response = guarded(self._client.converse, **params)
                return normalized(normalize_response, response, self.model_id, provider=PROVIDER)
            return self._stream(params, on_text)
        except ModelError:
            raise
        except Exception as exc:
            translated = translate_botocore_error(exc, provider=PROVIDER)
            if translated is None:
                raise
            raise translated from exc

    async def arequest(self, request: ModelRequest, *, on_text: AsyncTextCallback | None = None) -> ModelResponse:
        """boto3 has no async client: the call runs in a worker thread, text deltas come back to
        the loop in order."""
        return await request_in_thread(self.request, request, on_text=on_text)

    def _stream(self, params: dict[str, Any], on_text: TextCallback) -> ModelResponse:
        response = guarded(self._client.converse_stream, **params)
        events = iter(guarded(response.__getitem__, "stream"))
        blocks: dict[int, dict[str, Any]] = {}
        stop: str | None = None
        usage: dict[str, Any] = {}
        while (event := guarded(next, events, None)) is not None:
            if "contentBlockStart" in event:
                start = event["contentBlockStart"]
                tool = start.get("start", {}).get("toolUse")
                if tool is not None:
                    blocks[start["contentBlockIndex"]] = {"toolUse": {"toolUseId": tool["toolUseId"],
                                                                      "name": tool["name"], "input": ""}}
            elif "contentBlockDelta" in event:
                part = event["contentBlockDelta"]
                delta = part["delta"]
                index = part["contentBlockIndex"]
                if "text" in delta:
                    block = blocks.setdefault(index, {"text": ""})
                    block["text"] = block.get("text", "") + delta["text"]
                    on_text(delta["text"])
                elif "toolUse" in delta:
                    block = blocks.setdefault(index, {"toolUse": {"toolUseId": "", "name": "", "input": ""}})
                    block["toolUse"]["input"] += delta["toolUse"].get("input", "")
            elif "messageStop" in event:
                stop = event["messageStop"].get("stopReason")
            elif "metadata" in event:
                usage = event["metadata"].get("usage", {}) or {}
        try:
            content: list[TextBlock | ToolCall] = []
            for index in sorted(blocks):
                block = blocks[index]
                if "toolUse" in block:
                    tool = block["toolUse"]
                    content.append(ToolCall(id=tool["toolUseId"], name=tool["name"],
                                            arguments=parse_arguments(tool["input"])))
                elif block.get("text"):
                    content.append(TextBlock(text=block["text"]))
            return ModelResponse(content=content, stop_reason=STOP_REASONS.get(stop or "", "other"),
                                 usage=normalize_usage(usage), model=self.model_id)
        except NORMALIZATION_ERRORS as exc:
            raise ModelResponseError(f"{PROVIDER}: unusable stream: {exc!r}", provider=PROVIDER) from exc


def guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call into botocore, reading a bare parse failure (botocore raises AttributeError and the like
    on a body of the wrong shape) as a malformed response. Kept apart from ``on_text`` calls, so an
    error raised by the caller's callback is never mistaken for the provider's."""
    try:
        return fn(*args, **kwargs)
    except NORMALIZATION_ERRORS as exc:
        raise ModelResponseError(f"{PROVIDER}: the response could not be parsed: {exc!r}",
                                 provider=PROVIDER) from exc


def make_client(region: str | None = None) -> Any:
    """A ``bedrock-runtime`` client with botocore's retries off (one attempt per call)."""
    boto3 = import_sdk("boto3", provider=PROVIDER)
    from botocore.config import Config

    # botocore's "max_attempts" counts retries (1 would mean two attempts); total_max_attempts is exact
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    try:
        # a fresh session, not boto3's process-wide default one that caches credentials forever
        return boto3.session.Session(region_name=region).client("bedrock-runtime", config=config)
    except Exception as exc:
        translated = translate_botocore_error(exc, provider=PROVIDER)
        if translated is None:
            raise
        raise translated from exc


def build_params(name: str, request: ModelRequest) -> dict[str, Any]:
    """``converse`` keyword arguments for a normalized request."""
    settings = request.settings
    inference: dict[str, Any] = {"maxTokens": settings.max_tokens}
    if settings.temperature is not None:
        inference["temperature"] = settings.temperature
    if settings.stop_sequences:
        inference["stopSequences"] = list(settings.stop_sequences)
    params: dict[str, Any] = {"modelId": name, "messages": [to_wire_message(m) for m in request.messages],
                              "inferenceConfig": inference}
    if request.system:
        params["system"] = [{"text": request.system}]
    if request.tools:
        params["toolConfig"] = {"tools": [
            {"toolSpec": {"name": t.name, "description": t.description, "inputSchema": {"json": t.parameters}}}
            for t in request.tools]}
    return params


def to_wire_message(message: Message) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, ToolResult):
            results.append({"toolResult": {"toolUseId": block.tool_call_id, "content": [{"text": block.content}],
                                           "status": "error" if block.is_error else "success"}})
        elif isinstance(block, ToolCall):
            others.append({"toolUse": {"toolUseId": block.id, "name": block.name, "input": block.arguments}})
        elif isinstance(block, TextBlock) and block.text:  # Converse refuses blank text blocks
            others.append({"text": block.text})
    return {"role": message.role, "content": results + others}


def normalize_usage(usage: dict[str, Any]) -> Usage:
    return Usage(input_tokens=usage.get("inputTokens") or 0, output_tokens=usage.get("outputTokens") or 0,
                 cache_read_tokens=usage.get("cacheReadInputTokens") or 0,
                 cache_write_tokens=usage.get("cacheWriteInputTokens") or 0)


def normalize_response(response: dict[str, Any], model_id: str) -> ModelResponse:
    content: list[TextBlock | ToolCall] = []
    for block in response["output"]["message"]["content"]:
        if "text" in block:
            content.append(TextBlock(text=block["text"]))
        elif "toolUse" in block:
            tool = block["toolUse"]
            arguments = tool.get("input")
            if isinstance(arguments, str):
                arguments = parse_arguments(arguments)
            content.append(ToolCall(id=tool["toolUseId"], name=tool["name"], arguments=dict(arguments or {})))
    return ModelResponse(content=content, stop_reason=STOP_REASONS.get(response["stopReason"], "other"),
                         usage=normalize_usage(response.get("usage") or {}), model=model_id)
