"""Model adapters, one module per provider, and ``infer_model`` for model strings.

Importing this package imports no vendor SDK: each adapter imports its SDK when a model is built,
and a missing SDK or key is reported then, as ``ModelConfigurationError`` naming the fix.

    anthropic:NAME   AnthropicModel   (pip install 'duragent[anthropic]'; ANTHROPIC_API_KEY)
    openai:NAME      OpenAIModel      (pip install 'duragent[openai]'; OPENAI_API_KEY or OPENAI_BASE_URL)
    openai-responses:NAME  OpenAIResponsesModel, the Responses API (background mode: pass an instance,
                     ``OpenAIResponsesModel(NAME, background=True)``)
    bedrock:NAME     BedrockModel     (boto3; AWS credentials and region)
    scripted:NAME    a deterministic offline model that echoes the last user message
"""

from __future__ import annotations

from ..errors import ModelConfigurationError
from .anthropic import AnthropicModel
from .anthropic_cache import PromptCaching
from .base import AsyncModel, AsyncTextCallback, Model, TextCallback, request_async
from .bedrock import BedrockModel
from .openai import OpenAIModel
from .openai_responses import OpenAIResponsesModel
from .scripted import FunctionModel, ScriptedModel, echo

PROVIDERS = ("anthropic", "openai", "openai-responses", "bedrock", "scripted")


def infer_model(spec: str | Model) -> Model:
    """The model for ``provider:name`` (the name may itself hold colons, as Bedrock and Ollama ids
    do); a ``Model`` instance is returned as it is.

    Raises:
        ModelConfigurationError: unknown provider, empty name, missing SDK or missing key.
    """
    if not isinstance(spec, str):
        if isinstance(spec, Model):
            return spec
        raise ModelConfigurationError(f"a model must be a 'provider:name' string or a Model, not {spec!r}")
    provider, sep, name = spec.partition(":")
    provider = provider.strip().lower()
    if not sep or not name.strip():
        raise ModelConfigurationError(
            f"model string {spec!r} must look like 'provider:name' with provider one of "
            f"{', '.join(PROVIDERS)} (e.g. 'anthropic:claude-sonnet-4-6')")
    name = name.strip()
    if provider == "anthropic":
        return AnthropicModel(name)
    if provider == "openai":
        return OpenAIModel(name)
    if provider == "openai-responses":
        return OpenAIResponsesModel(name)
    if provider == "bedrock":
        return BedrockModel(name)
    if provider == "scripted":
        return FunctionModel(echo, name=name)
    raise ModelConfigurationError(
        f"unknown model provider {provider!r} in {spec!r}; known providers: {', '.join(PROVIDERS)}",
        provider=provider)


__all__ = ["AnthropicModel", "AsyncModel", "AsyncTextCallback", "BedrockModel", "FunctionModel", "Model",
           "OpenAIModel", "OpenAIResponsesModel", "PromptCaching", "ScriptedModel", "TextCallback", "infer_model",
           "request_async"]
