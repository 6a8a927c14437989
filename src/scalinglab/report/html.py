"""One self-contained HTML file from a :class:`~scalinglab.report.document.Report`.

Figures are embedded as base64 PNG, the style sheet is inline, and there is no script and no
external reference: the page opens offline in any browser and can be mailed as one file.
Text that comes from the data (column names, file names, warnings) is always escaped.
"""
from __future__ import annotations

import base64
from html import escape

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
.ok { color: #1e7b34; } .step { font-weight: 600; margin-right: 6px; }
details summary { cursor: pointer; color: #2457a6; margin: 6px 0; }
"""

SECTIONS = (("glance", "At a glance"), ("data", "Data"), ("fit", "Fit"), ("isoflop", "IsoFLOP valleys"),
            ("frontier", "Frontier"), ("validation", "Validation and calibration"), ("plan", "Plan"),
            ("warnings", "Warnings"))


def _interval(ci, digits_fmt=fmt_num) -> str:
    if not ci or ci[0] is None:
        return ""
    return f"[{digits_fmt(ci[0])} – {digits_fmt(ci[1])}]"


def _table(header, rows, cls: str = "") -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


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
    if d.get("budgets"):
        html += "<p>Budgets (IsoFLOP levels) and their runs:</p>"
        html += _table(("C (FLOPs)", "runs"), [(fmt_num(c), k) for c, k in d["budgets"]])
    if report.dropped:
        html += "<p>Rows dropped on request:</p><ul>" + "".join(f"<li>{escape(x)}</li>" for x in report.dropped) + "</ul>"
    return html


def _fit(report) -> str:
    fit = report.fit
    if fit is None:
        return _skipped(report, "fit")
    ci = fit.bootstrap.ci if fit.bootstrap is not None else {}
    lvl = f"{100 * fit.bootstrap.level:g}% CI" if fit.bootstrap is not None else "CI"
    rows = [(name, fmt_num(value), _interval(ci.get(name))) for name, value in fit.params.items()]
    rows += [(name, "", _interval(ci.get(name))) for name in ci if name not in fit.params]
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
    if report.isoflop is None:
        return _skipped(report, "isoflop")
    return _pre(report.isoflop.summary()) + _figure(report, "isoflop.png", "IsoFLOP valleys with their minima")


def _frontier(report) -> str:
    html = ("<p>N*(C) from approach 2 (the valleys' power law) and from the law (approach 3), each with its "
            "bootstrap band; compute beyond the largest budget in the data is shaded: that part is "
            "extrapolation.</p>")
    html += _figure(report, "frontier.png", "compute-optimal N*(C) with bands and the extrapolation region")
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


def _validation(report) -> str:
    html = ""
    if report.validation is not None:
        html += _pre(report.validation.summary())
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
    return (f"<p>Budget {fmt_num(report.options['budget'])} FLOPs ({escape(report.options['budget_note'])}), "
            f"{report.options['gpus']} × {escape(str(report.options['gpu']))} at MFU {report.options['mfu']:g}.</p>"
            + _pre(report.plan.summary()))


def _warnings(report) -> str:
    html = "".join(f'<div class="skip"><span class="step">{escape(step)}</span>skipped: {escape(why)}</div>'
                   for step, why in report.skipped)
    html += "".join(f'<div class="warn"><span class="step">{escape(step)}</span>{escape(w)}</div>'
                    for step, w in report.warnings)
    return html or '<p class="ok">No warnings: every step ran and none of them raised a concern.</p>'


def render_html(report) -> str:
    from scalinglab.util.version import __version__

    bodies = {"glance": _glance, "data": _data, "fit": _fit, "isoflop": _isoflop, "frontier": _frontier,
              "validation": _validation, "plan": _plan, "warnings": _warnings}
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title in SECTIONS)
    opts = ", ".join(f"{k}={fmt_num(v) if isinstance(v, float) else v}" for k, v in report.options.items()
                     if k not in ("formula", "budget_note"))
    sections = "".join(f'<section id="{key}"><h2>{escape(title)}</h2>{bodies[key](report)}</section>'
                       for key, title in SECTIONS)
    title = f"scalinglab report: {report.law} on {report.source}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
            f"<h1>{escape(title)}</h1><p class=\"sub\">scalinglab {escape(__version__)}; {escape(opts)}</p>"
            f"<nav>{nav}</nav>{sections}</main></body></html>\n")
