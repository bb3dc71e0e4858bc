"""Our own judge for the AWS conformance requirements: placeholders, history, result, logs, callbacks.

Written from the rules in /work/shared/design/CONFORMANCE.md §1.3-1.7 (not from the AWS runner).
Every checker returns a list of human-readable error strings; an empty list means the stage passed.
Errors are collected rather than raised so a failing requirement reports everything at once.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import string
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

# `${GEN_STR:n}` in Variables: n random characters (§1.4).
_GEN_STR = re.compile(r"^\$\{GEN_STR:(\d+)\}$")
_GEN_ALPHABET = string.ascii_lowercase + string.digits
# A reference to a named placeholder inside any string; only bound names are replaced.
_NAME_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# History rule 3: a whole-string placeholder. Deliberately greedy, so `${A}-${B}` is ONE
# placeholder named `A}-${B` - that is how the reference runner behaves (§1.3 consequences).
_WHOLE_PLACEHOLDER = re.compile(r"^\$\{(.+)\}$")
# History rule 4 / callback names: `${/regex/}`.
_REGEX_PLACEHOLDER = re.compile(r"^\$\{/(.+)/\}$")

_MISSING = object()


class Bindings:
    """Placeholder name -> value map shared by every stage of one requirement run.

    Bindings are sticky: a name bound by Variables or by the first sight in the history keeps
    its value, and later sights (history, result, callback names, logs) compare against it.
    """

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = dict(initial or {})

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"Bindings({self._values!r})"

    @property
    def values(self) -> dict[str, Any]:
        """A copy of the current bindings (for reports and debugging)."""
        return dict(self._values)

    def get(self, name: str, default: Any = None) -> Any:
        """The bound value of ``name``, or ``default``."""
        return self._values.get(name, default)

    def copy(self) -> Bindings:
        """An independent copy, e.g. to try a history match without making bindings stick."""
        return Bindings(copy.deepcopy(self._values))

    def bind(self, name: str, value: Any) -> bool:
        """Bind ``name`` on first sight; afterwards report whether ``value`` equals the bound value."""
        if name in self._values:
            return bool(self._values[name] == value)
        self._values[name] = value
        return True

    def resolve_variables(self, variables: Mapping[str, Any] | None) -> None:
        """Bind the requirement's ``Variables`` block (§1.4).

        ``${GEN_STR:n}`` expands to n random ``[a-z0-9]`` chars, so every run uses fresh names
        (callback names, inputs) that an implementation cannot hard-code. Non-strings are bound
        as ``str(value)``; other strings are bound literally (no substitution inside them).
        """
        for name, value in (variables or {}).items():
            if not isinstance(value, str):
                self._values[name] = str(value)
                continue
            gen = _GEN_STR.match(value)
            if gen is not None:
                length = int(gen.group(1))
                self._values[name] = "".join(secrets.choice(_GEN_ALPHABET) for _ in range(length))
            else:
                self._values[name] = value

    def substitute(self, obj: Any) -> Any:
        """Replace already-bound ``${NAME}`` references in strings, walking dicts and lists.

        Unbound references stay literal (they may be bound later by the history match). A string
        that is exactly one bound placeholder becomes the bound value itself, keeping its type.
        """
        if isinstance(obj, str):
            return self._substitute_str(obj)
        if isinstance(obj, dict):
            return {key: self.substitute(value) for key, value in obj.items()}
        if isinstance(obj, list):
            return [self.substitute(item) for item in obj]
        return obj

    def _substitute_str(self, text: str) -> Any:
        whole = _NAME_REF.fullmatch(text)
        if whole is not None and whole.group(1) in self._values:
            value = self._values[whole.group(1)]
            return value if isinstance(value, str) else copy.deepcopy(value)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(self._values[name]) if name in self._values else match.group(0)

        return _NAME_REF.sub(replace, text)


# ---------------------------------------------------------------------------------------------
# History (§1.3)
# ---------------------------------------------------------------------------------------------


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _match_value(expected: Any, actual: Any, path: str, bindings: Bindings, errors: list[str]) -> None:
    """Apply the §1.3 rules in order; the first rule that applies decides."""
    # Rules 1 and 2: don't care (the key's presence was already checked by the parent dict).
    if isinstance(expected, dict) and not expected:
        return
    if isinstance(expected, str):
        if expected == "*":
            return
        regex = _REGEX_PLACEHOLDER.match(expected)
        if regex is None:
            # Rule 3: whole-string placeholder binds on first sight, then must stay equal.
            whole = _WHOLE_PLACEHOLDER.match(expected)
            if whole is not None:
                name = whole.group(1)
                if not bindings.bind(name, actual):
                    errors.append(
                        f"{path}: ${{{name}}} is bound to {_short(bindings.get(name))}, got {_short(actual)}"
                    )
                return
        else:
            # Rule 4: regex search on the string form of the actual value.
            try:
                found = re.search(regex.group(1), str(actual)) is not None
            except re.error as exc:
                errors.append(f"{path}: invalid regex {regex.group(1)!r}: {exc}")
                return
            if not found:
                errors.append(f"{path}: {_short(actual)} does not match regex /{regex.group(1)}/")
            return
    # Rule 5: every expected key must exist in the actual dict; extra actual keys are ignored.
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            errors.append(f"{path}: expected an object, got {_short(actual)}")
            return
        for key, sub_expected in expected.items():
            if key not in actual:
                errors.append(f"{path}.{key}: missing key")
                continue
            _match_value(sub_expected, actual[key], f"{path}.{key}", bindings, errors)
        return
    # Rule 6: lists have equal length and match element by element.
    if isinstance(expected, list):
        if not isinstance(actual, list):
            errors.append(f"{path}: expected a list, got {_short(actual)}")
            return
        if len(expected) != len(actual):
            errors.append(f"{path}: expected {len(expected)} element(s), got {len(actual)}: {_short(actual)}")
            return
        for index, (sub_expected, sub_actual) in enumerate(zip(expected, actual, strict=True)):
            _match_value(sub_expected, sub_actual, f"{path}[{index}]", bindings, errors)
        return
    # Rule 7: literal; strings get bound ${X} substituted first. Python == (1 == 1.0 == True).
    literal = bindings.substitute(expected) if isinstance(expected, str) else expected
    if literal != actual:
        errors.append(f"{path}: expected {_short(literal)}, got {_short(actual)}")


def _event_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def match_history(
    expected_events: Sequence[Mapping[str, Any]],
    actual_events: Sequence[Mapping[str, Any]],
    bindings: Bindings,
) -> list[str]:
    """Match expected events against the actual history by ``EventId`` (§1.3).

    Ordering is asserted only through each listed event's exact EventId; actual events that no
    expected event names (EventId 1, gaps, trailing events) are ignored. Bindings made here stick.
    """
    by_id: dict[int, Mapping[str, Any]] = {}
    for event in actual_events:
        event_id = _event_id(event.get("EventId"))
        if event_id is not None:
            by_id.setdefault(event_id, event)

    errors: list[str] = []
    for position, expected in enumerate(expected_events):
        event_id = _event_id(expected.get("EventId"))
        label = f"ExpectedExecutionHistory[{position}]"
        if event_id is None:
            errors.append(f"{label}: expected event has no integer EventId: {_short(dict(expected))}")
            continue
        label = f"EventId {event_id} ({expected.get('EventType', '?')})"
        actual = by_id.get(event_id)
        if actual is None:
            errors.append(f"{label}: no actual event with this EventId")
            continue
        _match_value(dict(expected), dict(actual), label, bindings, errors)
    return errors


# ---------------------------------------------------------------------------------------------
# Result (§1.5)
# ---------------------------------------------------------------------------------------------


def check_result(
    expected_result: Mapping[str, Any],
    status: str,
    result_json: str | bytes | None,
    bindings: Bindings,
) -> list[str]:
    """Compare the execution status, then (only on SUCCEEDED with a ``Result`` key) the result.

    The actual result is ``json.loads``-ed once (raw string if it is not JSON); a missing result
    is None, so ``Result: null`` passes when the execution returned nothing.
    """
    expected_status = expected_result.get("ExecutionStatus")
    if status != expected_status:
        return [f"ExecutionStatus: expected {expected_status!r}, got {status!r}"]
    if status != "SUCCEEDED" or "Result" not in expected_result:
        return []
    actual: Any = None
    if result_json is not None:
        try:
            actual = json.loads(result_json)
        except (TypeError, ValueError):
            actual = result_json.decode() if isinstance(result_json, bytes) else result_json
    expected = bindings.substitute(expected_result["Result"])
    if actual != expected:
        return [f"Result: expected {_short(expected)}, got {_short(actual)}"]
    return []


# ---------------------------------------------------------------------------------------------
# Logs (§1.7)
# ---------------------------------------------------------------------------------------------


def parse_log_line(line: str) -> dict[str, Any]:
    """A top-level JSON object line exposes its keys as fields; any other line is ``{message}``."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"message": stripped}


def _log_value_matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str):
        actual_text = str(actual).strip()
        if len(expected) >= 2 and expected.startswith("/") and expected.endswith("/"):
            return re.search(expected[1:-1], actual_text) is not None
        return actual_text == expected.strip()
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    return str(expected) == str(actual)


def _record_matches(matcher: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """All fields ANDed; each field must exist in the record."""
    return all(key in record and _log_value_matches(value, record[key]) for key, value in matcher.items())


def _sort_keys(records: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Order key per record: a shared ``timestamp`` (+ ``ingestionTime``) if every record has a
    comparable one, else the emission index. Equal keys mean concurrent records."""
    stamps = [record.get("timestamp", _MISSING) for record in records]
    numeric = all(isinstance(s, int | float) and not isinstance(s, bool) for s in stamps)
    textual = all(isinstance(s, str) for s in stamps)
    if records and (numeric or textual):
        return [
            (stamp, record.get("ingestionTime", 0) or 0)
            for stamp, record in zip(stamps, records, strict=True)
        ]
    return list(range(len(records)))


def _anchors(raw: Any) -> list[dict[str, Any]] | None:
    if raw is None:
        return []
    if isinstance(raw, dict):
        return [raw]
    if isinstance(raw, list) and all(isinstance(item, dict) for item in raw):
        return list(raw)
    return None


def _count_errors(entry: Mapping[str, Any], found: int, label: str) -> list[str]:
    count, low, high = entry.get("count"), entry.get("min_count"), entry.get("max_count")
    if count is not None:
        return [] if found == count else [f"{label}: expected exactly {count} match(es), got {found}"]
    if low is None and high is None:
        low = 1  # no constraint at all: at least one record must match
    errors: list[str] = []
    if low is not None and found < low:
        errors.append(f"{label}: expected at least {low} match(es), got {found}")
    if high is not None and found > high:
        errors.append(f"{label}: expected at most {high} match(es), got {found}")
    return errors


def check_logs(
    expected_logs: Sequence[Mapping[str, Any]],
    records: Sequence[Mapping[str, Any] | str],
    bindings: Bindings,
) -> list[str]:
    """Check ``ExpectedLogs`` entries against the execution's log records (§1.7).

    ``records`` are dicts in emission order (raw lines are parsed with :func:`parse_log_line`).
    Counts are over all records; ``after``/``before`` anchors require every own match to be at or
    after the last (at or before the first) anchor match, and an anchor matching nothing fails.
    """
    parsed = [parse_log_line(r) if isinstance(r, str) else dict(r) for r in records]
    keys = _sort_keys(parsed)
    order = sorted(range(len(parsed)), key=lambda i: keys[i])  # stable: ties keep emission order
    ordered = [parsed[i] for i in order]
    ordered_keys = [keys[i] for i in order]

    def matching(matcher: Mapping[str, Any]) -> list[int]:
        return [pos for pos, record in enumerate(ordered) if _record_matches(matcher, record)]

    errors: list[str] = []
    for index, raw_entry in enumerate(expected_logs):
        entry = bindings.substitute(dict(raw_entry)) if isinstance(raw_entry, Mapping) else raw_entry
        label = f"ExpectedLogs[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("match"), dict) or not entry["match"]:
            errors.append(f"{label}: invalid entry (needs a non-empty 'match' mapping): {_short(entry)}")
            continue
        label = f"{label} match({_short(entry['match'], 120)})"
        try:
            own = matching(entry["match"])
        except re.error as exc:
            errors.append(f"{label}: invalid regex: {exc}")
            continue
        errors.extend(_count_errors(entry, len(own), label))

        for direction in ("after", "before"):
            anchors = _anchors(entry.get(direction))
            if anchors is None:
                errors.append(f"{label}: '{direction}' must be a mapping or a list of mappings")
                continue
            for anchor in anchors:
                try:
                    hits = matching(anchor)
                except re.error as exc:
                    errors.append(f"{label}: invalid regex in {direction} anchor: {exc}")
                    continue
                if not hits:
                    errors.append(f"{label}: {direction} anchor {_short(anchor, 120)} matched no log records")
                    continue
                if not own:
                    continue  # the count check already reports missing matches
                if direction == "after" and ordered_keys[own[0]] < ordered_keys[hits[-1]]:
                    errors.append(
                        f"{label}: a match precedes the last {direction} anchor {_short(anchor, 120)}"
                    )
                if direction == "before" and ordered_keys[own[-1]] > ordered_keys[hits[0]]:
                    errors.append(
                        f"{label}: a match follows the first {direction} anchor {_short(anchor, 120)}"
                    )
    return errors


# ---------------------------------------------------------------------------------------------
# Callback actions (§1.6)
# ---------------------------------------------------------------------------------------------

CALLBACK_OPERATIONS = ("success", "failure", "heartbeat")
_ERROR_KEYS = ("ErrorType", "ErrorMessage", "ErrorData", "StackTrace")


class CallbackPayload(NamedTuple):
    """What to send for one action: ``(operation, data, delay_seconds)``.

    ``data`` is the success ``Result`` string (``json.dumps`` with default separators, or None
    when the action has no Payload), the failure ``Error`` dict (only the error keys the payload
    has, or None), or None for a heartbeat.
    """

    operation: str
    data: str | dict[str, Any] | None
    delay: float


def callback_action_matches(action: Mapping[str, Any], event_name: Any, bindings: Bindings) -> bool:
    """Whether an action's (substituted) ``CallbackName`` selects a CallbackStarted with this Name."""
    name = bindings.substitute(action.get("CallbackName"))
    if name == "*":
        return True
    if isinstance(name, str):
        regex = _REGEX_PLACEHOLDER.match(name)
        if regex is not None:
            return event_name is not None and re.search(regex.group(1), str(event_name)) is not None
    return bool(name == event_name)


def first_matching_action(
    actions: Sequence[Mapping[str, Any]],
    used: set[int],
    event_name: Any,
    bindings: Bindings,
) -> int | None:
    """Index of the first unused action that matches ``event_name`` (the caller marks it used)."""
    for index, action in enumerate(actions):
        if index not in used and callback_action_matches(action, event_name, bindings):
            return index
    return None


def callback_action_payload(action: Mapping[str, Any], bindings: Bindings | None = None) -> CallbackPayload:
    """Translate an action into what the runner sends; substitutes bound names if ``bindings`` given.

    Success payloads are serialised exactly like the runner (``json.dumps``, default separators)
    because engines must store those bytes verbatim (7-11 asserts ``'{"status": "approved"}'``).
    """
    resolved: Mapping[str, Any] = bindings.substitute(dict(action)) if bindings is not None else action
    operation = str(resolved.get("Operation", "")).lower()
    if operation not in CALLBACK_OPERATIONS:
        raise ValueError(f"unknown callback Operation {resolved.get('Operation')!r}")
    delay = float(resolved.get("Delay", 0) or 0)
    payload = resolved.get("Payload")
    if operation == "success":
        return CallbackPayload(operation, None if payload is None else json.dumps(payload), delay)
    if operation == "failure":
        if payload is None:
            return CallbackPayload(operation, None, delay)
        if not isinstance(payload, dict):
            raise ValueError(f"failure Payload must be a mapping of error fields, got {payload!r}")
        error = {key: payload[key] for key in _ERROR_KEYS if key in payload}
        return CallbackPayload(operation, error or None, delay)
    return CallbackPayload(operation, None, delay)
