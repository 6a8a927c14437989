"""The asymptote law L(C) = L_inf + A * C^(-alpha), a loss against training compute C (FLOPs).

Henighan et al. 2020, "Scaling Laws for Autoregressive Generative Modeling" (arXiv:2010.14701),
the paper's main law: L(C) = L_inf + (C_0 / C)^alpha_C; here A = C_0^alpha_C.  It is the form recipes are
compared by at matched compute (``studies/speedup.py: effective_speedup``).  L_inf is fitted, or
held at a known value with ``law.fix(L_inf=...)`` (``--fix L_inf=...``).

It is the saturating power law of ``laws/power.py`` read on ``flops`` with the floor named as the
paper names it; a law of C alone has no budget to split, so no frontier.  Henighan et al. give
per-domain constants for their own runs; the reference constants here are instead those of the
compute-optimal frontier of Hoffmann et al. 2022's eq. 10 (``laws/power.py``), a language-model
L*(C) that the conformance suite regenerates and recovers.
"""
from __future__ import annotations

from scalinglab.laws.base import Param
from scalinglab.laws.power import POWER_C, SaturatingPowerLaw

ASYMPTOTE_PARAMS = (
    Param("L_inf", "e", "log", role="irreducible", description="the loss no compute goes below (nats/token)"),
    Param("A", "a", "log", role="scale", description="coefficient, C_0^alpha"),
    Param("alpha", bounds=(0.0, None), role="exponent", description="compute exponent"),
)

_REF = dict(POWER_C.reference)
ASYMPTOTE = SaturatingPowerLaw(
    "asymptote", "L = L_inf + A*C^-alpha", ("flops",), ASYMPTOTE_PARAMS,
    description="Henighan et al. 2020 (arXiv:2010.14701)",
    reference=(("L_inf", _REF["E"]), ("A", _REF["A"]), ("alpha", _REF["alpha"])),
    reference_source=POWER_C.reference_source)
