"""Law registry.  Adding a law is one module and one line in ``LAWS``."""
from __future__ import annotations

from scalinglab.laws.base import Law
from scalinglab.laws.chinchilla import CHINCHILLA, ChinchillaLaw
from scalinglab.laws.kaplan import KAPLAN, KaplanLaw
from scalinglab.laws.power import POWER_C, POWER_D, POWER_N, SaturatingPowerLaw

LAWS: dict[str, Law] = {law.name: law for law in (POWER_N, POWER_D, POWER_C, KAPLAN, CHINCHILLA)}


def get_law(name_or_law) -> Law:
    """The registered law of that name, or the Law object itself.

    Raises ValueError naming the valid laws for an unknown name.
    """
    if isinstance(name_or_law, Law):
        return name_or_law
    if isinstance(name_or_law, str) and name_or_law in LAWS:
        return LAWS[name_or_law]
    raise ValueError(f"unknown law {name_or_law!r}; valid laws: {', '.join(LAWS)}")


__all__ = ["LAWS", "Law", "get_law", "ChinchillaLaw", "KaplanLaw", "SaturatingPowerLaw"]
