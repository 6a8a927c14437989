"""User expressions (formula laws, ``where=`` filters) read as syntax trees, never run as code.

``parse_expression(src)`` is ``ast.parse(src, mode="eval")`` with the guards every reader of
user expressions needs: at most ``MAX_LENGTH`` characters, a tree at most ``MAX_DEPTH`` levels
deep (measured without recursion, so that the caller's own recursive walk of a tree that passes
stays far below Python's recursion limit), and the parser's own failures (syntax, nesting too
deep for it, null bytes) turned into :class:`ExpressionError`.  Nothing is compiled or
evaluated here: each caller walks the tree with its own whitelist of node types.
"""
from __future__ import annotations

import ast

MAX_LENGTH = 2000
MAX_DEPTH = 100
# what a refused node is, in words, for the messages that name it
NODE_KINDS = {ast.Attribute: "attribute access", ast.Subscript: "subscript", ast.Lambda: "lambda",
              ast.Call: "function call", ast.Constant: "constant", ast.Compare: "comparison",
              ast.BoolOp: "boolean operator", ast.IfExp: "conditional expression", ast.ListComp: "comprehension",
              ast.GeneratorExp: "comprehension", ast.SetComp: "comprehension", ast.DictComp: "comprehension",
              ast.BinOp: "operator", ast.UnaryOp: "operator", ast.Starred: "starred argument",
              ast.JoinedStr: "f-string", ast.FormattedValue: "f-string", ast.NamedExpr: "assignment",
              ast.Dict: "dict", ast.List: "list", ast.Tuple: "tuple", ast.Set: "set", ast.Slice: "slice",
              ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield"}


class ExpressionError(ValueError):
    """Why a text is not an acceptable expression; the message completes "<what the text is> ..."
    (e.g. "is nested too deeply ..."), so that callers prefix it with their own words."""


def parse_expression(src: str) -> ast.expr:
    """The body of ``ast.parse(src, mode="eval")``, or ExpressionError saying why not."""
    if len(src) > MAX_LENGTH:
        raise ExpressionError(f"is {len(src)} characters long; at most {MAX_LENGTH} are accepted")
    try:
        body = ast.parse(src, mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"is not a valid expression ({exc.msg})") from None
    except ValueError as exc:                      # e.g. "source code string cannot contain null bytes"
        raise ExpressionError(f"is not a valid expression ({exc})") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"is nested too deeply (at most {MAX_DEPTH} levels are accepted)") from None
    depth = tree_depth(body)
    if depth > MAX_DEPTH:
        raise ExpressionError(f"is nested too deeply ({depth} levels; at most {MAX_DEPTH} are accepted)")
    return body


def tree_depth(node: ast.AST) -> int:
    """Levels of expression nodes below and including ``node`` (contexts and operators not
    counted), found with an explicit stack."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current)
                     if not isinstance(child, (ast.expr_context, ast.operator, ast.unaryop, ast.boolop,
                                               ast.cmpop)))
    return deepest


def piece(src: str, node: ast.AST) -> str:
    """The text of ``node`` in ``src`` (its node type where the position is unknown)."""
    return ast.get_source_segment(src, node) or type(node).__name__
