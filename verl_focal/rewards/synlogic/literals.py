"""What a SynLogic verifier's ``eval`` of a piece of model output returns, found without running it.

``arrow_maze`` and ``goods_exchange`` call ``eval`` on part of the response and take another reading when it
raises. :func:`python_value` walks the expression in Python's evaluation order and stops at the first step whose
outcome is not certain without running code:

- literals and containers are built (``1``, ``'a'``, ``(1, [2])``, ``{1: 2}``, ``...``), and ``+``/``-`` of
  numbers, ``+`` of two strings, bytes, tuples or lists are computed (bounded by the text's size);
- a name undefined for the verifier raises (``NameError``: a model that writes ``((Alice, book),)`` unquoted
  reaches the verifier's fallback, as there), as do calling a literal (``('a', 'b')('c', 'd')``, a missing
  comma), an unhashable set element or key, and ``+``/``-`` where Python refuses them (``1 + 'a'``, ``-max``);
- a builtin name or one of the verifier module's globals stands for an object that is neither text, nor a
  container, nor JSON (:data:`OPAQUE`);
- anything else whose operands were reached without error (a call of a builtin, ``*``, attributes, subscripts,
  comparisons, comprehensions, f-strings, dunder names, the verifier's own local variables) raises
  :class:`NotEvaluated`, and the rules score the answer as wrong.
"""

from __future__ import annotations

import ast
import builtins
import operator
from typing import Any

_BUILTIN_NAMES = frozenset(name for name in vars(builtins) if not name.startswith("_"))
_LITERALS = (int, float, complex, bool, str, bytes, tuple, list, dict, set, frozenset, type(None), type(...))
_NUMBERS = (int, float, complex)
_SEQUENCES = (str, bytes, tuple, list)


class EvalFailed(Exception):
    """``eval`` would raise (syntax, undefined name, unhashable key, ...): the verifier takes its fallback."""


class NotEvaluated(Exception):
    """The value depends on running the answer as code: not computed, the answer is scored wrong."""


class _Opaque:
    """A builtin function or class, or a module the verifier imported, as ``eval`` would return it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


OPAQUE = _Opaque()


def python_value(source: str, module_names: frozenset[str] = frozenset(),
                 local_names: frozenset[str] = frozenset()) -> Any:
    """``eval(source)`` in a verifier whose module defines ``module_names`` and whose function has the variables
    ``local_names``; raises :class:`EvalFailed` where ``eval`` raises, :class:`NotEvaluated` where the value is
    not certain without running code."""
    try:
        tree = ast.parse(source.lstrip(" \t"), mode="eval")  # eval() drops leading spaces and tabs too
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as error:
        raise EvalFailed(type(error).__name__) from None
    try:
        return _Evaluator(_BUILTIN_NAMES | module_names, local_names).value(tree.body)
    except RecursionError:  # deeper than the parser allows already; eval would fail as well
        raise EvalFailed("RecursionError") from None


class _Evaluator:
    def __init__(self, known: frozenset[str], local_names: frozenset[str]):
        self.known, self.local_names = known, local_names

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and not any(isinstance(e, ast.Starred) for e in node.elts):
            items = [self.value(element) for element in node.elts]
            return self.build(lambda: {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](items))
        if isinstance(node, ast.Dict) and None not in node.keys:  # ``**`` unpacking runs code
            pairs = [(self.value(key), self.value(value)) for key, value in zip(node.keys, node.values)]
            return self.build(lambda: dict(pairs))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            operand = self.value(node.operand)
            return self.build(lambda: (operator.pos if isinstance(node.op, ast.UAdd) else operator.neg)(operand),
                              computable=isinstance(operand, _NUMBERS))
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            return self.add_or_subtract(node)
        if isinstance(node, ast.Call):
            function = self.value(node.func)
            for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
                self.value(argument.value if isinstance(argument, ast.Starred) else argument)
            if isinstance(function, _LITERALS):
                raise EvalFailed("TypeError: not callable")
            raise NotEvaluated("call")
        self.operands_first(node)
        raise NotEvaluated(type(node).__name__)

    def name(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") or name in self.local_names:
            raise NotEvaluated(f"name {name!r}")
        if name not in self.known:
            raise EvalFailed(f"NameError: {name}")
        return OPAQUE

    def build(self, make, computable: bool = True) -> Any:
        if not computable:
            raise EvalFailed("TypeError")  # e.g. -'a', -(builtin): Python raises before anything runs
        try:
            return make()
        except (TypeError, ValueError, MemoryError) as error:  # unhashable element or key
            raise EvalFailed(type(error).__name__) from None

    def add_or_subtract(self, node: ast.BinOp) -> Any:
        left, right = self.value(node.left), self.value(node.right)
        add = isinstance(node.op, ast.Add)
        if isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS):
            return self.build(lambda: left + right if add else left - right)
        if add and type(left) is type(right) and isinstance(left, _SEQUENCES):
            return left + right
        if not add and isinstance(left, (set, frozenset)) and isinstance(right, (set, frozenset)):
            return left - right
        raise EvalFailed("TypeError: unsupported operand")  # 1 + 'a', [1] + (2,), 1 + max: no builtin adds

    def operands_first(self, node: ast.AST) -> None:
        """Evaluate what Python evaluates before the operation itself, so that an undefined name there raises
        first (``python[[1]]``: ``NameError``); a short-circuit or a condition stops the walk."""
        if isinstance(node, ast.BinOp):
            children = [node.left, node.right]
        elif isinstance(node, (ast.UnaryOp, ast.Attribute, ast.Starred, ast.NamedExpr, ast.Await)):
            children = [getattr(node, "operand", None) or node.value]
        elif isinstance(node, ast.Subscript):
            children = [node.value, node.slice]
        elif isinstance(node, ast.Compare):
            children = [node.left, node.comparators[0]]
        elif isinstance(node, ast.BoolOp):
            children = node.values[:1]
        elif isinstance(node, ast.IfExp):
            children = [node.test]
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            children = [node.generators[0].iter]
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):  # with a starred element: up to that one
            children = [e.value if isinstance(e, ast.Starred) else e for e in node.elts[:_first_starred(node) + 1]]
        elif isinstance(node, ast.Slice):
            children = [part for part in (node.lower, node.upper, node.step) if part is not None]
        else:
            children = []
        for child in children:
            self.value(child)


def _first_starred(node: ast.Tuple | ast.List | ast.Set) -> int:
    return next(i for i, element in enumerate(node.elts) if isinstance(element, ast.Starred))
