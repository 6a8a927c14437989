"""`scalinglab infer-plan`: a thin layer over ``planning/test_time.py`` (coverage fits per model
and the compute-optimal choice of model and samples for an inference budget)."""
from __future__ import annotations

from typing import List, Optional

import typer

from scalinglab.cli.app import app
from scalinglab.cli.language import bootstrap_option
from scalinglab.cli.render import check_bootstrap, check_range, emit_json, fail, parse_budgets, parse_mapping, \
    print_frame


@app.command("infer-plan")
def infer_plan_command(
    samples: str = typer.Argument(..., help="Sample outcomes (CSV/TSV/Parquet/JSONL): per-problem rows with model, "
                                  "params, problem, n, correct (and tokens per sample), or per-sample rows with "
                                  "correct as 0/1 and no n column; flops_per_sample overrides 2·params·tokens."),
    budget: List[str] = typer.Option([], "--budget", help="Inference FLOPs per problem, repeatable or "
                                     "comma-separated, e.g. --budget 1e14,1e15"),
    mapping: List[str] = typer.Option([], "--map", help="Column mapping ours=theirs, repeatable, e.g. --map "
                                      "correct=passed --map n=num_samples (ours: model, params, problem, n, correct, "
                                      "tokens, flops_per_sample)"),
    k: List[int] = typer.Option([], "--k", help="Also predict each model's pass@k at these k (repeatable)"),
    tokens_per_sample: Optional[float] = typer.Option(None, "--tokens-per-sample", help="Generated tokens per "
                                                      "sample, when the table has no tokens column"),
    n_bootstrap: int = bootstrap_option("CIs (the problems resampled; 0 = none)"),
    level: float = typer.Option(0.9, "--level", help="Level of the CIs and prediction intervals"),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
):
    """Fit -log pass@k = a·k^-b per model and, for each inference budget, pick the model and the
    number of samples k with the highest predicted pass@k (Brown et al. 2024; Schaeffer et al. 2025)."""
    from scalinglab.planning.test_time import infer_plan

    with fail(as_json):
        check_range(level, "--level", low=0, high=1, low_open=True, high_open=True, example="0.9")
        check_bootstrap(n_bootstrap)
        if tokens_per_sample is not None:
            check_range(tokens_per_sample, "--tokens-per-sample", low=0, low_open=True, example="500")
        for v in k:
            check_range(v, "--k", low=1, integer=True, example="1000")
        check_range(seed, "--seed", low=0, integer=True, example="0")
        budgets = [b for text in budget for b in parse_budgets(text, "--budget")]
        if not budgets:
            raise typer.BadParameter("--budget: give at least one inference budget in FLOPs per problem, "
                                     "e.g. --budget 1e15")
        plan = infer_plan(samples, budgets, tokens_per_sample=tokens_per_sample, mapping=parse_mapping(mapping),
                          level=level,
                          n_boot=n_bootstrap, seed=seed)
        predictions = {f.model: f.predict(k) for f in plan.fits} if k else {}
    if as_json:
        payload = plan.to_dict()
        if predictions:
            payload["predictions"] = {m: p.to_dict(orient="records") for m, p in predictions.items()}
        emit_json(payload)
        return
    pct = f"{100 * level:g}%"
    from scalinglab.util.formatting import fmt_interval

    fits = plan.fit_table()
    names = plan.fits[0].law.public_names
    for name in names:
        fits[f"{name} CI"] = [fmt_interval((lo, hi)) for lo, hi in zip(fits[f"{name}_lo"], fits[f"{name}_hi"])]
    notes = [f"{f.model}: {note}" for f in plan.fits for note in f.notes]
    notes.insert(0, "problems per model: " + ", ".join(f"{m} {p}" for m, p in zip(fits["model"], fits["problems"]))
                 + "; n: samples of the least-sampled problem (the largest k fitted)")
    print_frame(fits[["model", "params", "flops/sample", "n", "pass@1", *(c for n in names for c in (n, f"{n} CI"))]],
                f"Coverage fits: -log pass@k = a·k^-b ({pct} bootstrap CI over problems)", digits=3, notes=notes)
    for model, p in predictions.items():
        print_frame(_interval_columns(p, pct), f"{model}: pass@k beyond the samples drawn")
    opts = plan.options.copy()
    for column, by in (("best", "pass_at_k"), ("β-best", "beta_binomial")):
        best = set(zip(plan.best(by)["budget"], plan.best(by)["model"]))
        opts[column] = ["*" if (b, m) in best else "" for b, m in zip(opts["budget"], opts["model"])]
    print_frame(_interval_columns(opts, pct), "Inference plan: FLOPs per problem -> samples per model",
                notes=["samples = floor(budget / FLOPs per sample); best: the highest pass@k at each budget "
                       "by the power law, β-best: by the beta-binomial",
                       f"PI: the CI widened by the curve's rollout error ({pct}); beta-binomial: the "
                       "distributional estimate (Schaeffer et al. 2025) as a cross-check"])


def _interval_columns(frame, pct: str):
    """pass@k with its CI and PI as text columns (the other columns kept)."""
    from scalinglab.util.formatting import fmt_interval, fmt_num

    out = frame.copy()
    ok = out["samples"] >= 1
    out["pass@k"] = [fmt_num(v, 3) if o else "-" for v, o in zip(out["pass_at_k"], ok)]
    out[f"{pct} CI"] = [fmt_interval((lo, hi)) if o else "" for lo, hi, o in zip(out["ci_lo"], out["ci_hi"], ok)]
    out[f"{pct} PI"] = [fmt_interval((lo, hi)) if o else "" for lo, hi, o in zip(out["pi_lo"], out["pi_hi"], ok)]
    out["beta-binomial"] = [fmt_num(v, 3) if o else "" for v, o in zip(out["beta_binomial"], ok)]
    out["samples"] = out["samples"].astype(int)
    keep = [c for c in ("budget", "model", "samples", "pass@k", f"{pct} CI", f"{pct} PI", "beta-binomial", "best",
                        "β-best")
            if c in out.columns]
    return out[keep]
