"""An error in an argument's value, said in the API's words and spelt by whoever shows it.

The library names its parameters (``budget``, ``context_length``); a CLI user types options
(``--budget``, ``--context-length``). A :class:`ParamError` keeps the names apart from the text:
its message marks each parameter as ``{name}``, which reads as the name itself in Python
(``str(exc)``) and as the option at the CLI's edge (``scalinglab.cli.options``), from one table,
with no rewriting of free text."""
from __future__ import annotations

from typing import Callable, Iterable


class ParamError(ValueError):
    """A bad value of the parameter ``param`` (and of ``also``, other parameters the message names).

    ``template`` names each of them as ``{name}`` (``"{budget} must be > 0; got -1"``); every other
    brace is text. ``value`` is the value refused, for programs that read the error."""

    def __init__(self, param: str, template: str, *, value=None, also: Iterable[str] = ()):
        self.param = param
        self.params = (param, *also)
        self.template = template
        self.value = value
        super().__init__(self.render(lambda name: name))

    def render(self, spell: Callable[[str], str]) -> str:
        """The message with each parameter spelt by ``spell(name)`` (an option, say)."""
        text = self.template
        for name in self.params:
            text = text.replace("{" + name + "}", spell(name))
        return text
