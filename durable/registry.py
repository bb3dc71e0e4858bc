"""``@durable_function`` and the lookup of handlers by name or ``file.py:func`` target."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

from .errors import HandlerNotFoundError

_REGISTRY: dict[str, Callable[..., Any]] = {}


class DurableFunction:
    """A registered handler: still callable as ``fn(event, ctx)``, plus its durable name."""

    def __init__(self, fn: Callable[..., Any], name: str, plugins: list[Any] | None = None) -> None:
        self.fn = fn
        self.name = name
        self.plugins = list(plugins or [])
        self.__name__ = getattr(fn, "__name__", name)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, event: Any, ctx: Any) -> Any:
        return self.fn(event, ctx)

    def __repr__(self) -> str:
        return f"<durable function {self.name!r}>"


@overload
def durable_function(fn: Callable[..., Any], /) -> DurableFunction: ...
@overload
def durable_function(*, name: str | None = None,
                     plugins: list[Any] | None = None) -> Callable[[Callable[..., Any]], DurableFunction]: ...


def durable_function(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
                     plugins: list[Any] | None = None) -> Any:
    """Register ``fn(event, ctx)`` as a durable function under ``name`` (default: its own name),
    with optional plugins (durable.plugins.Plugin). Registering does not run anything."""

    def register(target: Callable[..., Any]) -> DurableFunction:
        if isinstance(target, DurableFunction):
            # Decorated twice: keep the function, add the new name and plugins (never drop them).
            wrapped = target if name is None and not plugins else \
                DurableFunction(target.fn, name or target.name, [*target.plugins, *(plugins or [])])
        else:
            wrapped = DurableFunction(target, name or target.__name__, plugins)
        _REGISTRY[wrapped.name] = wrapped
        return wrapped

    return register(fn) if fn is not None else register


def is_async_handler(handler: Callable[..., Any]) -> bool:
    """True for an ``async def`` handler (plain, registered, or a callable with an async __call__):
    it gets an AsyncDurableContext and is awaited."""
    fn = handler.fn if isinstance(handler, DurableFunction) else handler
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def registered(name: str) -> Callable[..., Any] | None:
    return _REGISTRY.get(name)


def function_name(fn: Callable[..., Any]) -> str:
    return fn.name if isinstance(fn, DurableFunction) else getattr(fn, "__name__", "handler")


def resolve_target(target: str) -> Callable[..., Any]:
    """``path/to/file.py:func`` or ``package.module:func`` (or a registered name) to a handler."""
    if ":" not in target:
        found = registered(target)
        if found is not None:
            return found
        raise HandlerNotFoundError(f"unknown target {target!r}: expected path/to/file.py:func or "
                                   "package.module:func")
    module_ref, _, attr = target.rpartition(":")
    if not attr or not module_ref:
        raise HandlerNotFoundError(f"bad target {target!r}: expected path/to/file.py:func or package.module:func")
    module = _load_module(module_ref, target)
    fn = getattr(module, attr, None)
    as_function = getattr(fn, "__durable_function__", None)
    if as_function is not None and not isinstance(fn, type):  # an object that runs as a durable function
        fn = as_function()
    if fn is None or not callable(fn):
        raise HandlerNotFoundError(f"{module_ref} has no callable {attr!r} (target {target!r})")
    return fn  # type: ignore[no-any-return]


def _load_module(module_ref: str, target: str) -> Any:
    if module_ref.endswith(".py") or "/" in module_ref:
        path = Path(module_ref).resolve()
        if not path.is_file():
            raise HandlerNotFoundError(f"no such file {module_ref!r} (target {target!r})")
        module_name = f"_duragent_target_{path.stem}_{abs(hash(str(path))) & 0xffff:x}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise HandlerNotFoundError(f"cannot import {module_ref!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        except BaseException:
            # Never keep a half-run module: once the file is fixed, the next try runs it afresh.
            sys.modules.pop(module_name, None)
            raise
        return module
    if module_ref not in sys.modules:
        importlib.invalidate_caches()  # a module that appeared since the last try (a deploy) is found
    try:
        return importlib.import_module(module_ref)
    except ImportError as exc:
        raise HandlerNotFoundError(f"cannot import module {module_ref!r} (target {target!r}): {exc}") from None
