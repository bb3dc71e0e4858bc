"""From a typed Python function to what a model is told about it: a JSON schema of the
arguments (built by pydantic from the signature) and descriptions taken from the docstring.

Supported docstrings: Google style (an ``Args:`` section) and reST (``:param name: text``).
``Annotated[T, Field(description=...)]`` on a parameter wins over the docstring.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from duragent.durable import AsyncDurableContext, DurableContext, UsageError
from duragent.durable.context import ContextBase

from .errors import ToolValidationError

_GOOGLE_ARGS = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments)\s*:\s*$", re.I)
_GOOGLE_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns?|Yields?|Raises|"
    r"Examples?|Notes?|Attributes|See Also|Warnings?|Todo|References)\s*:\s*$", re.I)
_GOOGLE_PARAM = re.compile(r"^\*{0,2}(?P<name>\w+)\s*(\([^)]*\))?\s*:\s*(?P<text>.*)$")
_REST_FIELD = re.compile(r"^:(?P<kind>\w+)(?P<rest>[^:]*):\s*(?P<text>.*)$")
_DATA_KEYS = frozenset({"default", "examples", "example", "const", "enum"})
_NESTED_SCHEMAS = frozenset({"properties", "$defs", "definitions", "patternProperties"})


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into (description, {parameter: description}).

    The description is the prose before the first section (``Args:``, ``Returns:``, ``:param``...).
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    params: dict[str, str] = {}
    i = 0
    in_prose = True
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if _GOOGLE_SECTION.match(stripped):
            in_prose = False
            indent = _indent(line)
            block: list[str] = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
                block.append(lines[i])
                i += 1
            if _GOOGLE_ARGS.match(stripped):
                params.update(_google_params(block))
            continue
        field = _REST_FIELD.match(stripped)
        if field:
            in_prose = False
            indent = _indent(line)
            text = [field["text"].strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) > indent:
                text.append(lines[i].strip())
                i += 1
            if field["kind"] in ("param", "parameter", "arg", "argument", "key", "keyword"):
                words = field["rest"].split()
                if words:
                    params[words[-1].lstrip("*")] = " ".join(t for t in text if t)
            continue
        if in_prose:
            description.append(line)
        i += 1
    return "\n".join(description).strip(), params


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_params(block: list[str]) -> dict[str, str]:
    content = [line for line in block if line.strip()]
    if not content:
        return {}
    base = min(_indent(line) for line in content)
    params: dict[str, str] = {}
    current: str | None = None
    for line in content:
        match = _GOOGLE_PARAM.match(line.strip()) if _indent(line) == base else None
        if match:
            current = match["name"]
            params[current] = match["text"].strip()
        elif current is not None:
            params[current] = f"{params[current]} {line.strip()}".strip()
    return params


# -- signatures --------------------------------------------------------------------------------

def type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations (``Annotated`` kept); ``DurableContext`` resolves even when the module
    imported it under ``TYPE_CHECKING`` only."""
    try:
        return typing.get_type_hints(fn, localns={"DurableContext": DurableContext,
                                                  "AsyncDurableContext": AsyncDurableContext}, include_extras=True)
    except Exception as exc:
        raise UsageError(f"cannot resolve the type hints of tool function {_qualname(fn)}: {exc}. Tool "
                         "parameter types must be importable at module level") from exc


def is_context_parameter(param: inspect.Parameter, hint: Any) -> bool:
    """A parameter that receives the context (DurableContext or AsyncDurableContext): annotated so,
    or named ``ctx``."""
    if param.name == "ctx":
        return True
    hint = _strip_annotated(hint)
    return isinstance(hint, type) and issubclass(hint, ContextBase)


def _strip_annotated(hint: Any) -> Any:
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def _has_description(hint: Any, default: Any) -> bool:
    metadata: list[Any] = []
    while typing.get_origin(hint) is Annotated:
        metadata.extend(hint.__metadata__)
        hint = typing.get_args(hint)[0]
    if isinstance(default, FieldInfo):
        metadata.append(default)
    return any(isinstance(m, FieldInfo) and m.description for m in metadata)


def _field_name(name: str) -> tuple[str, bool]:
    """A pydantic-safe field name for a parameter, and whether it needs an alias."""
    if name.startswith("_") or name.startswith("model_") or hasattr(BaseModel, name):
        return f"arg_{name}", True
    return name, False


def arguments_model(fn: Callable[..., Any], *, model_name: str, skip_first: bool,
                    descriptions: dict[str, str]) -> type[BaseModel]:
    """A pydantic model of ``fn``'s parameters (the context parameter left out), extra forbidden."""
    hints = type_hints(fn)
    params = list(inspect.signature(fn).parameters.values())
    if skip_first:
        params = params[1:]
    fields: dict[str, Any] = {}
    for param in params:
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise UsageError(f"tool function {_qualname(fn)} takes *{param.name}; a tool needs named, typed "
                             "parameters so that the model can be told about them")
        hint = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        extra: dict[str, Any] = {}
        if descriptions.get(param.name) and not _has_description(hint, default):
            extra["description"] = descriptions[param.name]
        field_name, aliased = _field_name(param.name)
        if aliased:
            extra["alias"] = param.name
        fields[field_name] = (Annotated[hint, Field(**extra)] if extra else hint, default)
    try:
        return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)
    except Exception as exc:
        raise UsageError(f"cannot build an argument schema for tool function {_qualname(fn)}: {exc}") from exc


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema without pydantic's generated titles (noise to a model)."""
    schema = _without_titles(model.model_json_schema(by_alias=True))
    schema.setdefault("properties", {})
    return schema  # type: ignore[no-any-return]


def _without_titles(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in _DATA_KEYS:
            out[key] = value
        elif key in _NESTED_SCHEMAS and isinstance(value, dict):
            out[key] = {name: _without_titles(sub) for name, sub in value.items()}
        else:
            out[key] = _without_titles(value)
    return out


# -- validation --------------------------------------------------------------------------------

def validate_arguments(model: type[BaseModel], tool_name: str, arguments: Any) -> dict[str, Any]:
    """Validated python kwargs keyed by parameter name, or ToolValidationError for the model."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolValidationError(
            f"Invalid arguments for tool {tool_name!r}: expected a JSON object of named arguments, got "
            f"{type(arguments).__name__} {_show(arguments)}. Call the tool again with an object.",
            tool_name=tool_name, errors=[{"field": "", "message": "arguments must be a JSON object"}])
    try:
        instance = model.model_validate(arguments)
    except ValidationError as exc:
        raise _friendly(exc, model, tool_name) from None
    return {(info.alias or name): getattr(instance, name) for name, info in type(instance).model_fields.items()}


def _friendly(exc: ValidationError, model: type[BaseModel], tool_name: str) -> ToolValidationError:
    accepted = [info.alias or name for name, info in model.model_fields.items()]
    problems: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False):
        field = _location(error.get("loc", ()))
        kind = error.get("type")
        if kind == "missing":
            message = "missing required argument"
        elif kind == "extra_forbidden":
            message = ("unexpected argument; this tool takes " +
                       (", ".join(accepted) if accepted else "no arguments"))
        else:
            message = f"{error.get('msg', 'invalid value')} (got {_show(error.get('input'))})"
        problems.append({"field": field, "message": message, "type": kind})
    count = len(problems)
    lines = [f"Invalid arguments for tool {tool_name!r} ({count} problem{'s' if count != 1 else ''}); "
             "fix them and call the tool again:"]
    lines += [f"- {p['field'] or '(arguments)'}: {p['message']}" for p in problems]
    return ToolValidationError("\n".join(lines), tool_name=tool_name, errors=problems)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _qualname(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
