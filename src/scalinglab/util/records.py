"""One base for result dataclasses: ``to_dict``, ``to_json`` and ``str`` written once.

``Record`` is a mixin for dataclasses.  ``to_dict()`` is every dataclass field (in declaration
order) through ``util/jsonio.to_jsonable`` (numpy scalars and arrays to plain numbers and lists,
NaN to null, ±inf to "Infinity"/"-Infinity", a nested object with ``to_dict`` to its dict).  A
class that drops fields names them in ``_dict_exclude``; one that adds keys (a derived property,
the units) returns them from ``_dict_extra()``: they come after the fields, through the same
conversion.  A class whose JSON is not its fields keeps its own ``to_dict``.  ``to_json(path)``
is the checksummed JSON text (``util/jsonio.checked_dumps``) of ``to_dict()``, also written to
``path`` when given.  ``str(record)`` is ``record.summary()`` when the class defines one.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import ClassVar

from scalinglab.util.jsonio import checked_dumps, to_jsonable

__all__ = ["Record"]


class Record:
    """Mixin for result dataclasses: ``to_dict``/``to_json`` from the fields, ``str`` = ``summary()``."""

    _dict_exclude: ClassVar[tuple[str, ...]] = ()

    def _dict_extra(self) -> dict:
        """Keys added after the fields (derived values, units); none by default."""
        return {}

    def to_dict(self) -> dict:
        """Plain JSON: every field not in ``_dict_exclude``, then ``_dict_extra()``."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._dict_exclude}
        out.update(self._dict_extra())
        return to_jsonable(out)

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text of ``to_dict()`` with its schema version and checksum; also written to
        ``path`` when given."""
        text = checked_dumps(self.to_dict())
        if path is not None:
            Path(path).write_text(text)
        return text

    def __str__(self) -> str:
        summary = getattr(self, "summary", None)
        return summary() if callable(summary) else repr(self)
