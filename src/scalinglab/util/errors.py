"""An error in an argument's value, said in the API's words and spelt by whoever shows it.

The library names its parameters (``budget``, ``context_length``); a CLI user types options
(``--budget``, ``--context-length``). A :class:`ParamError` keeps the names apart from the text:
its message marks each parameter as ``{name}``, which reads as the name itself in Python
(``str(exc)``) and as the option at the CLI's edge (``scalinglab.cli.options``), from one table,
with no rewriting of free text.

A warning, a note or a hint that names a parameter is a :class:`ParamText`: a ``str`` in the API's
words that keeps its template, so that the CLI can spell it again; joined with ``+`` or
:meth:`ParamText.join` it stays one. A value shown with a parameter (``drop_invalid=True``,
``mapping={'loss': '<column>'}``) is data given beside the template, never parsed back out of text."""
from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

_NO_VALUE = object()


def _api_text(name: str, value) -> str:
    if value is _NO_VALUE:
        return name
    if isinstance(value, float):
        return f"{name}={value:g}"
    return f"{name}={value!r}"


def _shell_word(text: str) -> str:
    """``text`` as one shell word: bare when it is plain, else quoted."""
    if text and re.fullmatch(r"[\w.,:+\-/=*@]+", text):
        return text
    return f"'{text}'" if '"' in text else f'"{text}"'


def _cli_text(option: str, value) -> str:
    if value is _NO_VALUE or value is True:
        return option
    if value is False:
        return "--no-" + option.lstrip("-")
    if isinstance(value, Mapping):      # one option per entry: --map flops= --map loss="<column>"
        return " ".join(f"{option} {k}=" + ("" if v is None else _shell_word(str(v))) for k, v in value.items())
    return f"{option} {_shell_word(f'{value:g}' if isinstance(value, float) else str(value))}"


def spell_param(name: str, value, spell: Callable[[str], str]) -> str:
    """``name`` (and its ``value``, if shown) as ``spell`` writes it: ``spell(name) == name`` is the
    API (``drop_invalid=True``), anything else an option (``--drop-invalid``)."""
    written = spell(name)
    return _api_text(name, value) if written == name else _cli_text(written, value)


class ParamText(str):
    """Text naming API parameters, in the API's words, that the CLI can spell as its options.

    ``template`` marks each parameter as ``{name}``; every other brace is text. ``names`` are the
    parameters shown bare (``{level}`` -> ``level`` / ``--level``); ``values`` those shown with a
    value (``{drop_invalid}`` with ``drop_invalid=True`` -> ``drop_invalid=True`` / ``--drop-invalid``)."""

    template: str
    marks: tuple   # (key in the template, parameter name, value or _NO_VALUE)

    def __new__(cls, template: str, *names: str, **values):
        marks = [(n, n, _NO_VALUE) for n in names] + [(n, n, v) for n, v in values.items()]
        return cls._make(template, marks)

    @classmethod
    def _make(cls, template: str, marks) -> "ParamText":
        marks = tuple(dict((m[0], m) for m in marks).values())
        obj = str.__new__(cls, _render(template, marks, lambda name: name))
        obj.template, obj.marks = template, marks
        return obj

    @property
    def params(self) -> tuple:
        return tuple(dict.fromkeys(m[1] for m in self.marks))

    def render(self, spell: Callable[[str], str]) -> str:
        """The text with each parameter spelt by ``spell(name)`` (an option, say)."""
        return _render(self.template, self.marks, spell)

    def __add__(self, other):
        return ParamText._concat(self, other)

    def __radd__(self, other):
        return ParamText._concat(other, self)

    def replace(self, old: str, new: str, count: int = -1) -> "ParamText":
        """``str.replace`` on the text around the parameters, which stay marked."""
        return ParamText._make(self.template.replace(old, new, count), self.marks)

    def __reduce__(self):
        return (ParamText._make, (self.template, self.marks))

    @staticmethod
    def _concat(*parts) -> "ParamText":
        template, marks = "", []
        for part in parts:
            if not isinstance(part, ParamText):
                template += str(part)
                continue
            text, taken = part.template, {m[0] for m in marks}
            for key, name, value in part.marks:
                same = next((m for m in marks if m[0] == key), None)
                if same is not None and same[2] is not value and same[2] != value:
                    # the same parameter shown with another value: a key of its own
                    new_key = f"{name}#{len(taken) + 1}"
                    text = text.replace("{" + key + "}", "{" + new_key + "}")
                    key = new_key
                marks.append((key, name, value))
                taken.add(key)
            template += text
        return ParamText._make(template, marks)

    @staticmethod
    def join(sep: str, parts: Iterable) -> str:
        """``sep.join(parts)``, a :class:`ParamText` when any part is one."""
        parts = list(parts)
        if not any(isinstance(p, ParamText) for p in parts):
            return sep.join(parts)
        pieces = []
        for i, part in enumerate(parts):
            pieces.extend([sep, part] if i else [part])
        return ParamText._concat(*pieces)


def _render(template: str, marks, spell: Callable[[str], str]) -> str:
    if not marks:
        return template
    spelt = {"{" + key + "}": spell_param(name, value, spell) for key, name, value in marks}
    # one pass: a value shown (a user's filter, say) is never read for marks itself
    return re.sub("|".join(map(re.escape, spelt)), lambda m: spelt[m.group(0)], template)


def spell_text(text, spell: Callable[[str], str]) -> str:
    """``text`` with its parameters spelt by ``spell`` when it is a :class:`ParamText`; other text as it is."""
    return text.render(spell) if isinstance(text, ParamText) else str(text)


class ParamError(ValueError):
    """A bad value of the parameter ``param`` (and of ``also``, other parameters the message names).

    ``template`` names each of them as ``{name}`` (``"{budget} must be > 0; got -1"``); every other
    brace is text. ``value`` is the value refused, for programs that read the error."""

    def __init__(self, param: str, template: str, *, value=None, also: Iterable[str] = ()):
        # a ParamText template keeps its own marks (values shown beside names); the rest are bare names
        marks = template.marks if isinstance(template, ParamText) else ()
        keys = {m[0] for m in marks}
        text = ParamText._make(str(getattr(template, "template", template)),
                               [*marks, *((n, n, _NO_VALUE) for n in (param, *also) if n not in keys)])
        self.param = param
        self.params = tuple(dict.fromkeys((param, *also, *text.params)))
        self.template = text.template
        self.text = text
        self.value = value
        super().__init__(text)

    def render(self, spell: Callable[[str], str]) -> str:
        """The message with each parameter spelt by ``spell(name)`` (an option, say)."""
        return self.text.render(spell)
