"""Small helpers the provider adapters share."""

from __future__ import annotations

import importlib
import importlib.util
import json
import weakref
from asyncio import AbstractEventLoop, get_running_loop
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..errors import ModelConfigurationError, ModelResponseError
from ..messages import ModelResponse
from ._errors import NORMALIZATION_ERRORS


def require_sdk(module: str, *, provider: str, extra: str | None = None) -> None:
    """Fail now if the SDK is missing, without importing it: a worker that only replays never pays
    for importing a vendor SDK (``import_sdk`` brings it in at the first model call)."""
    if importlib.util.find_spec(module) is None:
        hint = f"pip install 'duragent[{extra}]'" if extra else f"pip install {module}"
        raise ModelConfigurationError(f"{provider} models need the {module!r} package: {hint}", provider=provider)


def import_sdk(module: str, *, provider: str, extra: str | None = None) -> ModuleType:
    """Import a vendor SDK on first use, so ``import agents`` never needs one."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = f"pip install 'duragent[{extra}]'" if extra else f"pip install {module}"
        raise ModelConfigurationError(f"{provider} models need the {module!r} package: {hint}",
                                      provider=provider) from exc


def parse_arguments(raw: str | None) -> dict[str, Any]:
    """Tool-call arguments from a JSON string. Invalid JSON is kept as ``{"_raw": text}`` rather than
    raised, so the agent can tell the model its call did not validate and let it try again."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


def normalized(normalize: Callable[[Any, str], ModelResponse], raw: Any, model_id: str, *,
               provider: str) -> ModelResponse:
    """``normalize(raw, model_id)``, with a body of the wrong shape reported as a malformed
    response (retryable) rather than a crash."""
    try:
        return normalize(raw, model_id)
    except NORMALIZATION_ERRORS as exc:
        raise ModelResponseError(f"{provider}: unusable response: {exc!r}", provider=provider) from exc


def settings_of(client: Any, *names: str) -> dict[str, Any]:
    """The constructor settings of a ready SDK client that it exposes (for a twin async client)."""
    return {name: value for name in names if (value := getattr(client, name, None)) is not None}


def client_kwargs(*, api_key: str | None, base_url: str | None) -> dict[str, Any]:
    """Constructor settings for an anthropic/openai client: the SDK's own retries off (every attempt
    is a durable step attempt), plus whichever of key and endpoint were given."""
    kwargs: dict[str, Any] = {"max_retries": 0}
    if api_key is not None:
        kwargs["api_key"] = api_key
    if base_url is not None:
        kwargs["base_url"] = base_url
    return kwargs


class LoopClients:
    """The async SDK client for the running event loop: the one given, or one built per loop on
    first use (an httpx pool belongs to the loop that opened it)."""

    def __init__(self, build: Callable[[], Any], given: Any = None) -> None:
        self._build = build
        self._given = given
        self._by_loop: weakref.WeakKeyDictionary[AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def current(self) -> Any:
        if self._given is not None:
            return self._given
        loop = get_running_loop()
        client = self._by_loop.get(loop)
        if client is None:
            client = self._by_loop[loop] = self._build()
        return client
