"""Is the law identifiable from these runs?  Warnings that say what was seen and what fixes it.

A Chinchilla fit always returns numbers, but over a short range of model sizes E, A and α
trade off almost freely (a lower E with a shallower α fits a decade of data as well as a
higher E with a steeper one), and when every run uses the same tokens-per-parameter ratio
log N and log D are collinear, so α and β cannot be told apart.  The planning quantities
(a = β/(α+β), N*(C)) inherit that ambiguity.  These checks look at two things:

* the design — how many distinct model sizes, how many decades of N and D, whether N and D
  were varied independently;
* the bootstrap, when there is one — how wide the intervals of E, α and β are, how often
  resamples end on a parameter bound, how strongly parameters are correlated across
  resamples, and how many resample fits failed.

Each function is pure and returns a list of human-readable strings; ``bootstrap()`` attaches
them to ``FitResult.warnings``.
"""
from __future__ import annotations
from scalinglab.util.errors import ParamText

from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Pairs whose near-perfect correlation across resamples means "the data cannot separate these
# two" are read off the law's parameter roles: exponent–exponent and irreducible–exponent.
# scale–exponent pairs (log A–α) are deliberately absent: with log N ≈ 20 far from zero they
# correlate at ≈ 0.999 even in well-identified fits (Epoch's Chinchilla data: +0.999, +0.9996),
# an artefact of the uncentred parametrisation, not of the data.


def _roles(law) -> dict[str, str]:
    return {} if law is None else {p.name: p.role for p in law.all_params}


def fix_hint(law) -> str:
    """How to pin the least identified parameter: the law's irreducible term, by the API and
    the CLI option that exist for it."""
    names = law.names_with_role("irreducible") if law is not None else ()
    if not names:
        return ParamText("or fix a parameter you know from a larger run ({fixed})", fixed={"name": "value"})
    k = names[0]
    return ParamText(f"or fix {k} from a larger run ({{fixed}})", fixed={k: "value"})


@dataclass(frozen=True)
class Thresholds:
    """When a warning fires.  Defaults follow common practice for scaling ladders: at
    least a decade of N (and D), at least five sizes, intervals spanning at most a factor
    3, correlations below 0.99."""

    min_decades: float = 1.0
    min_sizes: int = 5
    ci_ratio: float = 3.0
    corr: float = 0.99
    nd_collinear: float = 0.98
    bound_fraction: float = 0.1
    fail_fraction: float = 0.05


FIX_RANGE = ("add model sizes so that N spans at least a decade (two is better), "
             "or read N*(C) from isoflop_approach2, which needs no law")


def identifiability_warnings(source, runs=None, *, bootstrap=None, variables: Sequence[str] | None = None,
                             thresholds: Thresholds = Thresholds()) -> list[str]:
    """All identifiability warnings for a fit.

    ``source`` is a FitResult (its ``variables`` and ``bootstrap`` are used), the runs
    themselves (RunTable or DataFrame), or an (n, k) array of raw variables whose columns
    are named by ``variables`` (default ``("params", "tokens")``).  ``runs`` supplies the
    design when ``source`` is a FitResult; ``bootstrap`` overrides ``source.bootstrap``.
    """
    design = _design_columns(source, runs, variables)
    if bootstrap is None:
        bootstrap = getattr(source, "bootstrap", None)
    law = getattr(source, "law_object", None)
    out: list[str] = []
    if design:
        out += design_warnings(design.get("params"), design.get("tokens"), thresholds=thresholds)
    if bootstrap is not None:
        out += bootstrap_warnings(bootstrap, law=law, thresholds=thresholds)
    return out


def design_warnings(params: np.ndarray | None, tokens: np.ndarray | None = None, *,
                    thresholds: Thresholds = Thresholds()) -> list[str]:
    """Warnings about the ladder itself: range and number of sizes, range of tokens, and
    whether N and D were varied independently."""
    t = thresholds
    out: list[str] = []
    if params is not None:
        n = np.asarray(params, dtype=float)
        sizes = np.unique(n)
        dec = _decades(n)
        if dec < t.min_decades:
            out.append(f"model sizes span only {dec:.2f} decades (N = {n.min():.3g} … {n.max():.3g}); "
                       f"over less than {t.min_decades:g} decade the size exponent α, the scale A and "
                       f"the floor E trade off against each other: {FIX_RANGE}.")
        if sizes.size < t.min_sizes:
            out.append(f"only {sizes.size} distinct model sizes (fewer than {t.min_sizes}); an exponent "
                       f"fitted through so few sizes is set by one or two of them: add sizes "
                       f"(≥ {t.min_sizes}, log-spaced) or use unit='size' in the bootstrap to see "
                       f"how much each size moves the fit.")
    if tokens is not None:
        d = np.asarray(tokens, dtype=float)
        dec = _decades(d)
        if dec < t.min_decades:
            out.append(f"token counts span only {dec:.2f} decades (D = {d.min():.3g} … {d.max():.3g}); "
                       f"the data exponent β and B are poorly constrained: vary tokens per size "
                       f"(an IsoFLOP design or WSD cooldown branches) over at least a decade.")
    if params is not None and tokens is not None and len(params) > 2:
        ln, ld = np.log(np.asarray(params, float)), np.log(np.asarray(tokens, float))
        if np.std(ln) > 0 and np.std(ld) > 0:
            r = float(np.corrcoef(ln, ld)[0, 1])
            if abs(r) > t.nd_collinear:
                ratio = np.asarray(tokens, float) / np.asarray(params, float)
                out.append(f"log N and log D are collinear (r = {r:.3f}; tokens per parameter "
                           f"{ratio.min():.3g} … {ratio.max():.3g}), so α and β cannot be told "
                           f"apart: train some sizes on several token counts (IsoFLOP budgets).")
    return out


def bootstrap_warnings(boot, *, law=None, thresholds: Thresholds = Thresholds()) -> list[str]:
    """Warnings read off a BootstrapResult: wide intervals of the exponents and the
    irreducible term (roles from ``law``), bound hits, near-perfect correlations, failed
    resamples."""
    t = thresholds
    roles = _roles(law)
    fixed = set(law.fixed_params) if law is not None else set()
    fix = f"{FIX_RANGE}, " + fix_hint(law)
    out: list[str] = []
    pct = f"{100 * boot.level:g}%"
    if boot.n_requested and boot.n_failed / boot.n_requested > t.fail_fraction:
        out.append(f"{boot.n_failed} of {boot.n_requested} bootstrap fits failed "
                   f"({100 * boot.n_failed / boot.n_requested:.0f}%); the intervals describe only "
                   f"the resamples that could be fitted and are likely too narrow — first failure: "
                   f"{boot.failures[0] if boot.failures else 'n/a'}.")
    if boot.n_ok < 2:
        return out
    for name in boot.names:
        lo, hi = boot.ci.get(name, (np.nan, np.nan))
        est = boot.estimate.get(name, np.nan)
        exponent = roles.get(name) == "exponent"
        if name in fixed or not (exponent or roles.get(name) == "irreducible") \
                or not np.isfinite(lo) or not np.isfinite(hi):
            continue
        sym = _symbol(name)
        small, big = (-hi, -lo) if hi < 0 else (lo, hi)     # a negative exponent (laws/distillation.py's c0)
        if small <= 0:
            out.append(f"the {pct} interval of {sym} is [{lo:.3g}, {hi:.3g}], reaching zero: {sym} is "
                       f"not identified by these runs; " + fix + ".")
        elif big / small > t.ci_ratio:
            out.append(f"the {pct} interval of {sym} is [{lo:.3g}, {hi:.3g}], a factor {big / small:.3g} "
                       f"wide (> {t.ci_ratio:g}): {sym} is poorly identified; " + fix + ".")
        elif exponent and np.isfinite(est) and hi - lo > abs(est):
            out.append(f"the {pct} interval of {sym} is [{lo:.3g}, {hi:.3g}], wider than {sym} itself "
                       f"({est:.3g}): " + fix + ".")
    for name, frac in boot.at_bound.items():
        if frac > t.bound_fraction:
            out.append(f"{100 * frac:.0f}% of bootstrap fits end on a bound of {name}; the optimum "
                       f"wants to leave the allowed region, so the interval is cut off there: widen "
                       f"the ladder (more sizes and tokens) or fix that parameter.")
    out += _correlation_warnings(boot, roles, law, t.corr)
    return out


def correlated_pairs(roles: dict[str, str]) -> list[tuple[str, str]]:
    """exponent–exponent and irreducible–exponent pairs: the ones whose near-perfect
    correlation means the data cannot separate them."""
    exps = [k for k, r in roles.items() if r == "exponent"]
    floors = [k for k, r in roles.items() if r == "irreducible"]
    return [(p, q) for i, p in enumerate(exps) for q in exps[i + 1:]] + [(f, e) for f in floors for e in exps]


def _correlation_warnings(boot, roles: dict[str, str], law, threshold: float) -> list[str]:
    names = list(boot.names)
    out = []
    cols = {k: boot.samples[:, names.index(k)] for k in names}
    for p, q in correlated_pairs(roles):
        if p not in cols or q not in cols or np.std(cols[p]) == 0 or np.std(cols[q]) == 0:
            continue
        r = float(np.corrcoef(cols[p], cols[q])[0, 1])
        if abs(r) > threshold:
            if roles[p] == roles[q] == "exponent":
                fix = (f"{_symbol(p)} and {_symbol(q)} are not separated: vary N and D independently (several "
                       f"token counts per size), or use isoflop_approach2 for N*(C)")
            else:
                fix = (f"{_symbol(p)} and {_symbol(q)} move together so only a combination of them is "
                       "determined: extend the range of sizes/tokens, " + fix_hint(law))
            out.append(f"bootstrap correlation of {_symbol(p)} and {_symbol(q)} is {r:+.4f} "
                       f"(|r| > {threshold:g}): " + fix + ".")
    return out


def _design_columns(source, runs, variables) -> dict[str, np.ndarray]:
    """params/tokens arrays from whichever of source/runs holds the design."""
    for candidate in (runs, source):
        df = getattr(candidate, "df", candidate)
        if hasattr(df, "columns"):
            return {k: df[k].to_numpy(dtype=float) for k in ("params", "tokens")
                    if k in df.columns and _uses(source, k)}
        if isinstance(candidate, np.ndarray):
            names = tuple(variables or ("params", "tokens"))
            X = np.atleast_2d(candidate)
            return {k: X[:, j] for j, k in enumerate(names) if k in ("params", "tokens")}
    return {}


def _uses(source, variable: str) -> bool:
    used = getattr(source, "variables", None)
    return used is None or variable in used


def _decades(x: np.ndarray) -> float:
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.log10(x.max() / x.min())) if x.size else 0.0


def _symbol(name: str) -> str:
    return {"alpha": "α", "beta": "β"}.get(name, name)

