"""One self-contained HTML file from a :class:`~scalinglab.report.document.Report`.

Figures are embedded as base64 PNG, the style sheet is inline, and there is no script and no
external reference: the page opens offline in any browser and can be mailed as one file.
Text that comes from the data (column names, file names, warnings) is always escaped.
"""
from __future__ import annotations

import base64
from html import escape

from scalinglab.fitting.valleys import MIN_SIZES
from scalinglab.util.formatting import fmt_num

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2430;
       margin: 0; background: #f5f6f8; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 34px 0 10px;
     border-bottom: 2px solid #e3e6ea; padding-bottom: 4px; }
.sub { color: #5b6573; margin: 0 0 14px; }
nav a { margin-right: 14px; color: #2457a6; text-decoration: none; font-size: 14px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { flex: 1 1 220px; border: 1px solid #dde1e6; border-radius: 8px; padding: 10px 14px; }
.card .k { color: #5b6573; font-size: 13px; } .card .v { font-size: 21px; font-weight: 600; }
.card .i { font-size: 12.5px; color: #39424e; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13.5px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e6e8eb; text-align: right; }
th { background: #f0f2f5; } td:first-child, th:first-child, table.text td, table.text th { text-align: left; }
pre { background: #f7f8fa; border: 1px solid #e3e6ea; padding: 10px 12px; overflow-x: auto;
      font-size: 12.5px; line-height: 1.35; white-space: pre-wrap; }
img { max-width: 100%; height: auto; border: 1px solid #eceef1; margin: 6px 0; }
.warn { background: #fff7e0; border-left: 4px solid #e0a800; padding: 6px 10px; margin: 6px 0; }
.skip { background: #fdecec; border-left: 4px solid #c0392b; padding: 6px 10px; margin: 6px 0; }
table.notes td:last-child, table.notes th:last-child { text-align: left; }
table.notes td:not(:last-child) { white-space: nowrap; }
.caption { font-size: 13.5px; color: #39424e; } table.prov td:last-child { font-family: ui-monospace, monospace;
  word-break: break-all; }
.ok { color: #1e7b34; } .step { font-weight: 600; margin-right: 6px; }
details summary { cursor: pointer; color: #2457a6; margin: 6px 0; }
"""

SECTIONS = (("glance", "At a glance"), ("data", "Data"), ("fit", "Fit"), ("isoflop", "IsoFLOP valleys"),
            ("frontier", "Frontier"), ("validation", "Validation and calibration"), ("plan", "Plan"),
            ("warnings", "Warnings"), ("made", "How this report was made"))
NONE = "—"             # a cell with nothing to show says so: no table cell is left empty


def _interval(ci, digits_fmt=fmt_num) -> str:
    if not ci or ci[0] is None:
        return ""
    return f"[{digits_fmt(ci[0])} – {digits_fmt(ci[1])}]"


def _cell(value) -> str:
    text = fmt_num(value) if isinstance(value, float) else str(value if value is not None else "")
    return escape(text.strip() or NONE)


def _table(header, rows, cls: str = "") -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def _notes(notes, intro: str = "") -> str:
    notes = [n for n in notes if n]
    if not notes:
        return ""
    return (f"<p>{escape(intro)}</p>" if intro else "") + "<ul>" + "".join(f"<li>{escape(str(n))}</li>"
                                                                           for n in notes) + "</ul>"


def _pct(level) -> str:
    return f"{100 * level:g}%"


def _figure(report, name: str, alt: str) -> str:
    png = report.figures.get(name)
    if png is None:
        why = dict(report.skipped).get(name, "not drawn")
        return f'<div class="skip">{escape(name)} was not drawn: {escape(why)}</div>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _skipped(report, step: str) -> str:
    why = dict(report.skipped).get(step)
    return f'<div class="skip">{escape(step)} skipped: {escape(why)}</div>' if why else ""


def _card(key: str, value: str, ci: str = "", pi: str = "") -> str:
    lines = "".join(f'<div class="i">{escape(x)}</div>' for x in (ci, pi) if x)
    return f'<div class="card"><div class="k">{escape(key)}</div><div class="v">{escape(value)}</div>{lines}</div>'


def _glance(report) -> str:
    cards = []
    plan = report.plan
    if plan is not None:
        d = plan.to_dict()
        lvl = f"{100 * d['level']:g}%"
        cards.append(_card(f"N* at C = {fmt_num(d['budget_flops'])} FLOPs", fmt_num(d["n_opt"]),
                           f"{lvl} CI {_interval(d.get('n_opt_ci'))}" if d.get("n_opt_ci") else "",
                           f"{lvl} PI {_interval(d.get('n_opt_pi'))}" if d.get("n_opt_pi") else ""))
        cards.append(_card("D* (tokens)", fmt_num(d["d_opt"]),
                           f"{lvl} CI {_interval(d.get('d_opt_ci'))}" if d.get("d_opt_ci") else "",
                           f"{lvl} PI {_interval(d.get('d_opt_pi'))}" if d.get("d_opt_pi") else ""))
        cards.append(_card("Predicted loss", f"{d['loss']:.4f}",
                           f"{lvl} CI {_interval(d.get('loss_ci'), lambda v: f'{v:.4f}')}" if d.get("loss_ci") else "",
                           f"{lvl} PI {_interval(d.get('loss_pi'), lambda v: f'{v:.4f}')}" if d.get("loss_pi") else ""))
    if report.isoflop is not None:
        iso = report.isoflop
        cards.append(_card("N*(C) exponent a (approach 2)", f"{iso.a:.4f}", f"90% CI {_interval(iso.a_ci, lambda v: f'{v:.4f}')}"
                           if iso.a_ci and all(v == v for v in iso.a_ci) else ""))
    if report.validation is not None:
        v = report.validation
        cov = v.points["inside"].mean() if len(v.points) else float("nan")
        cards.append(_card("Largest budget held out", f"{100 * cov:.0f}% inside the PI",
                           f"loss error median {100 * v.points['rel_error'].median():.2f}% "
                           f"({v.n_test} runs)"))
    n_warn = len(report.warnings)
    cards.append(_card("Warnings", str(n_warn), "see the last section" if n_warn else "none",
                       f"{len(report.skipped)} step(s) skipped" if report.skipped else ""))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _data(report) -> str:
    d = report.data
    rows = [(col, fmt_num(d[col][0]), fmt_num(d[col][1])) for col in ("params", "tokens", "flops", "loss") if col in d]
    html = f"<p>{d['runs']} runs from <code>{escape(report.source)}</code>" + (
        f" ({d['distinct_runs']} distinct run ids)" if "distinct_runs" in d else "") + ".</p>"
    html += _table(("column", "min", "max"), rows)
    scattered = d.get("scattered")
    if scattered:
        html += _scattered_note(report, scattered)
        big = [(fmt_num(c), k) for c, k in d["budgets"] if k >= scattered["min_runs"]]
        if big:
            html += (f"<details><summary>The {len(big)} budgets with at least {scattered['min_runs']} runs</summary>"
                     + _table(("C (FLOPs)", "runs"), big) + "</details>")
    elif d.get("budgets"):
        html += "<p>Budgets (IsoFLOP levels) and their runs:</p>"
        html += _table(("C (FLOPs)", "runs"), [(fmt_num(c), k) for c, k in d["budgets"]])
    if report.dropped:
        html += "<p>Rows dropped on request:</p><ul>" + "".join(f"<li>{escape(x)}</li>" for x in report.dropped) + "</ul>"
    if report.decisions:
        html += _decisions(report.decisions)
    return html


def _decisions(decisions: list[dict]) -> str:
    """An adaptive sweep's rounds (``sweep/adaptive.py``): what each chose and why, and the planned
    loss's interval at its target budget before, expected after and measured after."""
    def span(i):
        return NONE if not i else f"[{fmt_num(i['low'])}, {fmt_num(i['high'])}]"
    rows = [(d["round"], ", ".join(d["run_ids"]), d["why"], span(d["before"]), span(d["expected"]),
             span(d["actual"]), fmt_num(d["committed_flops"])) for d in decisions]
    return ("<p>This ladder chose its own runs, round by round (an adaptive sweep): each round's runs, why, and "
            "the planned loss's interval at the target budget before it, expected after it and measured after "
            "it.</p>" + _table(("round", "runs", "why", "before", "expected after", "after", "FLOPs so far"), rows,
                               cls="text"))


def _scattered_note(report, sc: dict) -> str:
    """The runs' C lies on no grid: say how the budgets were formed and how to bin them."""
    cmd = report.provenance.get("command", "") if report.provenance else ""
    rerun = (f"{cmd} --bin-budgets {sc['bin_width']:g}" if cmd.startswith("scalinglab ")
             else f"scalinglab report RUNS --bin-budgets {sc['bin_width']:g}")
    return (f'<div class="warn"><span class="step">budgets</span>The runs\' compute C lies on no grid: grouping '
            f"runs whose C agrees within the flops tolerance gives {sc['budgets']} budgets, {sc['small']} of them "
            f"with fewer than {sc['min_runs']} runs, too few for an IsoFLOP valley (approach 2 excludes those, "
            f"and the validation holds out only the largest). Binned by {sc['bin_width']:g} decades of C they form "
            f"{sc['binned_budgets']} budgets of at least {sc['binned_min_runs']} runs each: rerun with "
            f"<code>{escape(rerun)}</code> (in Python: <code>load_runs(..., bin_budgets={sc['bin_width']:g})</code>)."
            "</div>")


def _fit(report) -> str:
    fit = report.fit
    if fit is None:
        return _skipped(report, "fit")
    ci = fit.bootstrap.ci if fit.bootstrap is not None else {}
    estimate = fit.bootstrap.estimate if fit.bootstrap is not None else {}   # derived values at the fit
    lvl = f"{100 * fit.bootstrap.level:g}% CI" if fit.bootstrap is not None else "CI"
    fixed = fit.fixed
    rows = [(name, fmt_num(value), "fixed" if name in fixed else _interval(ci.get(name)))
            for name, value in fit.params.items()]
    rows += [(name, fmt_num(estimate[name]) if name in estimate else NONE, _interval(ci.get(name)))
             for name in ci if name not in fit.params]
    html = (f"<p><b>{escape(fit.law)}</b>: {escape(report.options.get('formula') or '')}; objective "
            f"{fit.objective:.6g} over {fit.n_points} points; bootstrap {report.options['bootstrap']} resamples.</p>")
    html += _table(("parameter / derived", "value", lvl), rows)
    if fit.calibration is not None:
        html += f"<p>Prediction intervals (loss): {escape(fit.calibration.loss.describe())}.</p>"
    else:
        html += _skipped(report, "calibration")
    html += _figure(report, "fit.png", "the law against the data, with confidence and prediction bands")
    html += "<details><summary>Full fit summary</summary>" + _pre(fit.summary()) + "</details>"
    return html


def _isoflop(report) -> str:
    iso = report.isoflop
    if iso is None:
        return _skipped(report, "isoflop")
    pct = _pct(iso.level)
    b = iso.budgets
    html = (f"<p>Approach 2 ({escape(iso.method)}): each budget's minimum over N, then a power law through "
            f"the minima: {int(b['used'].sum())} of {len(b)} budgets used.</p>")
    html += _table(("power law", "exponent", f"{pct} CI"), [
        (f"N*(C) = {fmt_num(iso.n_opt.coef)} · C^{iso.a:.4f}", f"a = {iso.a:.4f}", _interval(iso.a_ci, _f4)),
        (f"D*(C) = {fmt_num(iso.d_opt.coef)} · C^{iso.b:.4f}", f"b = {iso.b:.4f}", _interval(iso.b_ci, _f4))])
    no_min = b["n_sizes"] < MIN_SIZES if "n_sizes" in b else b["n_opt"].isna()
    rows = []
    for r in b[~no_min].itertuples():
        note = ("used" + (", at the edge of the sizes" if r.at_edge else "")) if r.used else f"excluded: {r.excluded}"
        rows.append((fmt_num(r.flops), fmt_num(r.n_opt), _interval((r.n_opt_lo, r.n_opt_hi)), fmt_num(r.d_opt),
                     f"{r.loss_opt:.4f}", r.n_points, f"{fmt_num(r.n_min, 3)} – {fmt_num(r.n_max, 3)}", note))
    html += _table(("C (FLOPs)", "N*", f"N* {pct} CI", "D*", "L*", "runs", "N range", "note"), rows, cls="notes")
    if no_min.any():
        html += (f"<p>{int(no_min.sum())} more budgets hold fewer than {MIN_SIZES} distinct sizes: no minimum, "
                 "excluded (their runs are the plain dots of the figure).</p>")
    html += _notes(iso.warnings)
    return html + _figure(report, "isoflop.png", "IsoFLOP valleys with their minima")


def _f4(v) -> str:
    return f"{v:.4f}"


def _frontier(report) -> str:
    html = ("<p>N*(C) from approach 2 (the valleys' power law) and from the law (approach 3), each with its "
            "bootstrap band; compute beyond the largest budget in the data is shaded: that part is "
            "extrapolation.</p>")
    html += _figure(report, "frontier.png", "compute-optimal N*(C) with bands and the extrapolation region")
    mark = _frontier_mark(report)
    if mark is not None:
        html += (f'<p class="caption">The diamond marks the plan: C = {fmt_num(mark["budget"])} FLOPs (dotted line), '
                 f'N* = {fmt_num(mark["n_opt"])} with its {_pct(mark["level"])} {escape(mark["interval"])} '
                 f'{_interval(mark["n_opt_interval"])}, the interval the plan reports.</p>')
    c = report.plan.comparison if report.plan is not None else None
    if c is not None:
        a3 = "" if c.a_approach3 is None else f"{c.a_approach3:.4f}"
        html += _table(("at the plan's budget", "approach 2 (IsoFLOP)", "approach 3 (law)"), [
            ("N*", f"{fmt_num(c.n_opt_approach2)} {_interval(c.n_opt_approach2_ci)}",
             f"{fmt_num(c.n_opt_approach3)} {_interval(c.n_opt_approach3_ci)}"),
            ("exponent a", f"{c.a_approach2:.4f} {_interval(c.a_approach2_ci, lambda v: f'{v:.4f}')}", a3)])
        verdict = "disagree" if c.disagree else "agree"
        html += (f"<p>The two {verdict} ({escape(c.criterion)}; ratio 3/2 = {c.ratio:.3g}); the plan uses "
                 f"<b>{escape(c.used)}</b>: {escape(c.reason)}.</p>")
    return html


def _frontier_mark(report) -> dict | None:
    """What the frontier figure marks of the plan, read back from the PNG it drew (``PLAN_KEY``)."""
    import io
    import json

    from PIL import Image

    from scalinglab.report.plots import PLAN_KEY

    png = report.figures.get("frontier.png")
    if png is None:
        return None
    text = Image.open(io.BytesIO(png)).text.get(PLAN_KEY)
    return json.loads(text) if text else None


def _validation_tables(v) -> str:
    pct = _pct(v.level)
    le = v.loss_error
    target = v._target_name()
    rows = [("training runs", f"{v.n_train} ({escape(v.by)} ≤ {fmt_num(v.threshold)})"),
            ("held-out runs", v.n_test),
            (f"{target} |relative error|", f"mean {le['mean']:.2%}, median {le['median']:.2%}, max {le['max']:.2%}"),
            (f"{pct} prediction intervals", f"cover {v.coverage:.0%} of the held-out runs; median half-width "
                                            f"{v.median_half_width:.2%}")]
    if v.calibration is not None:
        rows.append(("prediction-interval rule", v.calibration.loss.describe()))
    if len(v.n_opt_table):
        ne = v.n_opt_error
        rows.append(("N* the plan would use: |relative error|", f"mean {ne['mean']:.2%}, max {ne['max']:.2%}"))
    html = _table(("hold-out of the largest budget", "result"), rows, cls="text")
    p = v.points
    scale = [("params", "N"), ("tokens", "D")] if {"params", "tokens"} <= set(p.columns) else [("level", v.by)]
    head = [label for _, label in scale] + [target, "predicted", f"{pct} PI", "inside"]
    body = [[fmt_num(getattr(r, col), 3) for col, _ in scale]
            + [f"{r.loss:.4f}", f"{r.predicted:.4f}", f"[{r.pi_lo:.4f} – {r.pi_hi:.4f}]", "yes" if r.inside else "NO"]
            for r in p.itertuples()]
    points = _table(head, body)
    html += (f"<details><summary>The {len(p)} held-out runs</summary>{points}</details>" if len(p) > 20
             else f"<p>The held-out runs:</p>{points}")
    if len(v.n_opt_table):
        t = v.n_opt_table
        html += "<p>N* at each held-out budget: what the plan would use against the reference.</p>"
        html += _table(("C (FLOPs)", "N* plan", f"{pct} PI", "N* reference", "error", "source"),
                       [(fmt_num(r.flops, 3), fmt_num(r.n_opt, 3), _interval((r.pi_lo, r.pi_hi)),
                         fmt_num(r.n_opt_ref, 3), f"{r.rel_error:.2%}", r.source) for r in t.itertuples()])
        html += f"<p>N* reference: {escape(str(t['reference'].iloc[0]))}.</p>"
    return html + _notes(v.notes, "Notes:")


def _validation(report) -> str:
    html = ""
    if report.validation is not None:
        html += _validation_tables(report.validation)
    else:
        html += _skipped(report, "validation")
    cal = report.fit.calibration if report.fit is not None else None
    if cal is not None:
        rows = [("loss", cal.loss.describe())] + [(f"N* ({k})", r.describe()) for k, r in cal.n_opt.items()]
        html += "<p>Prediction-interval rules calibrated on the whole ladder's rollout (what the plan uses):</p>"
        html += _table(("target", "rule"), rows, cls="text")
    return html


def _plan(report) -> str:
    if report.plan is None:
        return _skipped(report, "plan") or "<p>No plan: the fit was skipped.</p>"
    d = report.plan.to_dict()
    html = (f"<p>Budget {fmt_num(report.options['budget'])} FLOPs ({escape(report.options['budget_note'])}), "
            f"{report.options['gpus']} × {escape(str(report.options['gpu']))} at MFU {report.options['mfu']:g}.</p>")
    html += _table(("quantity", "value", f"{_pct(d['level'])} CI", f"{_pct(d.get('pi_level') or d['level'])} PI", "unit"),
                   _plan_rows(d))
    html += _notes([f"N*: {d.get('allocation_source')}" + (f"; {d['n_opt_reason']}" if d.get("n_opt_reason") else ""),
                    f"loss PI: {d['pi_source']}" if d.get("pi_source") else "",
                    f"N* PI: {d['n_opt_pi_source']}" if d.get("n_opt_pi_source") else "",
                    f"peak FLOP/s: {d['hardware_source']}" if d.get("hardware_source") else ""], "How:")
    html += _plan_hparams(d) + _plan_shape(d)
    return html + _notes(list(d.get("notes") or []) + [f"warning: {w}" for w in d.get("warnings") or []], "Notes:")


def _plan_rows(d: dict) -> list:
    def row(label, key, unit, fmt=fmt_num):
        v = d.get(key)
        if v is None:
            return None
        iv = lambda k: _interval(d.get(k), fmt) if d.get(k) else NONE   # noqa: E731
        return (label, fmt(v), iv(f"{key}_ci"), iv(f"{key}_pi"), unit)

    rows = [row("budget C", "budget_flops", "FLOPs"), row("parameters N*", "n_opt", "parameters"),
            row("tokens D*", "d_opt", "tokens"), row("tokens per parameter", "tokens_per_param", ""),
            row("predicted loss", "loss", "nats/token", _f4), row("target loss", "target_loss", "nats/token", _f4),
            row("compute for the target", "compute_for_target", "FLOPs")]
    for name, value in (d.get("derived") or {}).items():
        ci = (d.get("derived_ci") or {}).get(name)
        rows.append((f"law's derived {name}", fmt_num(value), _interval(ci) if ci else NONE, NONE, ""))
    if d.get("days") is not None:
        rows.append(("wall-clock", f"{d['days']:.3g} days", NONE, NONE, f"{d['gpus']} × {d['gpu']} at MFU {d['mfu']:g}"))
    rows.append(row("GPU-hours", "gpu_hours", "device-hours", lambda v: f"{v:,.0f}"))
    return [r for r in rows if r is not None]


def _plan_hparams(d: dict) -> str:
    rows, notes = [], []
    hp = d.get("hparams")
    if hp:
        tag = " (extrapolated)" if hp.get("extrapolated") else ""
        if hp.get("lr") is not None:
            rows.append(("learning rate", f"{hp['lr']:.3g}{tag}", f"{hp.get('law')}: {hp.get('formula')}"))
        if hp.get("batch") is not None:
            rows.append(("batch size", f"{fmt_num(hp['batch'], 3)} {hp.get('batch_unit', '')}/step{tag}",
                         f"{hp.get('law')}: {hp.get('formula')}"))
        notes += [hp.get("citation")] + list(hp.get("notes") or [])
    cb = d.get("critical_batch")
    if cb and cb.get("b_crit") is not None:
        rows.append(("critical batch", f"{fmt_num(cb['b_crit'], 3)} {cb.get('unit', '')}"
                     + (" (extrapolated)" if cb.get("extrapolated") else ""), f"{cb.get('law')} at the planned loss"))
        notes += [cb.get("citation")] + list(cb.get("notes") or [])
    if not rows:
        return ""
    html = "<p>Learning rate and batch size:</p>" + _table(("setting", "value", "from"), rows, cls="text")
    if cb and cb.get("trade"):
        html += ("<p>Above the critical batch on more GPUs (McCandlish et al. 2018: S = S_min(1 + B_crit/B), "
                 f"E = E_min(1 + B/B_crit)), against the planned batch {fmt_num(cb.get('batch'), 3)}:</p>")
        html += _table(("batch", "× B_crit", "GPUs", "steps", "time", "compute"),
                       [(fmt_num(t["batch"], 3), f"{t['multiple']:g}", f"{t['gpus']:.3g}", fmt_num(t["steps"], 3),
                         f"{t['time_ratio']:.2f}×", f"{t['compute_ratio']:.2f}×") for t in cb["trade"]])
    return html + _notes(notes, "Sources:")


def _plan_shape(d: dict) -> str:
    sh = d.get("shape")
    if not sh or not sh.get("shape"):
        return ""
    rows = [(k.replace("_", " "), v) for k, v in sh["shape"].items()]
    rows += [("non-embedding parameters", f"{sh['non_embedding_params']:,} (target {sh['n_target']:,.0f}, "
                                          f"{100 * sh['relative_error']:+.2f}%)"),
             ("total with embeddings", f"{sh['total_params']:,}"),
             ("aspect ratio d_model / n_layers", f"{sh['aspect_ratio']:.1f} (target {sh['target_aspect_ratio']:.1f})")]
    if d.get("shape_flops_per_token"):
        rows.append(("training FLOPs per token", f"{fmt_num(d['shape_flops_per_token'], 3)} "
                                                 f"(6N = {fmt_num(6 * d['n_opt'], 3)})"))
    return ("<p>Model shape:</p>" + _table(("part", "value"), rows, cls="text")
            + f"<details><summary>How the shape is chosen</summary><p>{escape(sh.get('rules_text', ''))}</p></details>")


def _warnings(report) -> str:
    html = "".join(f'<div class="skip"><span class="step">{escape(step)}</span>skipped: {escape(why)}</div>'
                   for step, why in report.skipped)
    html += "".join(f'<div class="warn"><span class="step">{escape(step)}</span>{escape(w)}</div>'
                    for step, w in report.warnings)
    return html or '<p class="ok">No warnings: every step ran and none of them raised a concern.</p>'


def _made(report) -> str:
    p = report.provenance or {}
    if not p:
        return "<p>Not recorded.</p>"
    src = p.get("input", {})
    size = f", {src['bytes']:,} bytes" if src.get("bytes") is not None else ""
    rows = [("command", p.get("command")), ("input", src.get("name")), ("input kind", f"{src.get('kind')}{size}"),
            ("input SHA-256", src.get("sha256") or "none (not read from a file)")]
    rows += [(f"reading option {k}", ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
             for k, v in (p.get("reading") or {}).items()]
    if not p.get("reading"):
        rows.append(("reading options", "none: every row of the input, its own column names"))
    rows += [("scalinglab", p.get("scalinglab")), ("Python", p.get("python")), ("platform", p.get("platform")),
             ("date (UTC)", p.get("date"))]
    rows += [(f"option {k}", v) for k, v in report.options.items() if k not in ("budget_note",)]
    return ("<p>Everything needed to make this report again: the same input (check its SHA-256), the same "
            "versions and the command.</p>" + _table(("what", "value"), rows, cls="text prov"))


def render_html(report) -> str:
    from scalinglab.util.version import __version__

    bodies = {"glance": _glance, "data": _data, "fit": _fit, "isoflop": _isoflop, "frontier": _frontier,
              "validation": _validation, "plan": _plan, "warnings": _warnings, "made": _made}
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title in SECTIONS)
    opts = ", ".join(f"{k}={fmt_num(v) if isinstance(v, float) else v}" for k, v in report.options.items()
                     if k not in ("formula", "budget_note"))
    sections = "".join(f'<section id="{key}"><h2>{escape(title)}</h2>{bodies[key](report)}</section>'
                       for key, title in SECTIONS)
    title = f"scalinglab report: {report.law} on {report.source}"
    made = report.provenance or {}
    digest = (made.get("input") or {}).get("sha256")
    stamp = "; ".join(x for x in (f"made {made.get('date')}" if made.get("date") else "",
                                   f"input SHA-256 {digest[:12]}…" if digest else "") if x)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
            f"<h1>{escape(title)}</h1><p class=\"sub\">scalinglab {escape(__version__)}; {escape(opts)}"
            + (f"<br>{escape(stamp)} (see <a href=\"#made\">how this report was made</a>)" if stamp else "") + "</p>"
            f"<nav>{nav}</nav>{sections}</main></body></html>\n")
