"""The plan's learning rate, batch size and critical batch, from the laws that give them.

``hparam_advice`` asks a learning-rate/batch law (``laws/hparams.py``: a preset, or one fitted
from a sweep with intervals) for lr* and B* at the planned N*, D*; ``critical_batch_advice`` asks
a critical-batch law (``laws/critical_batch.py``: Kaplan's preset, or one fitted from loss curves
or measured noise scales) for B_crit at the planned loss, and tabulates the time and compute
traded by training above it on proportionally more GPUs. Both name the law that gave them, and a
plan outside the range a law was fitted on (the preset's ``domain`` / ``loss_range``, from its paper,
or a fitted law's data) keeps the law's numbers but marks them extrapolated, with the range in a note.
"""
from __future__ import annotations


import numpy as np

from scalinglab.data.law_files import get_critical_batch_law, get_hparam_law
from scalinglab.laws.critical_batch import (KAPLAN_CRITICAL_BATCH, OWN_CRITICAL_BATCH, find_critical_batch_law,
                                            tradeoff_table)

__all__ = ["hparam_advice", "critical_batch_advice", "advice_lines", "trade_table_lines"]


def hparam_advice(law_spec, n_opt: float, d_opt: float, level: float = 0.9, constraints: dict | None = None) -> dict:
    """lr* and B* (tokens per step) for the planned run, with the fitted law's intervals."""
    law = get_hparam_law(law_spec)
    est = law.predict(params=n_opt, tokens=d_opt)
    iv = law.interval(params=n_opt, tokens=d_opt, level=level)
    out = {"law": law.name + (f" law {law.source}" if law.source else ""), "citation": law.citation,
           "formula": law.formula(), "fitted": law.fitted, "batch_unit": law.batch_unit,
           "source": law.source or None, "notes": []}
    reach = (law.uncertainty or {}).get("data_range") or {}
    beyond = [f"{symbol} = {value:.3g} is {value / reach[key][1]:.3g}× its largest {symbol[0]}"
              for key, value, symbol in (("params", n_opt, "N*"), ("tokens", d_opt, "D*"))
              if reach.get(key) and value > reach[key][1]]
    if beyond:
        out["notes"].append(f"{' and '.join(beyond)}: lr and batch are extrapolated beyond the sweep the law was "
                            "fitted on")
    outside = law.outside_domain(params=n_opt, tokens=d_opt)
    if outside:
        out["notes"].append(f"outside {law.name}'s fitted range {law.domain_text()}: {' and '.join(outside)}: lr and "
                            "batch are an extrapolation, not a recommendation")
    out["extrapolated"] = bool(beyond or outside)
    for key, values in est.items():
        out[key] = float(np.asarray(values).reshape(-1)[0])
        for kind in ("ci", "pi"):
            if kind in iv.get(key, {}):
                out[f"{key}_{kind}"] = tuple(iv[key][kind])
    out["level"] = level if iv else None
    planned = (constraints or {}).get("batch_size")
    if planned and "batch" in out:
        out["notes"].append(f"the loss law planned at batch size {planned:.3g} tokens (its constraint), not at this "
                            f"law's {out['batch']:.3g}: the plan's loss holds at {planned:.3g}")
    return out


def critical_batch_advice(law_spec, loss: float, tokens: float, batch_tokens: float | None, *,
                          seconds: float | None = None, gpus: int | None = None, derived: dict | None = None,
                          derived_ci: dict | None = None, fit_law: str = "", constraints: dict | None = None) -> dict:
    """B_crit at the planned loss, and the trade of training at multiples of it.

    A fitted loss law that carries its own critical batch (``derived[OWN_CRITICAL_BATCH]``, e.g.
    laws/critical_batch.BatchSizeLaw) gives B_crit unless a B_crit(L) law file was named, and a
    batch size the plan was made at (``constraints["batch_size"]``) is the trade's baseline."""
    own = (derived or {}).get(OWN_CRITICAL_BATCH)
    # the default (Kaplan's preset, by name or as the law object the CLI resolved) yields to the fit's own
    if own is not None and find_critical_batch_law(law_spec) is KAPLAN_CRITICAL_BATCH:
        ci = (derived_ci or {}).get(OWN_CRITICAL_BATCH)
        out = {"law": f"the fit ({fit_law})", "citation": "the fitted law's own Bcrit (McCandlish et al. 2018 eq. 2.11)",
               "b_crit": float(own), "unit": "tokens", "b_crit_ci": None if ci is None else tuple(ci),
               "loss": float(loss), "notes": []}
        law = None
    else:
        law = get_critical_batch_law(law_spec)
        out = {"law": law.name, "citation": law.citation, "b_crit": float(law.b_crit(loss)), "unit": law.unit,
               "b_crit_ci": law.interval(loss), "loss": float(loss), "notes": []}
    b_crit = out["b_crit"]
    planned = (constraints or {}).get("batch_size")
    if planned:
        batch_tokens = float(planned)
        out["notes"].append(f"the plan was made at batch size {planned:.3g} tokens (the law's constraint)")
    out["extrapolated"] = bool(law is not None and law.loss_range is not None
                               and not (law.loss_range[0] <= loss <= law.loss_range[1]))
    if out["extrapolated"]:
        where = f"; {law.loss_range_source}" if law.loss_range_source else ""
        out["notes"].append(f"the planned loss {loss:.4g} lies outside the losses {law.name} was fitted on "
                            f"({law.loss_range[0]:.4g} – {law.loss_range[1]:.4g}{where}): B_crit and the trade are an "
                            "extrapolation")
    if out["unit"] != "tokens":
        out["notes"].append(f"B_crit is in {law.unit}, the plan's batch in tokens: no trade table")
        return out
    base = batch_tokens if batch_tokens and batch_tokens > 0 else b_crit
    if batch_tokens is None:
        out["notes"].append("no planned batch size (no lr/batch law): the trade is relative to B_crit itself")
    out["batch"] = float(base)
    out["trade"] = tradeoff_table(b_crit, tokens, base, seconds=seconds, gpus=gpus)
    return out


_EXTRAPOLATED = " (extrapolated)"


def advice_lines(hp: dict | None, cb: dict | None) -> list[str]:
    """The plan summary's lines for both (empty when neither was asked for). A value its law was not
    fitted for (``extrapolated``) is marked on its own line, the range in a note below."""
    lines: list[str] = []
    if hp:
        pct = f"{100 * hp['level']:g}%" if hp.get("level") else ""
        for key, label, unit in (("lr", "Learning rate", ""), ("batch", "Batch size", f" {hp['batch_unit']}/step")):
            if key not in hp:
                continue
            text = f"{label:<20}{hp[key]:.3g}{unit}" + (_EXTRAPOLATED if hp.get("extrapolated") else "")
            if f"{key}_ci" in hp:
                text += f"   [{pct} CI {hp[key + '_ci'][0]:.3g} – {hp[key + '_ci'][1]:.3g}]"
            if f"{key}_pi" in hp:
                text += f"\n{'':20}   [{pct} PI {hp[key + '_pi'][0]:.3g} – {hp[key + '_pi'][1]:.3g}]"
            lines.append(text)
        lines.append(f"  lr and batch from {hp['law']}: {hp['formula']} ({hp['citation']})")
        lines += [f"  note: {n}" for n in hp.get("notes", [])]
    if cb:
        ci = cb.get("b_crit_ci")
        lines.append(f"Critical batch      {cb['b_crit']:.3g} {cb['unit']} at the planned loss {cb['loss']:.4g}"
                     + (_EXTRAPOLATED if cb.get("extrapolated") else "")
                     + (f"   [CI {ci[0]:.3g} – {ci[1]:.3g}]" if ci else ""))
        lines.append(f"  from {cb['law']}: {cb['citation']}")
        if cb.get("trade"):
            lines.append(f"  above it on more GPUs (McCandlish et al. 2018: S = S_min(1 + B_crit/B), "
                         f"E = E_min(1 + B/B_crit)), vs the planned batch {cb['batch']:.3g}:")
            lines += trade_table_lines(cb["trade"])
        lines += [f"  note: {n}" for n in cb.get("notes", [])]
    return lines


def _gpu_count(x: float) -> str:
    """A GPU count: whole numbers with thousands separators from 100 up (1,120, not 1.12e+03)."""
    return f"{round(x):,}" if x >= 100 else f"{x:.3g}"


def trade_table_lines(trade: list[dict], indent: str = "    ") -> list[str]:
    """The critical-batch trade as right-aligned columns, each as wide as its widest cell."""
    header = ("batch", "×B_crit", "GPUs", "steps", "time", "compute")
    rows = [(f"{r['batch']:.3g}", f"{r['multiple']:.3g}",
             _gpu_count(r["gpus"]) if "gpus" in r else f"{r['gpu_ratio']:.3g}×",
             f"{r['steps']:.3g}", f"{r['time_ratio']:.2f}×", f"{r['compute_ratio']:.2f}×") for r in trade]
    widths = [max(len(c) for c in col) for col in zip(header, *rows)]
    return [indent + "  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in (header, *rows)]


