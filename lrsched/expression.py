"""The ``expression`` language: a small, safe arithmetic over ``step`` and named parameters.

Text is parsed with Python's ``ast`` and checked against a whitelist; the checked tree is then
compiled to ``jnp`` operations. Nothing is ever passed to ``eval`` or ``exec``.

Allowed: numbers, ``step``, the given parameter names, ``pi``; ``+ - * / // % **``, unary ``-``
and ``+``; comparisons ``< <= > >= == !=`` (chains too); calls to the functions in
:data:`FUNCTIONS` with their exact number of positional arguments.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
from jax import Array

from lrsched._numerics import floor_divide, true_divide
from lrsched.limits import (
    FLOAT32_MAX,
    MAX_EXPRESSION_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_EXPRESSION_NODES,
)

#: The callable functions: name -> (number of arguments, implementation).
FUNCTIONS: dict[str, tuple[int, Callable[..., Array]]] = {
    "where": (3, jnp.where),
    "minimum": (2, jnp.minimum),
    "maximum": (2, jnp.maximum),
    "exp": (1, jnp.exp),
    "log": (1, jnp.log),
    "sqrt": (1, jnp.sqrt),
    "sin": (1, jnp.sin),
    "cos": (1, jnp.cos),
    "floor": (1, jnp.floor),
    "ceil": (1, jnp.ceil),
    "abs": (1, jnp.abs),
    "clip": (3, jnp.clip),
}
#: Names with a fixed value.
CONSTANTS: dict[str, float] = {"pi": math.pi}
#: The name of the step variable.
STEP = "step"
#: Names a parameter may not take.
RESERVED = frozenset({STEP, *FUNCTIONS, *CONSTANTS})

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: true_divide,
    ast.FloorDiv: floor_divide,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_REFUSED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access (`.`)",
    ast.Subscript: "subscripts (`[...]`)",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.IfExp: "`a if c else b` (use where(c, a, b))",
    ast.BoolOp: "`and`/`or` (combine conditions with where)",
    ast.NamedExpr: "assignment (`:=`)",
    ast.JoinedStr: "strings",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.Starred: "`*` unpacking",
    ast.Await: "await",
    ast.Yield: "yield",
}


class ExpressionError(ValueError):
    """An expression outside the language, with the 1-based column where the problem starts."""

    def __init__(self, message: str, column: int | None = None) -> None:
        where = f" (at column {column})" if column is not None else ""
        super().__init__(f"{message}{where}")
        self.column = column


@functools.lru_cache(maxsize=1024)
def parse_expression(text: str, param_names: tuple[str, ...]) -> ast.expr:
    """Parse and check `text`; return its syntax tree, or raise :class:`ExpressionError`.

    Cached: a spec is parsed when validated and again when compiled.
    """
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"the expression is {len(text)} characters long; the limit is {MAX_EXPRESSION_LENGTH}"
        )
    if not text.strip():
        raise ExpressionError(
            "the expression is empty; write a formula of step, e.g. '0.1 * 0.9 ** step'"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"not a valid expression: {error.msg}", error.offset) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("the expression is nested too deeply or malformed") from None
    _Checker(frozenset(param_names)).check(tree.body)
    return tree.body


class _Checker:
    def __init__(self, param_names: frozenset[str]) -> None:
        self.names = param_names | {STEP} | set(CONSTANTS)
        self.count = 0

    def check(self, node: ast.expr, depth: int = 1) -> None:
        self.count += 1
        column = getattr(node, "col_offset", -1) + 1 or None
        if self.count > MAX_EXPRESSION_NODES:
            raise ExpressionError(
                f"the expression has more than {MAX_EXPRESSION_NODES} parts; simplify it"
            )
        if depth > MAX_EXPRESSION_DEPTH:
            raise ExpressionError(
                f"the expression nests deeper than {MAX_EXPRESSION_DEPTH} levels; simplify it",
                column,
            )
        if isinstance(node, ast.Constant):
            self._check_number(node.value, column)
        elif isinstance(node, ast.Name):
            if node.id not in self.names:
                known = ", ".join(sorted(self.names))
                raise ExpressionError(
                    f"unknown name {node.id!r}; the names you can use are {known} "
                    "(add it to params to give it a value)",
                    column,
                )
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ExpressionError(
                    f"the operator {type(node.op).__name__} is not allowed; use + - * / // % **",
                    column,
                )
            self.check(node.left, depth + 1)
            self.check(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise ExpressionError(
                    f"the unary operator {type(node.op).__name__} is not allowed; use - or +",
                    column,
                )
            self.check(node.operand, depth + 1)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _COMPARE:
                    raise ExpressionError(
                        f"the comparison {type(op).__name__} is not allowed; use < <= > >= == !=",
                        column,
                    )
            for operand in (node.left, *node.comparators):
                self.check(operand, depth + 1)
        elif isinstance(node, ast.Call):
            self._check_call(node, column, depth)
        else:
            what = _REFUSED.get(type(node), type(node).__name__)
            raise ExpressionError(
                f"{what} is not allowed; use numbers, step, params, arithmetic and the functions "
                + ", ".join(FUNCTIONS),
                column,
            )

    def _check_call(self, node: ast.Call, column: int | None, depth: int) -> None:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ExpressionError(
                f"calling {name!r} is not allowed; the functions are " + ", ".join(FUNCTIONS),
                column,
            )
        arity, _ = FUNCTIONS[node.func.id]
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ExpressionError(f"{node.func.id}() takes positional arguments only", column)
        if len(node.args) != arity:
            raise ExpressionError(
                f"{node.func.id}() takes {arity} argument{'s' * (arity > 1)}, got {len(node.args)}",
                column,
            )
        for arg in node.args:
            self.check(arg, depth + 1)

    @staticmethod
    def _check_number(value: object, column: int | None) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ExpressionError(
                f"the literal {value!r} is not allowed; only real numbers are", column
            )
        try:
            magnitude = abs(float(value))
        except OverflowError:
            magnitude = math.inf
        if not magnitude <= FLOAT32_MAX:
            raise ExpressionError(f"the number {value!r} overflows float32", column)


def compile_expression(
    tree: ast.expr,
) -> Callable[[Mapping[str, Array], Array], Array]:
    """Turn a checked tree into ``f(params, step) -> value`` built from ``jnp`` operations."""

    def build(node: ast.expr) -> Callable[[Mapping[str, Array], Array], Any]:
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int | float)  # the checker let only numbers through
            number = float(node.value)
            return lambda params, step: number
        if isinstance(node, ast.Name):
            name = node.id
            if name == STEP:
                return lambda params, step: step
            if name in CONSTANTS:
                constant = CONSTANTS[name]
                return lambda params, step: constant
            return lambda params, step: params[name]
        if isinstance(node, ast.BinOp):
            binary, left, right = _BINARY[type(node.op)], build(node.left), build(node.right)
            return lambda params, step: binary(
                jnp.asarray(left(params, step), jnp.float32), right(params, step)
            )
        if isinstance(node, ast.UnaryOp):
            unary, operand = _UNARY[type(node.op)], build(node.operand)
            return lambda params, step: unary(jnp.asarray(operand(params, step), jnp.float32))
        if isinstance(node, ast.Compare):
            ops = [_COMPARE[type(op)] for op in node.ops]
            operands = [build(child) for child in (node.left, *node.comparators)]

            def compare(params: Mapping[str, Array], step: Array) -> Array:
                values = [jnp.asarray(f(params, step), jnp.float32) for f in operands]
                result = jnp.asarray(True)
                for op, a, b in zip(ops, values, values[1:], strict=False):
                    result = jnp.logical_and(result, op(a, b))
                return result

            return compare
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        _, function = FUNCTIONS[node.func.id]
        args = [build(arg) for arg in node.args]
        return lambda params, step: function(
            *(jnp.asarray(f(params, step), jnp.float32) for f in args)
        )

    body = build(tree)

    def evaluate(params: Mapping[str, Array], step: Array) -> Array:
        value = jnp.asarray(body(params, step), jnp.float32)
        return jnp.broadcast_to(value, jnp.shape(step))

    return evaluate
