"""Laws users bring as a formula string: ``FormulaLaw("E + A/N**alpha + B/D**beta",
{"N": "params", "D": "tokens"}, log_params=("E", "A", "B"))``.

Safety model.  User text is never evaluated: no ``eval``, ``exec`` or ``compile`` runs on it.
It is read by ``ast.parse(text, mode="eval")`` and the syntax tree is walked with a whitelist:
numbers, names, parentheses, unary + and -, binary + - * / ** (``^`` is read as ``**``), and
calls of :data:`FUNCTIONS` with positional arguments: ``exp log log10 sqrt abs tanh softplus``
of one (``softplus(x) = log(1 + exp(x))``), ``min`` and ``max`` of two or more, ``clip(x, lo,
hi)`` (read as ``min(max(x, lo), hi)``, numpy's ``clip``).  Anything else (attribute access,
subscripts, lambdas, comprehensions, strings, other calls, keywords...) raises ValueError
naming the offending piece.  What survives becomes a small immutable tree of tuples
(``("const", 2.0)``, ``("sym", "N")``, ``("neg", x)``, ``("add"|"sub"|"mul"|"div"|"pow", a, b)``,
``("call", "exp", x)``, ``("call", "min", a, b)``), picklable, that only this module's numpy
code walks.

Named sub-expressions.  Definitions ``name = expression`` separated by ``;`` come before the
formula, e.g. ``"h = N**(-alpha); E + A*h + B*D**(-beta)"``; each may use the ones before it.
A name is replaced by its definition's tree where it is used, so the law is exactly the inlined
formula (same parameters, same order, same fit).  A definition that is never used, defined
twice, used before it is defined, or named like a function is refused, naming it.

Zero features.  With ``positive_features=False`` a feature may be 0.  Where the formula is
infinite at 0 (a feature raised to a negated or negative exponent,
divided by, or under log) such a row is refused by :meth:`FormulaLaw.check_features`, naming
the row, the column and the piece.  ``x**c`` with c fitted stays finite at x = 0 (c > 0), and
its derivative in c there is the limit 0 (not 0 * log 0 = NaN).

Symbols.  Names mapped in ``variables`` are features (canonical run columns); every other name
is a parameter, in order of first appearance.  ``log_params`` are fitted as their logarithm
(internal name ``log_A``): positive scales are far better conditioned that way.

Differentiation is forward mode: each node returns its value together with a sparse gradient
{parameter index: d value / d internal theta_j}, combined by the chain rule at every node
(d a**b = b a**(b-1) da + a**b log(a) db, ...).  Values broadcast as (k, 1) parameters against
(n,) features, so the same walk evaluates many parameter vectors at once.
"""
from __future__ import annotations

import ast
import math
import re
from typing import Any, Mapping, Sequence

import numpy as np

from scalinglab.laws.base import TRANSFORMS, Law, Param, as_theta_2d
from scalinglab.util.expression import MAX_LENGTH, NODE_KINDS, ExpressionError, parse_expression, piece
from scalinglab.util.jsonio import canonical_text
from scalinglab.util.errors import ParamError

UNARY = ("exp", "log", "log10", "sqrt", "abs", "tanh", "softplus")
FUNCTIONS = UNARY + ("min", "max", "clip")
ALLOWED = ("numbers, names, parentheses, unary + and -, binary + - * / ** (^ is read as **), "
           "the functions " + ", ".join(f"{f}(x)" for f in UNARY) + ", min(a, b, ...), max(a, b, ...), "
           "clip(x, lo, hi), and named sub-expressions before the formula ('h = N**(-alpha); E + A*h')")
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_LN10 = math.log(10.0)


# ------------------------------------------------------------------------------ parsing


def parse_formula(text: str) -> tuple:
    """The expression tree of ``text`` (an optional ``L = `` prefix is dropped), or ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"formula must be a non-empty string, e.g. 'E + A/N**alpha'; got {text!r}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"formula is {len(text)} characters long; at most {MAX_LENGTH} are accepted")
    pieces = " ".join(text.split()).replace("^", "**").rstrip("; ").split(";")
    defs: dict[str, tuple] = {}
    used: set[str] = set()
    for k, part in enumerate(pieces):
        last = k == len(pieces) - 1
        m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*=(?!=)(.*)", part)
        src = (m.group(2) if m else part).strip()
        if not src:
            raise ValueError(f"formula {text!r}: piece {k + 1} ({part.strip()!r}) is empty; write definitions as "
                             f"'name = expression' separated by ';', the formula last")
        if not last and not m:
            raise ValueError(f"formula {text!r}: piece {k + 1} ({part.strip()!r}) comes before the formula but is "
                             f"not a definition 'name = expression'")
        if not last:
            name = m.group(1)
            if name in FUNCTIONS or name in defs:
                why = "the name of a function" if name in FUNCTIONS else "defined twice"
                raise ValueError(f"formula {text!r}: definition {name!r} is {why}; choose another name")
        try:
            body = parse_expression(src)
        except ExpressionError as exc:
            raise ValueError(f"formula {text!r}: {src!r} {exc}; a formula may use {ALLOWED}") from None
        tree = _convert(body, src, text, defs, used)
        if not last:
            defs[m.group(1)] = tree
    unused = [d for d in defs if d not in used]
    early = [d for d in defs if d in _symbols(tree)]
    if unused:
        raise ValueError(f"formula {text!r}: definition(s) {unused} are never used; use them or leave them out")
    if early:
        raise ValueError(f"formula {text!r}: name(s) {early} are used before (or inside) their own definition; "
                         f"define a name before the pieces that use it")
    return tree


def _convert(node, src: str, text: str, defs: Mapping[str, tuple] | None = None,
             used: set | None = None) -> tuple:
    defs = {} if defs is None else defs
    used = set() if used is None else used

    def bad(why: str):
        return ValueError(f"formula {text!r}: {piece(src, node)!r} ({why}) is not allowed; a formula may use {ALLOWED}")

    def sub(child):
        return _convert(child, src, text, defs, used)

    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad(f"a {type(v).__name__} constant")
        try:
            if not math.isfinite(float(v)):
                raise bad("a non-finite number")
        except OverflowError:                 # an integer literal of hundreds of digits
            raise bad("a number beyond the float range, about 1.8e308") from None
        return ("const", float(v))
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise bad(f"the function {node.id} used without an argument")
        if node.id in defs:
            used.add(node.id)
            return defs[node.id]
        return ("sym", node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        inner = sub(node.operand)
        return inner if isinstance(node.op, ast.UAdd) else ("neg", inner)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _fold((_BINOPS[type(node.op)], sub(node.left), sub(node.right)), bad)
    if isinstance(node, ast.Call):
        fname = node.func.id if isinstance(node.func, ast.Name) else None
        if fname not in FUNCTIONS:
            raise bad("a call of something other than " + ", ".join(FUNCTIONS))
        n = len(node.args)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args) or \
                (fname in UNARY and n != 1) or (fname == "clip" and n != 3) or (fname in ("min", "max") and n < 2):
            need = "exactly one" if fname in UNARY else "exactly three (x, lo, hi)" if fname == "clip" else \
                "two or more"
            raise bad(f"{fname} takes {need} positional argument(s)")
        args = [sub(a) for a in node.args]
        if fname == "clip":                       # numpy's clip: lo > hi gives hi, as min(max(x, lo), hi) does
            return _fold(("call", "min", _fold(("call", "max", args[0], args[1]), bad), args[2]), bad)
        tree = args[0]
        for a in args[1:]:                        # min(a, b, c) = min(min(a, b), c)
            tree = _fold(("call", fname, tree, a), bad)
        return tree if fname in ("min", "max") else _fold(("call", fname, tree), bad)
    raise bad(NODE_KINDS.get(type(node), type(node).__name__))


def _fold(tree: tuple, bad) -> tuple:
    """A piece of numbers only (``0/0``, ``10**400``, ``log(0)``) as its value, refused (``bad``)
    when that is not a finite number: it would make every prediction NaN or infinite."""
    if not all(child[0] == "const" for child in tree[1:] if isinstance(child, tuple)):
        return tree
    with np.errstate(all="ignore"):
        value = float(_forward(tree, {}, {})[0])
    if not math.isfinite(value):
        raise bad(f"numbers only, evaluating to {value}")
    return ("const", value)


def _symbols(node: tuple, out: list | None = None) -> list[str]:
    """Names in order of first appearance (left to right)."""
    out = [] if out is None else out
    if node[0] == "sym":
        if node[1] not in out:
            out.append(node[1])
    elif node[0] != "const":
        for child in node[1:]:
            if isinstance(child, tuple):
                _symbols(child, out)
    return out


def _infer_roles(tree: tuple, params: Sequence[str]) -> dict[str, str]:
    """exponent: appears only in exponents; irreducible: a bare top-level summand; scale: a
    numerator factor of a top-level summand; other: anything else."""
    def summands(n):
        return summands(n[1]) + summands(n[2]) if n[0] in ("add", "sub") else \
            summands(n[1]) if n[0] == "neg" else [n]

    def factors(n):
        return factors(n[1]) + factors(n[2]) if n[0] == "mul" else \
            factors(n[1]) if n[0] in ("div", "neg") else [n]

    def count(n, in_exp, acc):
        if n[0] == "sym":
            total, exp_ = acc.get(n[1], (0, 0))
            acc[n[1]] = (total + 1, exp_ + in_exp)
        elif n[0] == "pow":
            count(n[1], in_exp, acc)
            count(n[2], 1, acc)
        elif n[0] != "const":
            for child in n[1:]:
                if isinstance(child, tuple):
                    count(child, in_exp, acc)
        return acc

    seen = count(tree, 0, {})
    tops = summands(tree)
    roles = {}
    for p in params:
        total, in_exp = seen[p]
        if in_exp == total:
            roles[p] = "exponent"
        elif total == 1 and ("sym", p) in tops:
            roles[p] = "irreducible"
        elif total == 1 and any(("sym", p) in factors(s) for s in tops):
            roles[p] = "scale"
        else:
            roles[p] = "other"
    return roles


_LOG_CALLS = {"log": 1.0, "log10": 1.0 / math.log(10.0)}


def _log_locations(tree: tuple, params: Sequence[str], variables: Sequence[str]) -> dict[str, tuple]:
    """Parameters that shift a variable's logarithm: ``p`` beside ``log(x)`` (or ``log10(x)``) in
    one sum, as the lr optimum ``l0`` in ``c*(log(lr) - l0)**2``.  Each maps to ``(x, factor,
    sign)``: the sum vanishes where ``p = sign * factor * ln(x)``, so the data's own range of
    ln(x) gives its starts (``FormulaLaw.initial_grid``); a role's fixed candidates miss an
    optimum at log(lr) = -8."""
    found: dict[str, tuple] = {}

    def terms(n, sign):
        if n[0] in ("add", "sub"):
            return terms(n[1], sign) + terms(n[2], -sign if n[0] == "sub" else sign)
        return terms(n[1], -sign) if n[0] == "neg" else [(n, sign)]

    def walk(n, in_sum=False):
        if not isinstance(n, tuple) or n[0] in ("sym", "const"):
            return
        if n[0] in ("add", "sub", "neg") and not in_sum:
            chain = terms(n, 1.0)
            logs = [(t[2][1], _LOG_CALLS[t[1]], sg) for t, sg in chain
                    if t[0] == "call" and t[1] in _LOG_CALLS and t[2][0] == "sym" and t[2][1] in variables]
            for t, sg in chain:
                if logs and t[0] == "sym" and t[1] in params:
                    x, factor, log_sign = logs[0]
                    found.setdefault(t[1], (x, factor, -sg * log_sign))
            for t, _ in chain:
                walk(t)
            return
        for child in n[1:]:
            walk(child)

    walk(tree)
    return found


# ------------------------------------------------------------------------------ evaluation


def _scale(g: dict, c) -> dict:
    return {j: d * c for j, d in g.items()}


def _merge(ga: dict, ca, gb: dict, cb) -> dict:
    out = _scale(ga, ca) if ga else {}
    for j, d in gb.items():
        out[j] = out[j] + d * cb if j in out else d * cb
    return out


def _forward(node: tuple, env: Mapping[str, tuple], logs: Mapping[str, Any]) -> tuple[Any, dict]:
    """(value, {j: d value / d theta_j}) of ``node``; ``env`` maps symbols to (value, gradient),
    ``logs`` the logarithms of the features (reused when a feature is raised to a parameter)."""
    op = node[0]
    if op == "const":
        return np.float64(node[1]), {}         # numpy division: 1/0 is inf, not ZeroDivisionError
    if op == "sym":
        return env[node[1]]
    if op == "neg":
        v, g = _forward(node[1], env, logs)
        return -v, _scale(g, -1.0)
    if op == "call" and node[1] in ("min", "max"):
        a, ga = _forward(node[2], env, logs)
        b, gb = _forward(node[3], env, logs)
        v = np.minimum(a, b) if node[1] == "min" else np.maximum(a, b)
        if not (ga or gb):
            return v, {}
        take_a = (a <= b if node[1] == "min" else a >= b).astype(float)   # a tie: a's (sub)gradient
        return v, _merge(ga, take_a, gb, 1.0 - take_a)
    if op == "call":
        v, g = _forward(node[2], env, logs)
        value, slope = _UNARY_OPS[node[1]]
        out = value(v)
        return (out, _scale(g, slope(v, out))) if g else (out, {})
    a, ga = _forward(node[1], env, logs)
    b, gb = _forward(node[2], env, logs)
    if op == "add":
        return a + b, _merge(ga, 1.0, gb, 1.0)
    if op == "sub":
        return a - b, _merge(ga, 1.0, gb, -1.0)
    if op == "mul":
        return a * b, _merge(ga, b, gb, a)
    if op == "div":
        v = a / b
        return v, _merge(ga, 1.0 / b, gb, -v / b) if (ga or gb) else {}
    v = np.power(a, b)                                            # pow
    if not (ga or gb):
        return v, {}
    log_a = (logs[node[1][1]] if node[1][0] == "sym" and node[1][1] in logs else np.log(a)) if gb else 0.0
    # d a**b / db = a**b log a, whose limit at a = 0 (b > 0) is 0, not 0 * -inf = NaN
    db = np.where(v == 0.0, 0.0, v * log_a) if gb else 0.0
    return v, _merge(ga, b * np.power(a, b - 1.0) if ga else 0.0, gb, db)


# one-argument functions: (value(v), slope(v, value) = d value / d v)
_UNARY_OPS = {
    "exp": (np.exp, lambda v, out: out),
    "log": (np.log, lambda v, out: 1.0 / v),
    "log10": (np.log10, lambda v, out: 1.0 / (v * _LN10)),
    "sqrt": (np.sqrt, lambda v, out: 0.5 / out),
    "abs": (np.abs, lambda v, out: np.sign(v)),
    "tanh": (np.tanh, lambda v, out: 1.0 - out * out),
    "softplus": (lambda v: np.logaddexp(0.0, v), lambda v, out: 0.5 * (1.0 + np.tanh(0.5 * v))),  # sigmoid
}


def _negative(node: tuple) -> bool:
    """Written as a negative exponent: ``-alpha``, ``-1.5``."""
    return node[0] == "neg" or (node[0] == "const" and node[1] < 0)


def _infinite_at_zero(node: tuple, features) -> list[tuple[str, tuple]]:
    """(feature, piece) for each piece infinite when that feature is 0 (exponents as written):
    ``x**(-a)``, ``A/x``, ``A/x**a`` (an exponent not written negative), ``log(x)``, ``log10(x)``."""
    out = []

    def feature(n):
        return n[1] if n[0] == "sym" and n[1] in features else None

    def walk(n):
        op = n[0]
        if op == "pow" and feature(n[1]) and _negative(n[2]):
            out.append((feature(n[1]), n))
        elif op == "div" and (feature(n[2]) or (n[2][0] == "pow" and feature(n[2][1]) and not _negative(n[2][2])
                                                and not (n[2][2][0] == "const" and n[2][2][1] == 0))):
            out.append((feature(n[2]) or feature(n[2][1]), n))
        elif op == "call" and n[1] in ("log", "log10") and feature(n[2]):
            out.append((feature(n[2]), n))
        if op not in ("const", "sym"):
            for child in n[1:]:
                if isinstance(child, tuple):
                    walk(child)

    walk(node)
    return out


_OP_TEXT = {"add": " + ", "sub": " - ", "mul": "*", "div": "/", "pow": "**"}


def _render(node: tuple) -> str:
    """A tree as formula text (for messages), parenthesised wherever it is not a leaf or a call."""
    def wrap(n):
        return _render(n) if n[0] in ("sym", "call") or (n[0] == "const" and n[1] >= 0) else f"({_render(n)})"

    op = node[0]
    if op == "const":
        return f"{node[1]:g}"
    if op == "sym":
        return node[1]
    if op == "neg":
        return f"-{wrap(node[1])}"
    if op == "call":
        return f"{node[1]}({', '.join(_render(c) for c in node[2:])})"
    return f"{wrap(node[1])}{_OP_TEXT[op]}{wrap(node[2])}"


class _Columns:
    """The features of one X by symbol, and their logarithms (``FormulaLaw.precompute``)."""

    def __init__(self, symbols: Sequence[str], X):
        X = np.asarray(X, dtype=float)
        X = X.reshape(-1, 1) if X.ndim == 1 and len(symbols) == 1 else X
        if X.ndim != 2 or X.shape[1] != len(symbols):
            raise ValueError(f"X has shape {X.shape}; this formula needs (n, {len(symbols)}) columns "
                             f"for {list(symbols)}")
        self.n = X.shape[0]
        self.values = {s: X[:, i] for i, s in enumerate(symbols)}
        with np.errstate(divide="ignore", invalid="ignore"):
            self.logs = {s: np.log(X[:, i]) for i, s in enumerate(symbols)}


# ------------------------------------------------------------------------------ the law

# default candidates per inferred role, public values (log parameters: their logs, see _candidates)
_ROLE_CANDIDATES = {
    "exponent": (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0),
    "irreducible": (-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
    "scale": (0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5),
    "other": (-1.0, 0.0, 0.1, 0.3, 0.5, 1.0, 2.0, 10.0, 100.0, 1e3),
}
_LOG_SCALE_CANDIDATES = tuple(float(v) for v in np.arange(-2.0, 12.0 + 1e-9, 1.0))
GRID_SIZE = 4096


def _identifier(s) -> bool:
    return isinstance(s, str) and s.isidentifier()


class FormulaLaw(Law):
    """A law given as a formula string; see the module docstring.

    formula : e.g. ``"E + A/N**alpha + B/D**beta"``.
    variables : symbol -> canonical run column (``{"N": "params", "D": "tokens"}``); the order
        of this mapping is the column order of X.
    bounds : parameter -> (lo, hi) on the fitted (internal) coordinate, i.e. on log A for a
        parameter in ``log_params``; None or inf for open.  Keys: public or internal names.
    starts : parameter -> start values on the internal coordinate; they replace that
        parameter's default candidates in :meth:`initial_grid`.
    log_params : parameters fitted as their logarithm (positive scales: conditioning).
    budget : "auto" ("6ND" when the columns include params and tokens), "6ND" or None.
    """

    def __init__(self, formula: str, variables: Mapping[str, str], *, name: str | None = None,
                 bounds: Mapping[str, Sequence] | None = None, starts: Mapping[str, Sequence] | None = None,
                 log_params: Sequence[str] = (), target: str = "loss", target_transform: str = "log",
                 budget: str | None = "auto", positive_features: bool = True, description: str = ""):
        self.tree = parse_formula(formula)
        self.formula = formula
        self.name = "formula" if name is None else name
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name={name!r} must be a non-empty string")
        symbols = _symbols(self.tree)
        vmap = dict(variables or {})
        if not vmap:
            raise ParamError("variables", f"formula {formula!r}: {{variables}} must map at least one symbol to "
                                          f"a run column, "
                             f"e.g. {{'N': 'params'}}; its symbols are {symbols}")
        for sym, col in vmap.items():
            if sym not in symbols:
                raise ValueError(f"variables maps {sym!r} -> {col!r}, but {sym!r} is not in formula {formula!r} "
                                 f"(its symbols are {symbols})")
            if not _identifier(col):
                raise ValueError(f"variables maps {sym!r} -> {col!r}: the column must be a run column name "
                                 f"such as params, tokens, flops, unique_tokens, epochs, lr, batch_size, "
                                 f"precision_bits, step")
        dup = sorted({c for c in vmap.values() if list(vmap.values()).count(c) > 1})
        if dup:
            raise ValueError(f"variables maps several symbols to the same column(s) {dup}: {vmap}")
        names = [s for s in symbols if s not in vmap]
        if not names:
            raise ValueError(f"formula {formula!r} has no parameters to fit (every symbol is a variable)")
        logs = tuple(dict.fromkeys(log_params or ()))
        self._check_known(logs, names, "log_params")
        internal = {p: f"log_{p}" if p in logs else p for p in names}
        clash = [p for p in logs if internal[p] in names]
        if clash:
            raise ValueError(f"log_params {clash}: the internal names {[internal[p] for p in clash]} are "
                             f"also parameters of formula {formula!r}; rename one")
        alias = {**{v: k for k, v in internal.items()}, **{p: p for p in names}}
        self._check_known(bounds or {}, list(alias), "bounds")
        self._check_known(starts or {}, list(alias), "starts")
        self._bounds = {alias[k]: self._clean_bounds(k, v) for k, v in (bounds or {}).items()}
        self._starts = {alias[k]: self._clean_starts(k, v) for k, v in (starts or {}).items()}
        if target_transform not in TRANSFORMS:
            raise ParamError("target_transform", f"{{target_transform}}={target_transform!r} is not one of "
                                                 f"{list(TRANSFORMS)}", value=target_transform)
        if not _identifier(target):
            raise ParamError("target", f"{{target}}={target!r} must be a run column name, e.g. 'loss'")
        if budget == "auto":
            budget = "6ND" if {"params", "tokens"} <= set(vmap.values()) else None
        elif budget not in ("6ND", None):
            raise ParamError("budget", f"{{budget}}={budget!r} must be 'auto', '6ND' or None")
        roles = _infer_roles(self.tree, names)
        self._log_locations = _log_locations(self.tree, names, list(vmap))
        self.symbol_map = vmap
        self.variables = tuple(vmap.values())
        self.log_params = logs
        self.target, self.target_transform, self.budget = target, target_transform, budget
        self.positive_features = bool(positive_features)
        self.description = description
        self.varpro_names = ()
        self.params = tuple(Param(p, internal[p], "log" if p in logs else "identity",
                                  self._bounds.get(p, (None, None)), roles[p]) for p in names)

    def _check_known(self, keys, known, what: str) -> None:
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise ValueError(f"{what} names {unknown}, not parameter(s) of formula {self.formula!r}; "
                             f"its parameters are {known}")

    @staticmethod
    def _clean_bounds(key, v) -> tuple:
        try:
            lo, hi = (None if b is None else float(b) for b in v)
        except (TypeError, ValueError):
            raise ValueError(f"bounds[{key!r}]={v!r} must be a pair (lo, hi) of numbers or None") from None
        lo = None if lo == -math.inf else lo
        hi = None if hi == math.inf else hi
        if any(b is not None and not math.isfinite(b) for b in (lo, hi)) or \
                (lo is not None and hi is not None and lo > hi):
            raise ValueError(f"bounds[{key!r}]={v!r} must be a pair lo <= hi (None or inf for open)")
        return (lo, hi)

    @staticmethod
    def _clean_starts(key, v) -> tuple:
        arr = np.atleast_1d(np.asarray(v, dtype=float)).ravel()
        if arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(f"starts[{key!r}]={v!r} must be one or more finite numbers (internal coordinate)")
        return tuple(float(x) for x in arr)

    # ---------------------------------------------------------------- prediction
    def precompute(self, X):
        return _Columns(tuple(self.symbol_map), X)

    def _env(self, t, cols: _Columns, grad: bool) -> dict:
        env = {s: (v, {}) for s, v in cols.values.items()}
        for j, p in enumerate(self.params):
            v = np.exp(t[..., j:j + 1]) if p.transform == "log" else t[..., j:j + 1]
            if t.ndim == 1:
                v = v[0]
            env[p.name] = (v, {j: (v if p.transform == "log" else 1.0)} if grad else {})
        return env

    def _f(self, theta, X) -> tuple[np.ndarray, bool]:
        t, single = as_theta_2d(theta)
        cols = X if isinstance(X, _Columns) else self.precompute(X)
        with np.errstate(all="ignore"):
            f, _ = _forward(self.tree, self._env(t, cols, False), cols.logs)
        return np.broadcast_to(f, (t.shape[0], cols.n)).astype(float), single

    def predict_z(self, theta, X):
        f, single = self._f(theta, X)
        with np.errstate(all="ignore"):
            z = self.transform.forward(f)
        return z[0] if single else z

    def predict_z_and_jac(self, theta, X, cache=None):
        t = np.asarray(theta, dtype=float).reshape(-1)
        cols = cache if isinstance(cache, _Columns) else self.precompute(X)
        jac = np.zeros((cols.n, t.size))
        with np.errstate(all="ignore"):
            f, grads = _forward(self.tree, self._env(t, cols, True), cols.logs)
            f = np.broadcast_to(np.asarray(f, dtype=float), (cols.n,))
            for j, d in grads.items():
                jac[:, j] = d
            if self.target_transform == "log":
                return np.log(f), jac / f[:, None]
            if self.target_transform == "logit":
                return np.log(f) - np.log1p(-f), jac / (f * (1.0 - f))[:, None]
        return f.copy(), jac

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        """The forward-mode walk of :meth:`predict_z_and_jac` with every parameter a (k, 1)
        column: one walk gives all k values and Jacobians."""
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        cols = cache if isinstance(cache, _Columns) else self.precompute(X)
        shape = (t.shape[0], cols.n)
        jac = np.zeros(shape + (t.shape[1],))
        with np.errstate(all="ignore"):
            f, grads = _forward(self.tree, self._env(t, cols, True), cols.logs)
            f = np.broadcast_to(np.asarray(f, dtype=float), shape)
            for j, d in grads.items():
                jac[..., j] = d
            if self.target_transform == "log":
                return np.log(f), jac / f[..., None]
            if self.target_transform == "logit":
                return np.log(f) - np.log1p(-f), jac / (f * (1.0 - f))[..., None]
        return f.copy(), jac

    def check_features(self, X) -> None:
        """Law's checks, then with ``positive_features=False``: a row whose 0 makes a piece of the
        formula infinite is refused, naming row, column and piece."""
        super().check_features(X)
        if self.positive_features:
            return
        column = {s: j for j, s in enumerate(self.symbol_map)}
        for sym, node in _infinite_at_zero(self.tree, column):
            zero = np.flatnonzero(np.asarray(X, dtype=float)[:, column[sym]] == 0.0)
            if zero.size:
                col = self.symbol_map[sym]
                raise ValueError(f"row {zero[0] + 1}, column {col!r}: {sym} = 0 makes {_render(node)!r} of formula "
                                 f"{self.formula!r} infinite ({zero.size} such rows); "
                                 f"leave those rows out, or write the term so that it is finite at 0 "
                                 f"(e.g. ({sym} + {sym}0)**(-alpha) with {sym}0 fitted)")

    def check_prediction(self, theta, X) -> None:
        """ValueError naming the rows (1-based) where the formula's value at ``theta`` is not a
        valid target (non-finite; non-positive for 'log'; outside (0, 1) for 'logit')."""
        f = self._f(np.asarray(theta, dtype=float).reshape(-1), X)[0][0]
        bad = np.flatnonzero(~self.transform.valid(f))
        if bad.size:
            rows = ", ".join(str(i + 1) for i in bad[:10]) + (", ..." if bad.size > 10 else "")
            params = ", ".join(f"{k}={v:.6g}" for k, v in self.to_public(theta).items())
            raise ValueError(f"formula {self.formula!r} with {params} gives invalid predictions at rows {rows} "
                             f"({bad.size} of {f.size} rows, e.g. {float(f[bad[0]]):.6g}); each must be "
                             f"{self.transform.domain}")

    # ---------------------------------------------------------------- starts
    def _candidates(self, p: Param, X=None) -> np.ndarray:
        if p.name in self._starts:
            return np.array(self._starts[p.name])
        if p.name in self._log_locations and X is not None and p.transform != "log":
            # a shift of log(x): where the data put log(x), besides the role's own candidates
            x, factor, sign = self._log_locations[p.name]
            col = np.asarray(X, dtype=float).reshape(len(X), -1)[:, list(self.symbol_map).index(x)]
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.log(col[col > 0]) * factor
            if logs.size:
                own = np.array(_ROLE_CANDIDATES[p.role])
                return np.unique(np.concatenate([own, sign * np.linspace(logs.min(), logs.max(), 5)]))
        if p.transform == "log" and p.role in ("scale", "other"):
            return np.array(_LOG_SCALE_CANDIDATES)
        vals = np.array(_ROLE_CANDIDATES[p.role])
        return np.log(vals[vals > 0]) if p.transform == "log" else vals

    def initial_grid(self, X=None):
        """Per parameter a candidate set (its ``starts``, else by inferred role: exponents
        {0, 0.05, ..., 2}; irreducible terms {-1, 0, ..., 10}; scales {0.1, 1, ..., 1e5}, or
        log-scales {-2, -1, ..., 12}; others {-1, 0, 0.1, ..., 1000}; log parameters take the
        logs of the positive values).  The full product when it has at most ``GRID_SIZE`` rows,
        else ``GRID_SIZE`` rows where every parameter cycles through its candidates in a
        fixed-seed shuffled order (each candidate equally often).  Clipped to bounds.  ``X`` is
        used only by a parameter that shifts a variable's logarithm (``c*(log(lr) - l0)**2``): its
        candidates add 5 points spanning the rows' log(lr) (``_log_locations``)."""
        cands = [self._candidates(p, X) for p in self.params]
        if math.prod(len(c) for c in cands) <= GRID_SIZE:
            grid = np.stack(np.meshgrid(*cands, indexing="ij"), axis=-1).reshape(-1, len(cands))
        else:
            rng = np.random.default_rng(0)
            grid = np.column_stack([rng.permutation(np.resize(c, GRID_SIZE)) for c in cands])
        lo, hi = self.bounds_arrays()
        return np.unique(np.clip(grid, lo, hi), axis=0)

    # ---------------------------------------------------------------- frontier and identity
    def frontier_constraints(self):
        if self.budget is None:
            return ()
        return tuple(v for v in self.variables if v not in ("params", "tokens", "flops"))

    def spec(self) -> dict:
        return {"name": self.name, "formula": self.formula, "variables": dict(self.symbol_map),
                "bounds": {k: list(v) for k, v in self._bounds.items()},
                "starts": {k: list(v) for k, v in self._starts.items()}, "log_params": list(self.log_params),
                "target": self.target, "target_transform": self.target_transform, "budget": self.budget,
                "positive_features": self.positive_features, "description": self.description}

    _SPEC_KEYS = ("name", "formula", "variables", "bounds", "starts", "log_params", "target", "target_transform",
                  "budget", "positive_features", "description")

    @classmethod
    def from_spec(cls, spec: Mapping) -> "FormulaLaw":
        spec = dict(spec)
        unknown = [k for k in spec if k not in cls._SPEC_KEYS]
        if unknown or "formula" not in spec or "variables" not in spec:
            raise ValueError(f"a formula law spec needs 'formula' and 'variables' and may have "
                             f"{list(cls._SPEC_KEYS)}; got keys {list(spec)}"
                             + (" (held-fixed values: use scalinglab.laws.law_from_spec)" if "fixed" in spec else ""))
        return cls(spec.pop("formula"), spec.pop("variables"), **spec)

    def __reduce__(self):
        return (_from_spec, (self.spec(),))

    def __eq__(self, other):
        return isinstance(other, FormulaLaw) and self.spec() == other.spec()

    def __hash__(self):
        return hash(canonical_text(self.spec()))           # keys sorted: equal specs hash alike


def _from_spec(spec):
    return FormulaLaw.from_spec(spec)


def parse_variable_map(items: Sequence[str] | str) -> dict[str, str]:
    """``["N=params", "D=tokens"]`` (or ``"N=params,D=tokens"``) -> {"N": "params", "D": "tokens"}."""
    parts = [items] if isinstance(items, str) else list(items)
    out: dict[str, str] = {}
    for part in parts:
        for item in str(part).split(","):
            if not item.strip():
                continue
            sym, eq, col = (s.strip() for s in item.partition("="))
            if not eq or not _identifier(sym) or not _identifier(col):
                raise ValueError(f"variable mapping {item.strip()!r} must look like SYMBOL=column, "
                                 f"e.g. N=params or D=tokens")
            if sym in out:
                raise ValueError(f"variable mapping {item.strip()!r}: symbol {sym!r} is already mapped to "
                                 f"{out[sym]!r}")
            out[sym] = col
    if not out:
        raise ValueError("no variable mappings given; expected items like N=params D=tokens")
    return out


__all__ = ["FUNCTIONS", "FormulaLaw", "parse_formula", "parse_variable_map"]
