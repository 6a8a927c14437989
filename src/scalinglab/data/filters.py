"""Row filters (``where=``, CLI ``--where``): a small expression language, read as data.

The language
    columns     bare names (``params``, ``config``) or any name in backticks
                (```model/params```, ```Model Size```)
    values      numbers (``3``, ``-2.5``, ``1e8``), text in quotes (``'a'`` or ``"a"``),
                ``True`` / ``False``
    comparisons ``== != < <= > >=``, chained as in Python (``1e8 <= params < 1e9``)
    membership  ``config in ['a', 'b']``, ``seed not in [1, 2]``
    logic       ``and``, ``or``, ``not`` (also ``&``, ``|``, ``~``, with the precedence of
                ``and`` / ``or``, as pandas reads them), parentheses
    arithmetic  ``+ - * / **`` and unary ``-`` on numbers; ``log10(x)``, ``log(x)``, ``abs(x)``

Semantics.  A column holding numbers compares as numbers, one holding text as text (the readers
turn numeric run columns such as '2.8B' into numbers first); comparing text with a number is
refused, naming the column.  A missing value (NaN, empty cell) satisfies no comparison and no
membership test, ``!=`` and ``not in`` included.  The whole expression must be true or false per
row.

Safety.  The text is never evaluated as Python: it is parsed by
:func:`scalinglab.util.expression.parse_expression` (length and depth capped, as formula laws
are) after backtick names become placeholders, and the tree is walked with a whitelist of node
types over numpy arrays (floats: ``**`` of huge exponents is ``inf``, not a hang).  Attribute
access, subscripts, other calls, ``@`` variables, lambdas, comprehensions, f-strings, dunder
names and names that are not columns are refused with :class:`FilterError`, naming the piece.
"""
from __future__ import annotations

import ast
import operator
from typing import NamedTuple

import numpy as np
import pandas as pd

from scalinglab.util.expression import NODE_KINDS, ExpressionError, parse_expression, piece
from scalinglab.util.errors import ParamText

FUNCTIONS = {"log10": np.log10, "log": np.log, "abs": np.abs}
ALLOWED = ("column names (`backticks` around names with spaces or symbols), numbers, 'text', "
           "comparisons == != < <= > >= (chained: 1e8 <= params < 1e9), in [...] / not in [...], "
           "and / or / not (or & | ~), + - * / **, parentheses, and "
           + ", ".join(f"{f}(x)" for f in FUNCTIONS))
EXAMPLE = "\"config == 'a' and params > 1e8\""

_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_ARITHMETIC = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide,
               ast.Pow: np.power}
_OPERATOR_TEXT = {ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
                  ast.BitXor: "^ (write ** for a power)", ast.Is: "`is`; write ==", ast.IsNot: "`is not`; write !="}
_SHOWN = 200                       # longer expressions are shown by their start in messages
_KIND_WORDS = {"num": "a number", "str": "text", "bool": "a condition (true or false)"}


class FilterError(ValueError):
    """A ``where`` expression that is refused or cannot select rows; the message names the piece."""


class _Value(NamedTuple):
    kind: str            # "num", "str" or "bool"
    data: object         # an array with one value per row, or one scalar
    label: str           # how messages name it: "column 'config'", "'a'", ...

    @property
    def per_row(self) -> bool:
        return isinstance(self.data, np.ndarray)


def where_mask(frame: pd.DataFrame, where: str, *, source: str | None = None) -> np.ndarray:
    """The rows of ``frame`` that ``where`` selects, a boolean array; FilterError otherwise
    (its message starts with ``source``, when given)."""
    if not isinstance(where, str) or not where.strip():
        raise FilterError(_subject(where, source) + f": give a condition as text, e.g. {EXAMPLE}")
    return _Evaluator(frame, where, _subject(where, source)).mask()


def select_rows(frame: pd.DataFrame, where: str, *, source: str | None = None,
                view: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of ``frame`` that ``where`` selects (FilterError when none or when refused).
    ``view``: the same rows as the expression should read them (e.g. with numbers parsed)."""
    kept = frame[where_mask(frame if view is None else view, where, source=source)]
    if len(kept) == 0:
        raise FilterError(_subject(where, source) + f" selects none of the {len(frame)} rows")
    return kept


def _subject(where, source: str | None) -> str:
    """"SOURCE: where='...'" (the CLI: --where "..."), a long expression shortened to its start."""
    if isinstance(where, str) and len(where) > _SHOWN:
        subject = ParamText(f"{{where}}... ({len(where)} characters)", where=where[:_SHOWN // 2])
    else:
        subject = ParamText("{where}", where=where)
    return (source + ": " if source else "") + subject


# ------------------------------------------------------------------------------ reading the text


def _placeholders(where: str, refuse) -> tuple[str, dict[str, str]]:
    """(``where`` with each `backtick name` replaced by a placeholder identifier and & | read as
    and / or, {placeholder: column name}); a ``@`` outside quotes is refused here, since Python's
    parser would only call it a syntax error."""
    prefix = "_col"
    while prefix in where:
        prefix += "_"
    out, names, quote, i = [], {}, None, 0
    while i < len(where):
        ch = where[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(where):
                out.append(where[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "`":
            end = where.find("`", i + 1)
            if end < 0:
                raise refuse(f"the backtick at character {i + 1} is never closed (write `column name`)")
            name = where[i + 1:end]
            if not name:
                raise refuse(f"the backticks at character {i + 1} hold no column name")
            key = next((k for k, v in names.items() if v == name), f"{prefix}{len(names)}_")
            names[key] = name
            out.append(key)
            i = end
        elif ch == "@":
            token = "@" + "".join(_identifier_run(where, i + 1))
            raise refuse(f"{token!r} (a reference to a Python variable) is not allowed: only the data's columns "
                         "can be named", allowed=True)
        elif ch == "&":
            out.append(" and ")
        elif ch == "|":
            out.append(" or ")
        else:
            out.append(ch)
        i += 1
    return "".join(out), names


def _identifier_run(text: str, start: int):
    for ch in text[start:]:
        if not (ch.isalnum() or ch in "_."):
            return
        yield ch


# ------------------------------------------------------------------------------ evaluating the tree


class _Evaluator:
    def __init__(self, frame: pd.DataFrame, where: str, subject: str):
        self.frame, self.subject = frame, subject
        self.columns = {str(c): c for c in frame.columns}
        self.src, self.names = _placeholders(where, self.refusal)
        try:
            self.tree = parse_expression(self.src)
        except ExpressionError as exc:
            raise self.refusal(f"it {self.shown(str(exc))}", allowed=True) from None

    def refusal(self, what: str, allowed: bool = False) -> FilterError:
        tail = f"; allowed: {ALLOWED}" if allowed else ""
        return FilterError(self.subject + f": {what}{tail}")

    def shown(self, text: str) -> str:
        for key, name in self.names.items():
            text = text.replace(key, f"`{name}`")
        return text

    def text(self, node: ast.AST) -> str:
        return self.shown(piece(self.src, node))

    def refuse(self, node: ast.AST, why: str) -> FilterError:
        return self.refusal(f"{self.text(node)!r} ({why}) is not allowed", allowed=True)

    def mask(self) -> np.ndarray:
        value = self.evaluate(self.tree)
        if value.kind != "bool":
            raise self.refusal(f"must be a condition that is true or false per row, e.g. {EXAMPLE}; "
                               f"{self.text(self.tree)!r} is {_KIND_WORDS[value.kind]}")
        if not value.per_row:
            raise self.refusal(f"names no column, so it is {bool(value.data)} for every row; compare a column, "
                               f"e.g. {EXAMPLE}")
        return value.data

    # -- nodes

    def evaluate(self, node: ast.AST) -> _Value:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(v, "and" if isinstance(node.op, ast.And) else "or") for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            data = parts[0]
            for part in parts[1:]:
                data = combine(data, part)
            return _Value("bool", data, repr(self.text(node)))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, (ast.Not, ast.Invert)):
                data = np.logical_not(self.condition(node.operand, "not" if isinstance(node.op, ast.Not) else "~"))
                return _Value("bool", data, repr(self.text(node)))
            x = self.number(node.operand, "unary -")
            return _Value("num", -x if isinstance(node.op, ast.USub) else x, repr(self.text(node)))
        if isinstance(node, ast.BinOp):
            op = _ARITHMETIC.get(type(node.op))
            if op is None:
                raise self.refuse(node, f"the operator {_OPERATOR_TEXT.get(type(node.op), type(node.op).__name__)}")
            symbol = {np.add: "+", np.subtract: "-", np.multiply: "*", np.divide: "/", np.power: "**"}[op]
            a, b = self.number(node.left, symbol), self.number(node.right, symbol)
            with np.errstate(all="ignore"):
                return _Value("num", op(a, b), repr(self.text(node)))
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            raise self.refuse(node, f"a {NODE_KINDS[type(node)]} outside `in [...]`")
        raise self.refuse(node, NODE_KINDS.get(type(node), type(node).__name__))

    def constant(self, node: ast.Constant) -> _Value:
        v = node.value
        if isinstance(v, bool):
            return _Value("bool", v, repr(v))
        if isinstance(v, (int, float)):
            try:
                return _Value("num", np.float64(v), repr(v))
            except OverflowError:
                raise self.refusal(f"the number {self.text(node)[:20]}... has {len(str(v))} digits, too large "
                                   "for a float; write it as 1e308 at most") from None
        if isinstance(v, str):
            return _Value("str", v, repr(v))
        raise self.refuse(node, f"a {type(v).__name__} constant")

    def name(self, node: ast.Name) -> _Value:
        ident = node.id
        if ident in self.names:
            return self.column(self.names[ident])
        if ident.startswith("__"):
            raise self.refuse(node, "a Python special name")
        if ident in self.columns:
            return self.column(ident)
        if ident in FUNCTIONS:
            raise self.refuse(node, f"the function {ident} used without an argument, e.g. {ident}(params)")
        raise self.unknown_column(ident)

    def unknown_column(self, name: str) -> FilterError:
        return self.refusal(f"{name!r} is not a column; the columns are {list(self.columns)} "
                            "(write names with spaces or symbols in backticks: `model/params`)")

    def column(self, name: str) -> _Value:
        if name not in self.columns:
            raise self.unknown_column(name)
        series = self.frame[self.columns[name]]
        if isinstance(series, pd.DataFrame):
            raise self.refusal(f"the data has {series.shape[1]} columns named {name!r}; rename all but one")
        label = f"column {name!r}"
        if pd.api.types.is_bool_dtype(series.dtype):
            return _Value("bool", series.to_numpy(dtype=bool), label)
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_complex_dtype(series.dtype):
            return _Value("num", series.to_numpy(dtype=float, na_value=np.nan), label)
        return _Value("str", series.to_numpy(dtype=object), label)

    def call(self, node: ast.Call) -> _Value:
        if not isinstance(node.func, ast.Name):
            self.evaluate(node.func)           # refuses what is called: 'params.astype' (attribute access), ...
        fname = node.func.id if isinstance(node.func, ast.Name) else None
        if fname not in FUNCTIONS:
            raise self.refuse(node, "a call of something other than " + ", ".join(FUNCTIONS))
        if len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred):
            raise self.refuse(node, f"{fname} takes exactly one argument")
        x = self.number(node.args[0], f"{fname}()")
        with np.errstate(all="ignore"):
            return _Value("num", FUNCTIONS[fname](x), repr(self.text(node)))

    # -- operands

    def number(self, node: ast.AST, where_used: str):
        value = self.evaluate(node)
        if value.kind == "str":
            raise self.refusal(f"{value.label} is text, and {where_used} needs numbers"
                               + self.not_numbers(value))
        return np.asarray(value.data, dtype=float) if value.per_row else np.float64(value.data)

    def condition(self, node: ast.AST, word: str):
        value = self.evaluate(node)
        if value.kind != "bool":
            raise self.refusal(f"{value.label} is {_KIND_WORDS[value.kind]}, and {word} combines conditions "
                               f"such as params > 1e8")
        return value.data

    def not_numbers(self, value: _Value) -> str:
        """", e.g. row 3 holds '2.8B?'" for a text column (why it did not read as numbers)."""
        if not value.per_row:
            return ""
        cells = pd.Series(value.data)
        odd = (pd.to_numeric(cells, errors="coerce").isna() & cells.notna()).to_numpy()
        if not odd.any():
            return ""
        i = int(np.argmax(odd))
        return f" (row {i + 1} holds {cells.iloc[i]!r})"

    # -- comparisons

    def compare(self, node: ast.Compare) -> _Value:
        membership = [op for op in node.ops if isinstance(op, (ast.In, ast.NotIn))]
        if membership and len(node.ops) > 1:
            raise self.refuse(node, "in / not in chained with another comparison; join them with and")
        if membership:
            return self.member(node)
        left, result = self.evaluate(node.left), None
        for op, comparator in zip(node.ops, node.comparators):
            compare = _COMPARE.get(type(op))
            if compare is None:
                raise self.refuse(node, f"the comparison {_OPERATOR_TEXT.get(type(op), type(op).__name__)}")
            right = self.evaluate(comparator)
            step = self.compare_pair(compare, left, right, isinstance(op, ast.NotEq))
            result = step if result is None else np.logical_and(result, step)
            left = right
        return _Value("bool", result, repr(self.text(node)))

    def compare_pair(self, compare, a: _Value, b: _Value, not_equal: bool):
        if (a.kind == "str") != (b.kind == "str"):
            text, other = (a, b) if a.kind == "str" else (b, a)
            if text.per_row or not other.per_row:
                raise self.refusal(f"{text.label} is text and cannot be compared with {other.label}, "
                                   f"{_KIND_WORDS[other.kind]}{self.not_numbers(text)}; quote a value that is a "
                                   "label ('3'), or compare a column of numbers")
            raise self.refusal(f"{other.label} is {_KIND_WORDS[other.kind]} and cannot be compared with the text "
                               f"{text.label}; compare it with a number, or compare a column of text")
        if a.kind == "str":
            (x, x_missing), (y, y_missing) = _text(a), _text(b)
            return compare(x, y) & ~x_missing & ~y_missing
        x, y = (np.asarray(v.data, dtype=float) if v.per_row else np.float64(v.data) for v in (a, b))
        with np.errstate(invalid="ignore"):
            out = compare(x, y)
        return out & ~np.isnan(x) & ~np.isnan(y) if not_equal else out

    def member(self, node: ast.Compare) -> _Value:
        container = node.comparators[0]
        negate = isinstance(node.ops[0], ast.NotIn)
        if not isinstance(container, (ast.List, ast.Tuple, ast.Set)):
            raise self.refuse(container, "in / not in take a list of values, e.g. config in ['a', 'b']")
        items = [self.evaluate(elt) for elt in container.elts]
        bad = next((v for v in items if v.per_row), None)
        if bad is not None:
            raise self.refusal(f"the list {self.text(container)!r} holds {bad.label}; it may hold only numbers or "
                               "quoted text")
        left = self.evaluate(node.left)
        text = left.kind == "str"
        mixed = next((v for v in items if (v.kind == "str") != text), None)
        if mixed is not None:
            raise self.refusal(f"{left.label} is {_KIND_WORDS[left.kind]} and the list "
                               f"{self.text(container)!r} holds {mixed.label}, {_KIND_WORDS[mixed.kind]}"
                               + (self.not_numbers(left) if text else ""))
        if text:
            x, missing = _text(left)
            found = np.isin(x, np.array([v.data for v in items], dtype=str))
        else:
            x = np.asarray(left.data, dtype=float)
            missing = np.isnan(x)
            found = np.isin(x, np.array([v.data for v in items], dtype=float))
        return _Value("bool", (~found if negate else found) & ~missing, repr(self.text(node)))


def _text(value: _Value):
    """(strings, missing mask) of a text value (``False`` mask for a scalar)."""
    if not value.per_row:
        return value.data, np.False_
    missing = pd.isna(value.data)
    return np.where(missing, "", value.data).astype(str), missing


__all__ = ["ALLOWED", "FUNCTIONS", "FilterError", "select_rows", "where_mask"]
