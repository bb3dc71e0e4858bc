"""``calculator``: arithmetic for models, evaluated on the syntax tree, never with ``eval``.

Allowed: int and float literals, ``+ - * / // % **``, unary ``+ -``, parentheses, the constants
in ``CONSTANTS`` and calls of the functions in ``FUNCTIONS``. Anything else (names, attributes,
subscripts, other calls, strings) is refused, and so are results too big to be useful.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from ..errors import ToolError
from ..tool import tool

MAX_EXPRESSION_CHARS = 1000
MAX_INT_BITS = 10_000
"""Integers beyond this (about 3000 digits) are refused rather than computed."""
MAX_DEPTH = 50

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs, "round": round, "min": min, "max": max,
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log2": math.log2, "log10": math.log10,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "atan2": math.atan2, "hypot": math.hypot, "floor": math.floor, "ceil": math.ceil,
    "factorial": math.factorial, "degrees": math.degrees, "radians": math.radians,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculatorError(ToolError):
    """The expression is not allowed or cannot be computed."""


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression, or CalculatorError saying what was refused."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression too long ({len(expression)} characters, at most {MAX_EXPRESSION_CHARS})")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not a valid expression: {exc.msg}") from None
    try:
        return _eval(tree.body, 0)
    except CalculatorError:
        raise
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("the result is too large") from None
    except (ValueError, TypeError) as exc:
        raise CalculatorError(f"cannot compute: {exc}") from None


def _eval(node: ast.AST, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CalculatorError("expression nested too deeply")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError(f"only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, depth + 1), _eval(node.right, depth + 1)
        _check_size(node.op, left, right)
        return _fit(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, depth + 1))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}; allowed constants: {', '.join(CONSTANTS)}")
    if isinstance(node, ast.Call):
        return _call(node, depth)
    if isinstance(node, ast.Attribute):
        raise CalculatorError("attribute access is not allowed")
    if isinstance(node, ast.BinOp):
        raise CalculatorError(f"operator {type(node.op).__name__} is not allowed; use + - * / // % **")
    raise CalculatorError(f"{type(node).__name__} is not allowed in a calculator expression")


def _call(node: ast.Call, depth: int) -> Any:
    if not isinstance(node.func, ast.Name):
        raise CalculatorError("only calls of plain function names are allowed, e.g. sqrt(2)")
    name = node.func.id
    if name not in FUNCTIONS:
        raise CalculatorError(f"function {name!r} is not allowed; allowed: {', '.join(FUNCTIONS)}")
    if node.keywords:
        raise CalculatorError(f"{name}() takes positional arguments only")
    args = [_eval(arg, depth + 1) for arg in node.args]
    if name == "factorial" and args and isinstance(args[0], int) and args[0] > 1000:
        raise CalculatorError("factorial argument too large (at most 1000)")
    return _fit(FUNCTIONS[name](*args))


def _check_size(op: ast.operator, left: Any, right: Any) -> None:
    """Refuse integer powers and products whose result would be enormous, before computing."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return
    if isinstance(op, ast.Pow) and right > 0 and abs(left) > 1 and \
            (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
        raise CalculatorError(f"the result of {left} ** {right} is too large (limit about {MAX_INT_BITS} bits)")
    if isinstance(op, ast.Mult) and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
        raise CalculatorError(f"the result is too large (limit about {MAX_INT_BITS} bits)")


def _fit(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError(f"the result is too large (limit about {MAX_INT_BITS} bits)")
    if isinstance(value, complex):
        raise CalculatorError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("the result is not a finite number (too large, or undefined)")
    return value


@tool
def calculator(expression: Annotated[str, Field(max_length=MAX_EXPRESSION_CHARS)]) -> int | float:
    """Evaluate an arithmetic expression and return the number.

    Supports + - * / // % ** and parentheses, the constants pi, e, tau, and the functions abs,
    round, min, max, sqrt, exp, log (natural, or log(x, base)), log2, log10, sin, cos, tan, asin,
    acos, atan, atan2, hypot, floor, ceil, factorial, degrees, radians (angles in radians).

    Args:
        expression: the expression, e.g. "(2 + 3) * sqrt(16) / 7".
    """
    return evaluate(expression)
