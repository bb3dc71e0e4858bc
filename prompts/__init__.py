"""Prompt templates: Markdown files with a front-matter header that declares their variables.

    ---
    name: summarize
    description: one line saying what the prompt is for
    variables: [topic, audience]
    ---
    Summarize {topic} for {audience}. Literal braces are doubled: {{ and }}.

Rendering is strict: every declared variable must be passed and nothing else; a placeholder
that is not declared (or a declared variable never used) is an error when the file is loaded.
Substitution is a plain scanner over ``{name}``, ``{{`` and ``}}``: no format specs, attribute
access or evaluation. A ``RenderedPrompt`` carries content hashes so that the agent can record
which prompt each model call saw and notice when a template changed between suspend and resume.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from duragent.durable.errors import UsageError

__all__ = ["PromptError", "PromptTemplate", "RenderedPrompt", "available", "load", "render"]

DEFAULT_DIRECTORY = Path(__file__).resolve().parent
"""Where bare names are looked up: the templates shipped in this package."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|\{|\}")
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*:\s*(.*)$")


class PromptError(UsageError):
    """A template that cannot be loaded, or a render with the wrong variables."""


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class RenderedPrompt:
    """The text to send, and where it came from."""

    text: str
    name: str
    hash: str
    """sha256 of ``text``, hex, first 16 characters."""
    template_hash: str
    """sha256 of the template file's source, hex, first 16 characters."""
    variables: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed template. Build with ``load(...)`` or ``PromptTemplate.from_string(...)``."""

    name: str
    variables: tuple[str, ...]
    """The declared variable names, in declaration order."""
    body: str
    """The template text after the front matter."""
    source: str
    """The whole file, front matter included (what ``template_hash`` hashes)."""
    template_hash: str
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """Every front-matter key (``name``, ``variables``, ``description``, ``version``...)."""
    path: Path | None = field(default=None, compare=False)
    _parts: tuple[str | tuple[str], ...] = field(default=(), compare=False, repr=False)

    @property
    def description(self) -> str:
        return str(self.metadata.get("description", ""))

    @classmethod
    def from_string(cls, source: str, *, name: str | None = None, path: Path | None = None) -> PromptTemplate:
        """Parse and check a template; PromptError says what is wrong and where."""
        source = source.replace("\r\n", "\n").removeprefix("\ufeff")
        where = str(path) if path else (name or "<string>")
        meta, body, body_line = _split_front_matter(source, where)
        template_name = str(meta.get("name") or name or (path.stem if path else "")) or "prompt"
        variables = _variables(meta.get("variables", []), where)
        parts = _parse_body(body, body_line, where)
        used = [p[0] for p in parts if isinstance(p, tuple)]
        undeclared = sorted({v for v in used if v not in variables}, key=used.index)
        if undeclared:
            lines = ", ".join(f"{{{v}}} (line {_line_of(body, v, body_line)})" for v in undeclared)
            raise PromptError(f"prompt {template_name!r} ({where}): placeholder {lines} not declared; declared "
                              f"variables: {list(variables)}. Add it to 'variables:' in the front matter, or "
                              "double the braces ({{ }}) for literal text")
        unused = [v for v in variables if v not in used]
        if unused:
            raise PromptError(f"prompt {template_name!r} ({where}): declared variable(s) {unused} never used "
                              "in the body; remove them from 'variables:' or use them as {name}")
        return cls(name=template_name, variables=variables, body=body, source=source,
                   template_hash=_hash(source), metadata=MappingProxyType(dict(meta)), path=path,
                   _parts=tuple(parts))

    def render(self, **variables: Any) -> RenderedPrompt:
        """Substitute every declared variable (``str()`` of each value); nothing more, nothing less."""
        missing = [v for v in self.variables if v not in variables]
        unknown = [v for v in variables if v not in self.variables]
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing variable(s) {missing}")
            if unknown:
                problems.append(f"unknown variable(s) {unknown}")
            raise PromptError(f"prompt {self.name!r}: {' and '.join(problems)}; declared variables: "
                              f"{list(self.variables)}")
        nones = [v for v in self.variables if variables[v] is None]
        if nones:
            raise PromptError(f"prompt {self.name!r}: variable(s) {nones} are None; pass text (an empty string "
                              "if nothing is meant)")
        text = "".join(part if isinstance(part, str) else str(variables[part[0]]) for part in self._parts)
        return RenderedPrompt(text=text, name=self.name, hash=_hash(text), template_hash=self.template_hash,
                              variables=MappingProxyType(dict(variables)))


# -- loading -------------------------------------------------------------------------------------

def load(name_or_path: str | Path, *, directory: str | Path | None = None) -> PromptTemplate:
    """A template by bare name (``"summarize"`` → ``<directory>/summarize.md``; the directory
    defaults to the templates shipped with this package) or by path (``"prompts/x.md"``)."""
    base = Path(directory) if directory is not None else DEFAULT_DIRECTORY
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or "\\" in text or text.endswith(".md"):
        path = Path(name_or_path)
        if not path.is_absolute() and directory is not None:
            path = base / path
    else:
        if not _NAME.match(text):
            raise PromptError(f"invalid prompt name {text!r}: use letters, digits, '_', '-' and '.'")
        path = base / f"{text}.md"
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = available(path.parent)
        raise PromptError(f"no prompt template {text!r} (looked for {path}); available in {path.parent}: "
                          f"{known}") from None
    except OSError as exc:
        raise PromptError(f"cannot read prompt template {path}: {exc}") from None
    return PromptTemplate.from_string(source, name=path.stem, path=path)


def render(name: str | Path, /, **variables: Any) -> RenderedPrompt:
    """``load(name).render(**variables)``: strict, see ``PromptTemplate.render``."""
    return load(name).render(**variables)


def available(directory: str | Path | None = None) -> list[str]:
    """Names of the templates in ``directory`` (default: the shipped ones)."""
    base = Path(directory) if directory is not None else DEFAULT_DIRECTORY
    return sorted(p.stem for p in base.glob("*.md")) if base.is_dir() else []


# -- parsing -------------------------------------------------------------------------------------

def _split_front_matter(source: str, where: str) -> tuple[dict[str, Any], str, int]:
    """(metadata, body, line number where the body starts)."""
    lines = source.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, _trim(source), 1
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            break
    else:
        raise PromptError(f"{where}: front matter opened with '---' on line 1 is never closed")
    meta = _parse_front_matter(lines[1:end], where)
    body_lines = lines[end + 1:]
    start = end + 2
    while body_lines and not body_lines[0].strip():
        body_lines.pop(0)
        start += 1
    return meta, _trim("\n".join(body_lines)), start


def _trim(body: str) -> str:
    return body.strip("\n").rstrip()


def _parse_front_matter(lines: list[str], where: str) -> dict[str, Any]:
    """A small YAML subset: ``key: value``, ``key: [a, b]`` and ``key:`` followed by ``- item`` lines."""
    meta: dict[str, Any] = {}
    current_list: list[Any] | None = None
    for number, line in enumerate(lines, start=2):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("- ") and current_list is not None:
            current_list.append(_scalar(stripped[2:].strip()))
            continue
        match = _KEY.match(line)
        if not match:
            raise PromptError(f"{where}: front matter line {number} is not 'key: value': {line!r}")
        key, value = match[1], match[2].strip()
        if key in meta:
            raise PromptError(f"{where}: front matter key {key!r} appears twice (line {number})")
        current_list = None
        if value == "":
            current_list = []
            meta[key] = current_list
        elif value.startswith("["):
            if not value.endswith("]"):
                raise PromptError(f"{where}: front matter line {number}: a list must close with ']' on the same line")
            inner = value[1:-1].strip()
            meta[key] = [_scalar(item.strip()) for item in inner.split(",")] if inner else []
        else:
            meta[key] = _scalar(value)
    return meta


def _scalar(value: str) -> Any:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def _variables(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise PromptError(f"{where}: 'variables' must be a list of names, e.g. [topic, audience]")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _IDENTIFIER.match(item):
            raise PromptError(f"{where}: variable name {item!r} is not an identifier (letters, digits, '_')")
        if item in names:
            raise PromptError(f"{where}: variable {item!r} is declared twice")
        names.append(item)
    return tuple(names)


def _parse_body(body: str, first_line: int, where: str) -> list[str | tuple[str]]:
    """Literal text and ``(variable,)`` parts. A lone brace is an error, not silently kept."""
    parts: list[str | tuple[str]] = []
    position = 0
    for match in _TOKEN.finditer(body):
        if match.start() > position:
            parts.append(body[position:match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif match.group(1):
            parts.append((match.group(1),))
        else:
            line = first_line + body.count("\n", 0, match.start())
            snippet = body[match.start():match.start() + 20].split("\n")[0]
            raise PromptError(f"{where}: line {line}: lone {token!r} in {snippet!r}; write {token * 2!r} for a "
                              "literal brace, or {name} (a declared variable) for a placeholder")
        position = match.end()
    if position < len(body):
        parts.append(body[position:])
    return _merge_literals(parts)


def _merge_literals(parts: list[str | tuple[str]]) -> list[str | tuple[str]]:
    merged: list[str | tuple[str]] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    return merged


def _line_of(body: str, variable: str, first_line: int) -> int:
    index = body.find("{" + variable + "}")
    return first_line + body.count("\n", 0, max(index, 0))
