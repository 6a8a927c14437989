"""Core commands: demo, fit, isoflop, plan, validate, plot.

Every command is a thin shell: parse options, call the public API, render the result
(rich for people, ``--json`` for programs). No fitting or planning logic lives here.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from scalinglab.cli.app import app
from scalinglab.cli.fileopts import AllowEditedOpt
from scalinglab.cli.optionset import with_option_sets
from scalinglab.cli.runopts import RunOptions
from scalinglab.cli.levelopts import LevelOpt, checked_level, resolved_level
from scalinglab.cli.language import bootstrap_option
from scalinglab.cli.lawopts import FIX_HELP, USER_LAW_HELP, LawOptions, load_user_law
from scalinglab.cli.metricopts import (XLabelOpt, XOpt, YKindOpt, YLabelOpt, YOpt, YRangeOpt, MetricOptions,
                                       is_metric, load_metric, metric_candidates, reads_own_columns,
                                       with_metric)
from scalinglab.cli.render import (
    RegistryHelpCommand,
    add_file_notes,
    file_notes,
    check_bootstrap,
    check_range,
    console,
    emit_json,
    err_console,
    fail,
    option_given,
    print_frame,
    print_text_block,
    to_cli,
)

SourceArg = typer.Argument(None, help="Runs: a .csv/.tsv, .parquet, .jsonl/.json file or a sweep store (.db); "
                                     "with --from, a W&B export, or an MLflow store (an mlruns/ folder, a SQLite "
                                     "file or a server URL); none with --from wandb:ENTITY/PROJECT.", show_default=False)


def _check_output_file(path: Optional[Path], option: str = "-o") -> None:
    """Refuse, before any work, an output file that cannot be written: a directory, or a file in
    a directory that does not exist."""
    if path is None:
        return
    if path.is_dir():
        raise typer.BadParameter(f"{option} {path}: is a directory; give a file to write, e.g. {option} fit.json")
    if not path.parent.exists():
        raise typer.BadParameter(f"{option} {path}: the directory {path.parent} does not exist")
    if not path.parent.is_dir():
        raise typer.BadParameter(f"{option} {path}: {path.parent} is a file, not a directory")


def _check_plan_output(path: Optional[Path]) -> None:
    """``plan -o``: a .json file that can be written (the document ``--json`` prints)."""
    if path is None:
        return
    if path.is_dir():
        raise typer.BadParameter(f"-o {path}: is a directory; give a file to write, e.g. -o plan.json")
    _check_output_file(path)
    if path.suffix.lower() != ".json":
        raise typer.BadParameter(f"-o {path}: plan writes JSON, the document --json prints; give a file "
                                 f"ending in .json, e.g. -o plan.json" + (f" (not {path.suffix})" if path.suffix else ""))


def _where_hint(group: Optional[str], label) -> str:
    """``--where "config == 'a'"``: how to choose one group on the command line."""
    column = group or "group"
    if not column.isidentifier():
        column = f"`{column}`"
    return f"--where \"{column} == {str(label)!r}\""


def _refuse_pooled(runs, group: Optional[str], what: str, *, by_group: bool = False) -> None:
    """Refuse runs that hold several experiments (``group`` labels): one law fitted to all of
    them pools them into one answer.  The message names the groups and the ways out."""
    from scalinglab.studies.groups import group_labels

    labels = group_labels(runs)
    if len(labels) <= 1:
        return
    shown = ", ".join(repr(str(g)) for g in labels[:6]) + (f" and {len(labels) - 6} more" if len(labels) > 6 else "")
    column = f" (--group {group})" if group else " (its group column)"
    ways = f"{what} one group with {_where_hint(group, labels[0])}"
    if by_group:
        ways += (", or fit one law per group with --by-group (or one law whose exponents all groups share "
                 "with --shared-exponents)")
    raise typer.BadParameter(f"{runs.source}: the runs hold {len(labels)} groups{column}: {shown}. One law "
                             f"fitted to several experiments pools their valleys into one answer; {ways}")


def _check_runs(runs, what: str, *, force: bool, law=None) -> list[str]:
    """Refuse pooled or degenerate runs (``fitting/ladder_checks.py``) before any work; with
    ``--force``, the problems to print as WARNINGs (``_warned``)."""
    from scalinglab.fitting.ladder_checks import check_runs

    if law is not None and is_metric(law):          # a metric table keeps its own [0, 1] checks
        return []
    return check_runs(runs, what=what, target=getattr(law, "target", "loss"), force=force,
                      features=tuple(getattr(law, "variables", ())))


def _warned(text: str, warnings: list[str]) -> str:
    """A panel's text with the problems ``--force`` let through, one WARNING line each."""
    return "\n".join([text] + [f"WARNING: {to_cli(w)}" for w in warnings]) if warnings else text


_LOAD_NOTE_PREFIXES = ("bin_budgets", "--from", "W&B", "MLflow")


def _dropped_row(row) -> str:
    """``row 7: run=r3 loss=2.91 params=1.2e+08`` with whatever of these the dropped row has."""
    parts = []
    if row.get("source_row") is not None and str(row.get("source_row")) != "nan":
        parts.append(f"row {int(row['source_row'])}:")
    for key in ("run_id", "run_name", "loss", "params"):
        value = row.get(key)
        if value is None or (isinstance(value, float) and value != value):
            continue
        if key in ("run_id", "run_name"):
            parts.append(f"{'run' if key == 'run_id' else 'name'}={value}")
            continue
        try:
            parts.append(f"{key}={float(value):.4g}")
        except (TypeError, ValueError):
            parts.append(f"{key}={value}")
    return " ".join(parts) or "row"


def _load(source: str, options: RunOptions, law=None):
    from scalinglab.data.readers import load_runs

    if source is None and not (options.source_format or "").lower().startswith(("wandb:", "mlflow")):
        raise typer.BadParameter("no runs given: give a run file (SOURCE), or --from wandb:ENTITY/PROJECT (W&B's "
                                 "API) or --from mlflow:EXPERIMENT (an MLflow tracking store)")
    if law is not None and (is_metric(law) or reads_own_columns(law)):   # --y/--x: a metric table (data/metric.py)
        return load_metric(source, law, options)
    options.check()
    runs = load_runs(source, **options.as_kwargs())
    for note in runs.notes:
        if note.startswith(_LOAD_NOTE_PREFIXES):
            err_console.print(f"note: {to_cli(note)}", markup=False)
    if len(runs.dropped):
        err_console.print(f"[yellow]dropped {len(runs.dropped)} row(s) from {runs.source}:[/]")
        for _, row in runs.dropped.iterrows():
            detail = row.get("detail") or row["reason"]
            err_console.print(f"  {_dropped_row(row)} ({detail})", markup=False)
    for warning in getattr(runs, "warnings", []) or []:
        err_console.print(f"warning: {to_cli(warning)}", style="yellow", markup=False)
    return runs


ForceOpt = typer.Option(False, "--force", help="Go on despite pooled or degenerate input (two experiments in one "
                        "file, no loss variation, loss rising with compute, losses that are no nats/token) or a "
                        "degenerate fit, with a WARNING naming each problem.")
WeightsOpt = typer.Option("auto", help="Per-point weights of the objective: auto (valley weights on IsoFLOP ladders, "
                                       "else none), none, valley, valley_narrow, compute, compute_linear, valley_compute.")


def _weights(name: str):
    """The CLI's weights option as the library takes it ("none" -> None)."""
    return None if name.lower() == "none" else name
FixOpt = typer.Option([], "--fix", help=FIX_HELP)
ByOpt = typer.Option(None, "--by", help="Column the runs are split along (the calibration's rollout, a hold-out): "
                     "flops, params, tokens or any cost or scale column the law reads; the intervals widen with "
                     "the decades beyond the fitted data along it. Default: flops for a law of params, tokens "
                     "or flops; --x for a metric; else the formula's first --var.")       # compare's --fix (its --law takes registered laws only)


@app.command(cls=RegistryHelpCommand)
@with_option_sets
def fit(
    source: str = SourceArg,
    laws: LawOptions = LawOptions(),
    supervised_fit: Optional[Path] = typer.Option(None, "--supervised-fit", help="With --law distillation: the student's supervised law, a fit JSON (e.g. `fit runs.csv --law chinchilla -o sup.json`) or a JSON object of E, A, B, alpha, beta (gamma optional); default Hoffmann et al. 2022 eq. 10."),
    reading: RunOptions = RunOptions(),
    loss: str = typer.Option("huber", help="Objective on log-loss residuals: huber (summed), mse, asymmetric "
                             "(= asymmetric_huber: Huber with --asymmetry times the weight where the law predicts "
                             "a higher loss than observed)."),
    delta: float = typer.Option(1e-3, help="Huber delta on log-loss residuals."),
    asymmetry: Optional[float] = typer.Option(None, "--asymmetry", help="With --loss asymmetric: the weight on "
                                              "over-predicted points (> 0; default 10; 1 is Huber)."),
    method: str = typer.Option("auto", help="multistart, varpro (chinchilla only) or auto (both, compared)."),
    weights: str = WeightsOpt,
    bootstrap: int = bootstrap_option("confidence intervals and the derived quantities; 0 = none"),
    unit: Optional[str] = typer.Option(None, help="Bootstrap resampling unit: point, run or size (default: the "
                                       "law's own: point; run for a multi-output law, a run's outputs together)."),
    level: Optional[float] = LevelOpt,
    budget: List[float] = typer.Option([], help="FLOP budget(s) at which to report N*, D*, loss with CIs."),
    workers: Optional[int] = typer.Option(None, "--jobs", "-j", help="Worker processes of the bootstrap (default: "
                                          "all cores)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the fit (JSON) here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    seed: int = typer.Option(0, help="Random seed for the bootstrap."),
    calibrate: bool = typer.Option(True, help="Calibrate prediction intervals on the ladder's rollout (refits below each budget)."),
    by: Optional[str] = ByOpt,
    by_group: bool = typer.Option(False, "--by-group", help="Runs of several experiments (--group): fit one law "
                                  "per group and print them side by side (no bootstrap, calibration or fit file)."),
    shared_exponents: bool = typer.Option(False, "--shared-exponents", help="Runs of several experiments "
                                          "(--group): fit one law whose exponents all groups share, each "
                                          "group with its own coefficients; shown beside the per-group fits."),
    y: Optional[str] = YOpt,
    y_kind: Optional[str] = YKindOpt,
    y_range: Optional[str] = YRangeOpt,
    x: Optional[str] = XOpt,
    allow_edited: bool = AllowEditedOpt,
    force: bool = ForceOpt,
):
    """Fit a scaling law to runs: a grid of starts refined by batched Levenberg-Marquardt on the
    summed Huber loss of log-loss residuals (--loss, --method), with bootstrap confidence intervals.

    The fit carries prediction intervals calibrated on the ladder's own rollout (fit below each
    budget, predict above), which `scalinglab plan` uses.  Runs that hold several experiments
    (several --group labels) are refused, unless --by-group or --shared-exponents says how to
    fit them."""
    with fail(as_json=as_json):
        check_bootstrap(bootstrap)
        level = resolved_level(level)
        check_range(delta, "--delta", low=0, low_open=True, example="1e-3")
        check_range(workers, "--jobs", low=1, integer=True, example="4")
        check_range(seed, "--seed", low=0, integer=True, example="0")
        for value in budget:
            check_range(value, "--budget", low=0, low_open=True, example="1e21")
        if by_group or shared_exponents:
            if bootstrap > 0 and option_given("bootstrap"):
                raise typer.BadParameter("--bootstrap applies to one law; with --by-group/--shared-exponents "
                                         "fit the group you need alone (--where) to bootstrap it")
            if output is not None:
                raise typer.BadParameter("-o writes one law for `scalinglab plan`; with --by-group/"
                                         "--shared-exponents fit the group you will plan alone (--where) "
                                         "and write that (or use --json for every group's fit)")
        _check_output_file(output)
        from scalinglab.cli.distill import law_with_supervised_fit

        law_obj = with_metric(law_with_supervised_fit(laws.resolve(y), supervised_fit,
                                                      allow_edited=allow_edited),
                              MetricOptions(y, y_kind, y_range, x), laws.var)
        runs = _load(source, reading, law_obj)
        fit_kwargs = dict(loss=loss, delta=delta, method=method, weights=_weights(weights))
        if asymmetry is not None:
            fit_kwargs["asymmetry"] = asymmetry
        if force:                   # also keeps a fit whose residuals explode (a warning, not a refusal)
            fit_kwargs["force"] = True
        if by_group or shared_exponents:
            _fit_by_group(runs, law_obj, reading.group, fit_kwargs, shared=shared_exponents, as_json=as_json)
            return
        _refuse_pooled(runs, reading.group, "fit", by_group=True)
        data_problems = _check_runs(runs, "fit", force=force, law=law_obj)
        if bootstrap > 0:
            from scalinglab.fitting.bootstrap import bootstrap as run_bootstrap

            result = run_bootstrap(runs, law_obj, n=bootstrap, unit=unit, level=level, workers=workers,
                                   seed=seed, progress=not as_json, budgets=tuple(budget) or None,
                                   calibrate=False, **fit_kwargs)
        else:
            from scalinglab.fitting.engine import fit as run_fit

            result = run_fit(runs, law_obj, **fit_kwargs)
        if calibrate:       # what scalinglab.fit(calibrate=True) does, with a progress bar
            from scalinglab.fitting.calibration import calibrate_result

            calibrate_result(result, runs, level, progress=not as_json, by=by)
        if data_problems:               # travels with the fit: a plan from it warns (or refuses) too
            result.diagnostics["data_problems"] = data_problems
        if output:
            result.to_json(output)
        if as_json:
            payload = result.to_dict()
            emit_json({**result.params, "objective": result.objective, **payload})
        else:
            print_text_block(_warned(to_cli(result.summary()), data_problems),
                             title=f"{law_obj.name} fit to {runs.source} ({len(runs)} runs)")
            if result.bootstrap is not None:
                print_text_block(to_cli(result.bootstrap.summary()), title="Bootstrap: derived quantities")
            if output:
                console.print(f"fit written to {output}")


def _fit_by_group(runs, law_obj, group: Optional[str], fit_kwargs: dict, *, shared: bool, as_json: bool) -> None:
    """``fit --by-group`` / ``--shared-exponents``: one law per group, and optionally one law whose
    exponents the groups share; says which it did."""
    from scalinglab.studies.groups import fit_groups, fit_shared_exponents, group_labels

    labels = group_labels(runs)
    if len(labels) < 2:
        hint = "label each run's experiment with --group COLUMN" if not labels else "there is nothing to compare"
        raise typer.BadParameter(f"--by-group/--shared-exponents: {runs.source} holds "
                                 f"{len(labels) or 'no'} group{'s' if len(labels) != 1 else ''}; {hint}")
    per_group = fit_groups(runs, law_obj, **fit_kwargs)
    joint = fit_shared_exponents(runs, law_obj, group_fits=per_group, **fit_kwargs) if shared else None
    if as_json:
        payload = {"mode": "shared_exponents" if shared else "by_group", **per_group.to_dict()}
        if joint is not None:
            payload["shared_exponents"] = joint.to_dict()
        emit_json(payload)
        return
    column = f" (--group {group})" if group else ""
    table = per_group.table
    notes = [f"{g}: {to_cli(w)}" for g, w in zip(table["group"], table["warnings"]) if w]
    shown = table.drop(columns=["warnings", "rmse_log"]).rename(columns={"converged": "conv."})
    shown["conv."] = shown["conv."].map({True: "yes", False: "no"})
    print_frame(shown, digits=3, notes=notes,
                title=f"One {law_obj.name} law per group{column}: {len(per_group)} of {len(labels)} groups of "
                      f"{runs.source} fitted, each on its own runs")
    if joint is not None:
        cost = joint.objective - joint.separate_objective
        shared = ", ".join(f"{k} = {v:.4g}" for k, v in joint.shared.items())
        notes = [to_cli(w) for w in joint.warnings] + [f"{g} left out: {w}" for g, w in joint.skipped.items()]
        print_frame(joint.table, digits=3, notes=notes,
                    title=f"One {law_obj.name} law with shared exponents ({shared}), each group its own "
                          f"coefficients: objective {joint.objective:.4g} vs {joint.separate_objective:.4g} "
                          f"for the per-group fits (sharing costs {cost:.3g}); converged {joint.converged}")
    console.print("To plan, fit the one group you need: "
                  f"{_where_hint(group, labels[0])} -o fit.json", markup=False, soft_wrap=True)


@app.command(cls=RegistryHelpCommand)
@with_option_sets
def isoflop(
    source: str = SourceArg,
    reading: RunOptions = RunOptions(),
    approach: int = typer.Option(2, help="2: IsoFLOP valleys (final losses per budget); 1: lower envelope of training curves (rows sharing a run_id)."),
    method: str = typer.Option("parabola", "--valley", help="Approach 2: each budget's minimum by a parabola in log N, or akima."),
    bootstrap: int = bootstrap_option("exponent CIs"),
    level: Optional[float] = LevelOpt,
    keep_edge: bool = typer.Option(False, help="Keep budgets whose minimum lies at the edge of the sampled sizes."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    seed: int = typer.Option(0, help="Random seed for the bootstrap."),
    force: bool = ForceOpt,
):
    """Hoffmann approaches 2 (IsoFLOP valleys) and 1 (training-curve envelope): N*(C), D*(C) with CIs."""
    from scalinglab.fitting.approach1 import isoflop_approach1
    from scalinglab.fitting.approach2 import isoflop_approach2

    with fail(as_json=as_json):
        if approach not in (1, 2):
            raise typer.BadParameter(f"--approach {approach}: valid values are 1 (envelope) and 2 (IsoFLOP)")
        check_bootstrap(bootstrap)
        level = resolved_level(level)
        check_range(seed, "--seed", low=0, integer=True, example="0")
        if approach == 1 and str(source).endswith((".db", ".sqlite")):
            # a sweep store's final losses are one row per run; approach 1 needs the training curves
            from scalinglab.data.store import curve_runs_frame

            source = curve_runs_frame(source)
        if approach == 1:
            reading.refuse("approach 1 reads each run's whole training curve and --last-step keeps only its last "
                           "checkpoint; leave it out, or use --approach 2 on final losses", "last_step")
        runs = _load(source, reading)
        data_problems = _check_runs(runs, "isoflop", force=force)
        if approach == 2:
            result = isoflop_approach2(runs, method=method, n_bootstrap=bootstrap, level=level, seed=seed,
                                       keep_edge=keep_edge)
        else:
            result = isoflop_approach1(runs, n_bootstrap=bootstrap, level=level, seed=seed, keep_edge=keep_edge)
        if as_json:
            emit_json({**result.to_dict(), **({"data_problems": data_problems} if data_problems else {})})
        else:
            print_text_block(_warned(to_cli(result.summary()), data_problems),
                             title=f"Hoffmann approach {approach} on {runs.source}")


@app.command(cls=RegistryHelpCommand)
@with_option_sets
def plan(
    fit_json: Path = typer.Argument(..., help="A fit written by `scalinglab fit ... -o fit.json`."),
    budget: Optional[float] = typer.Option(None, help="Training compute budget in FLOPs, e.g. 1e23."),
    target_loss: Optional[float] = typer.Option(None, help="Instead of a budget: the loss to reach."),
    gpu: str = typer.Option("h100", help="GPU type for wall-clock (see the table in the docs)."),
    mfu: float = typer.Option(0.4, help="Model FLOPs utilisation in (0, 1]."),
    gpus: int = typer.Option(1, help="Number of GPUs."),
    runs: Optional[str] = typer.Option(None, help="The fit's IsoFLOP ladder: approach 2's N* (and the rollout calibration, if the fit has none)."),
    reading: RunOptions = RunOptions(),
    prefer: str = typer.Option("auto", help="N* source: auto (by the ladder's rollout evidence), approach2, approach3 or combined."),
    peak_flops: Optional[float] = typer.Option(None, help="Peak FLOP/s per device, instead of the --gpu table."),
    data_max_flops: Optional[float] = typer.Option(None, help="Largest compute in the fit's data (for the extrapolation check; read from the fit when it records it)."),
    vocab_size: int = typer.Option(32768, help="Vocabulary of the planned model (model-shape search)."),
    context_length: int = typer.Option(2048, "--context", help="Context length of the planned model, in tokens."),
    head_dim: int = typer.Option(64, help="Attention head dimension; d_model is a multiple of it."),
    aspect_ratio: Optional[float] = typer.Option(None, help="d_model / n_layers (default: scale-dependent, 64 -> 128)."),
    tensor_parallel: int = typer.Option(1, "--tensor-parallel", help="Devices that split each layer (Megatron tensor parallelism): the shape's n_heads and ffn_hidden divide by it."),
    unique_tokens: Optional[float] = typer.Option(None, help="Unique tokens available (data-constrained laws): the plan repeats data beyond them."),
    force: bool = ForceOpt,
    budget_usd: Optional[float] = typer.Option(None, help="Instead of --budget: a training budget in dollars, converted through the GPU's peak, --mfu and its price per GPU-hour."),
    usd_per_gpu_hour: Optional[float] = typer.Option(None, help="Price per GPU-hour of the training GPU (default: the hardware table's typical cloud price, an assumption); prints dollars."),
    inference_tokens: Optional[float] = typer.Option(None, help="Tokens the model will serve over its life: adds the inference-aware optimum (Sardana et al.) that minimises training + inference cost."),
    inference_gpu: Optional[str] = typer.Option(None, help="GPU that serves the model (default: --gpu), priced separately from training."),
    inference_dtype: str = typer.Option("bf16", help="Serving dtype: bf16, fp16, fp8, int8 or fp4 (what the --inference-gpu's datasheet supports)."),
    inference_mfu: Optional[float] = typer.Option(None, help="Utilisation of the serving GPU in (0, 1] (default: --mfu)."),
    inference_usd_per_gpu_hour: Optional[float] = typer.Option(None, help="Price per GPU-hour of the serving GPU (default: the table's)."),
    tokens_per_param: Optional[float] = typer.Option(None, help="Also plan at this token multiplier M = D/N (over-training): N = sqrt(C/(6M)), its loss and its cost vs the compute-optimal point."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Training precisions to compare at equal GPU-hours, e.g. bf16,fp8,fp4 (a fit of --law precision; faster dtypes buy more FLOPs, from the --gpu table); the plan itself uses the first."),
    serve_bits: Optional[str] = typer.Option(None, "--serve-bits", help="Quantise the planned model(s) to this precision after training (bits or a name, e.g. 4 or int4): adds the law's post-training-quantisation loss."),
    batch_size: Optional[float] = typer.Option(None, "--batch-size", help="Tokens per step of the planned run, for a law that plans at a batch size (--law critical_batch)."),
    sparsity: Optional[float] = typer.Option(None, "--sparsity", help="Fraction of weights pruned in the planned model, in [0, 1), for a law of sparsity (--law sparsity; N is then the non-zero parameters)."),
    vocab_params: Optional[float] = typer.Option(None, "--vocab-params", help="Vocabulary (embedding) parameters of the planned model, for a law of them (--law vocabulary; N is then the total)."),
    experts: Optional[float] = typer.Option(None, "--experts", help="Number of experts of the planned model, for a law of experts (--law moe; 1 = dense)."),
    max_total_params: Optional[float] = typer.Option(None, "--max-total-params", help="Memory limit on the model's TOTAL parameters (--law moe): chooses the number of experts and the active size of least loss for --budget."),
    hparams_law: str = typer.Option("stepLaw", "--hparams-law", help="Law for the run's learning rate and batch size: stepLaw, deepseek or a fitted law's JSON (`scalinglab hparams fit sweep.csv -o hp.json`); none to leave them out."),
    critical_batch: str = typer.Option("kaplan", "--critical-batch", help="Law for the critical batch at the planned loss: kaplan or a fitted law's JSON (`scalinglab hparams critical-batch`); none to leave it out."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Also write the plan to this file: JSON (.json), the document --json prints."),
    student_params: Optional[float] = typer.Option(None, "--student-params", help="Distill or train from scratch: the student's size N_S (a fit of --law distillation); compares the two at --budget."),
    teacher_loss: Optional[float] = typer.Option(None, "--teacher-loss", help="With --student-params: the teacher's cross-entropy L_T."),
    teacher_params: Optional[float] = typer.Option(None, "--teacher-params", help="With --student-params: the teacher's size N_T (its inference cost, and its loss with --teacher-tokens)."),
    teacher_tokens: Optional[float] = typer.Option(None, "--teacher-tokens", help="With --student-params: the teacher's training tokens D_T."),
    teacher_cost: str = typer.Option("inference", "--teacher-cost", help="With --student-params: inference, included (also the teacher's training) or free."),
    students: int = typer.Option(1, "--students", help="With --student-params and --teacher-cost included: students that share the teacher's training (each pays 1/students of it)."),
    supervised: Optional[Path] = typer.Option(None, "--supervised", help="With --student-params: a fit of the student's supervised law (e.g. --law chinchilla) for the from-scratch side, with its intervals."),
    optimal_teacher: bool = typer.Option(False, "--optimal-teacher", help="With --student-params: the teacher is trained for this distillation; choose its size and tokens (and the student's tokens) that give the student the least loss for --budget (planning/distill_teacher.py)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    allow_edited: bool = AllowEditedOpt,
    user_law: Optional[str] = typer.Option(None, "--law", help=USER_LAW_HELP),
    level: Optional[float] = LevelOpt,
):
    """Compute-optimal N*, D*, loss, GPU-hours and a model shape for a budget (or a target loss)."""
    from scalinglab.fitting.result import FitResult
    from scalinglab.planning.request import PlanRequest, check_plannable, make_full_plan

    with fail(as_json=as_json):
        checked_level(level)
        check_range(tensor_parallel, "--tensor-parallel", low=1, integer=True, example="8")
        check_range(context_length, "--context", low=1, integer=True, example="2048")
        _check_plan_output(output)
        for value, option, low, low_open, high, example in (
                (budget_usd, "--budget-usd", 0, True, None, "1e6"),
                (usd_per_gpu_hour, "--usd-per-gpu-hour", 0, True, None, "2.5"),
                (inference_tokens, "--inference-tokens", 0, False, None, "2e12"),
                (inference_mfu, "--inference-mfu", 0, True, 1, "0.3"),
                (inference_usd_per_gpu_hour, "--inference-usd-per-gpu-hour", 0, True, None, "2.5"),
                (tokens_per_param, "--tokens-per-param", 0, True, None, "200"),
                (data_max_flops, "--data-max-flops", 0, True, None, "1e21"),
                (unique_tokens, "--unique-tokens", 0, True, None, "1e10"),
                (batch_size, "--batch-size", 0, True, None, "4e6"),
                (vocab_params, "--vocab-params", 0, True, None, "5e7")):
            check_range(value, option, low=low, low_open=low_open, high=high, example=example)
        check_range(sparsity, "--sparsity", low=0, high=1, high_open=True, example="0.5")
        request = PlanRequest(
            budget=budget, target_loss=target_loss, budget_usd=budget_usd, usd_per_gpu_hour=usd_per_gpu_hour,
            gpu=gpu, peak_flops=peak_flops, mfu=mfu, gpus=gpus, prefer=prefer, data_max_flops=data_max_flops,
            vocab_size=vocab_size, context_length=context_length, head_dim=head_dim, aspect_ratio=aspect_ratio,
            tensor_parallel=tensor_parallel, unique_tokens=unique_tokens, precision=precision, serve_bits=serve_bits,
            batch_size=batch_size, experts=experts, max_total_params=max_total_params,
            sparsity=sparsity, vocab_params=vocab_params, inference_tokens=inference_tokens, inference_gpu=inference_gpu, inference_dtype=inference_dtype,
            inference_mfu=inference_mfu, inference_usd_per_gpu_hour=inference_usd_per_gpu_hour,
            tokens_per_param=tokens_per_param, allow_degenerate=force, progress=not as_json, level=level)
        request.check()
        load_user_law(user_law)
        fit_result = FitResult.from_json(fit_json, allow_edited=allow_edited)
        add_file_notes(fit_result)
        request.hparams_law, request.critical_batch = _hyperparameter_laws(hparams_law, critical_batch, allow_edited)
        if student_params is not None:          # distill or train from scratch (cli/distill.py)
            from scalinglab.cli.distill import run_distill_plan

            check_plannable(fit_result, allow_degenerate=force)
            return run_distill_plan(fit_result, request.budget_flops(), target_loss, student_params, teacher_loss,
                                    teacher_params, teacher_tokens, teacher_cost, as_json=as_json, output=output,
                                    supervised=supervised, students=students, optimal_teacher=optimal_teacher,
                                    allow_edited=allow_edited)
        if optimal_teacher:
            raise typer.BadParameter("--optimal-teacher chooses a distillation's teacher: give --student-params (the "
                                     "student's size) too")
        if any(v is not None for v in (teacher_loss, teacher_params, teacher_tokens, supervised)):
            raise typer.BadParameter("--teacher-loss, --teacher-params, --teacher-tokens and --supervised plan a "
                                     "distillation: give --student-params (the student's size) too")
        if not runs:
            reading.refuse("these options read the fit's ladder; give it with --runs RUNS, or leave them out")
        ladder = _load(runs, reading) if runs else None
        full = make_full_plan(fit_result, request, ladder)
        document = full.to_dict()
        if output is not None:
            from scalinglab.util import jsonio

            output.write_text(jsonio.dumps(document, indent=2) + "\n")
        if as_json:
            emit_json(document)
        else:
            for title, text in full.sections():
                print_text_block(text, title=title)
            if output is not None:
                console.print(f"plan written to {output}")


def _hyperparameter_laws(hparams_law: str, critical_batch: str, allow_edited: bool):
    """``plan``'s --hparams-law and --critical-batch as laws (None for "none"), a file read with
    --allow-edited's leave and its notes shown on every panel."""
    from scalinglab.data.law_files import get_critical_batch_law, get_hparam_law

    hp = None if hparams_law.lower() == "none" else get_hparam_law(hparams_law, allow_edited=allow_edited)
    cb = None if critical_batch.lower() == "none" else get_critical_batch_law(critical_batch, allow_edited=allow_edited)
    add_file_notes(hp, cb)
    return hp, cb


@app.command(cls=RegistryHelpCommand)
@with_option_sets
def validate(
    source: str = SourceArg,
    laws: LawOptions = LawOptions(),
    reading: RunOptions = RunOptions(),
    holdout: str = typer.Option("largest", help="'largest': hold out the largest budget (or size)."),
    threshold: Optional[float] = typer.Option(None, help="Fit on runs with BY <= threshold, predict the rest."),
    by: Optional[str] = ByOpt,
    rollout: bool = typer.Option(False, help="Repeat over increasing thresholds and show how errors shrink."),
    steps: Optional[int] = typer.Option(10, help="Rollout: at most this many thresholds, spread over the feasible ones (0 = all)."),
    level: Optional[float] = LevelOpt,
    prefer: str = typer.Option("auto", help="N* source: auto (by the training part's rollout evidence), approach2, approach3 or combined."),
    weights: str = WeightsOpt,
    noise: str = typer.Option("auto", "--noise", help="Run-to-run noise: auto (from seed repeats or late "
                              "checkpoints), none, or a known sd of log loss (e.g. 0.01); says how many held-out "
                              "errors are within 2 sds, and floors the prediction intervals."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    select: Optional[str] = typer.Option(None, "--select", help="Instead: fit each of LAW1,LAW2,... (or all-1d, "
                                         "every single-variable law) on the same runs, pick the best by held-out error "
                                         "and say by how much it wins."),
    y: Optional[str] = YOpt,
    y_kind: Optional[str] = YKindOpt,
    y_range: Optional[str] = YRangeOpt,
    x: Optional[str] = XOpt,
    force: bool = ForceOpt,
):
    """Fit on the small runs, predict the large ones with calibrated prediction intervals, and
    report the loss errors, the intervals' coverage and the N* the plan would use.

    There is no --fit: a saved fit has seen the runs it would be tested on,
    so validate refits on purpose, on the part of the data it keeps,
    and predicts the part it holds out."""
    from scalinglab.fitting.calibration import split_column
    from scalinglab.fitting.validation import validate_holdout, validate_rollout

    with fail(as_json=as_json):
        level = resolved_level(level)
        check_range(threshold, "--threshold", low=0, low_open=True, example="1e19")
        check_range(steps, "--steps", low=0, integer=True, example="10")
        metric = MetricOptions(y, y_kind, y_range, x)
        if select is not None:
            from scalinglab.fitting.select import select_law

            if rollout:
                raise typer.BadParameter("--select compares laws on one hold-out split; drop --rollout")
            candidates = metric_candidates(select, metric) if metric.active else select
            runs = _load(source, reading,
                             candidates[0] if metric.active else None)
            data_problems = [] if metric.active else _check_runs(runs, "validate", force=force)
            chosen = select_law(runs, candidates, threshold=threshold, 
                                by=by or (split_column(candidates[0]) if metric.active else "flops"))
            if as_json:
                emit_json({**chosen.to_dict(), **({"data_problems": data_problems} if data_problems else {})})
            else:
                print_text_block(_warned(chosen.summary(), data_problems), title=f"Law selection on {runs.source}")
            return
        law_obj = with_metric(laws.resolve(y), metric, laws.var)
        by = by or split_column(law_obj)
        runs = _load(source, reading, law_obj)
        _refuse_pooled(runs, reading.group, "validate")
        data_problems = _check_runs(runs, "validate", force=force, law=law_obj)
        if rollout:
            result = validate_rollout(runs, law_obj, by=by, n_steps=steps or None, level=level, prefer=prefer,
                                      weights=_weights(weights), noise=noise)
        else:
            result = validate_holdout(runs, law_obj, holdout=holdout, threshold=threshold, by=by, level=level,
                                      prefer=prefer, weights=_weights(weights), noise=noise)
        if as_json:
            emit_json({**result.to_dict(), **({"data_problems": data_problems} if data_problems else {})})
        else:
            kind = "Rollout" if rollout else "Hold-out"
            print_text_block(_warned(to_cli(result.summary()), data_problems),
                             title=f"{kind} validation of {law_obj.name} on {runs.source}")


@app.command(cls=RegistryHelpCommand)
@with_option_sets
def plot(
    source: str = SourceArg,
    output: Path = typer.Option(Path("plots"), "-o", "--output", help="Directory for the PNG files."),
    laws: LawOptions = LawOptions(),
    fit_json: Optional[Path] = typer.Option(None, "--fit", help="Use this fit instead of fitting again."),
    reading: RunOptions = RunOptions(),
    bootstrap: int = bootstrap_option("CI bands"),
    fmt: str = typer.Option("png", "--format", help="File format of the figures: png, svg or pdf."),
    dpi: int = typer.Option(120, help="Resolution of raster output, 50 to 1200."),
    method: str = typer.Option("parabola", "--valley", help="Approach 2: each budget's minimum by a parabola in "
                               "log N, or akima (as `isoflop --valley`)."),
    y: Optional[str] = YOpt,
    y_kind: Optional[str] = YKindOpt,
    y_range: Optional[str] = YRangeOpt,
    x: Optional[str] = XOpt,
    x_label: Optional[str] = XLabelOpt,
    y_label: Optional[str] = YLabelOpt,
    allow_edited: bool = AllowEditedOpt,
    force: bool = ForceOpt,
    level: Optional[float] = LevelOpt,
):
    """Figures: fit vs data with both bands and residuals, IsoFLOP valleys with minima, N*(C) frontier with bands."""
    from scalinglab.report.plots import make_all_plots

    with fail(as_json=False):
        check_bootstrap(bootstrap)
        checked_level(level)
        from scalinglab.report.plots import check_plot_options

        check_plot_options(fmt, dpi, method)            # ``fail`` names the option
        if output.exists() and not output.is_dir():
            raise typer.BadParameter(f"-o {output}: is a file; plot writes fit.png, isoflop.png and frontier.png "
                                     f"into a directory: give a directory (created when missing), e.g. -o plots")
        if fit_json is not None and not fit_json.is_file():
            raise typer.BadParameter(f"--fit {fit_json}: " + ("is a directory; give the fit file written by "
                                     "`scalinglab fit ... -o fit.json`" if fit_json.is_dir() else
                                     "no such file; write one with `scalinglab fit RUNS -o fit.json`"))
        law_obj = with_metric(laws.resolve(y), MetricOptions(y, y_kind, y_range, x), laws.var)
        fit_result = None
        if fit_json is not None:
            from scalinglab.fitting.result import FitResult

            fit_result = FitResult.from_json(fit_json, allow_edited=allow_edited)
            add_file_notes(fit_result)
            if option_given("law") and laws.law not in (fit_result.law, (fit_result.law_spec or {}).get("class")):
                # the figures draw the fit's law: --law would be ignored
                raise typer.BadParameter(f"--law {laws.law} and --fit {fit_json} (a fit of law {fit_result.law!r}) "
                                         f"disagree; leave out --law to plot the fit, or leave out --fit to fit "
                                         f"{laws.law}")
            if is_metric(fit_result.law_object) and not is_metric(law_obj):    # a saved metric fit
                law_obj = fit_result.law_object
        runs = _load(source, reading, law_obj)
        _refuse_pooled(runs, reading.group, "plot")
        for problem in _check_runs(runs, "plot", force=force, law=law_obj):
            err_console.print(f"WARNING: {to_cli(problem)}", style="yellow", markup=False)
        if is_metric(law_obj):
            from scalinglab.report.metric_plot import make_metric_plots

            paths = make_metric_plots(runs, output, law=law_obj, fit=fit_result, n_bootstrap=bootstrap, fmt=fmt,
                                      dpi=dpi, x_label=x_label, y_label=y_label, level=level)
        else:
            paths = make_all_plots(runs, output, law=law_obj, fit=fit_result, n_bootstrap=bootstrap, method=method,
                                   fmt=fmt, dpi=dpi, level=level)
        for note in file_notes():           # no panel here: the figures' input said on its own lines
            err_console.print(note, style="yellow", markup=False)
        for path in paths:
            console.print(f"wrote {path}")
        for name, why in paths.skipped:
            err_console.print(f"warning: skipped {name}: {to_cli(why)}", style="yellow", markup=False)


@app.command(cls=RegistryHelpCommand)
def demo(
    budget: float = typer.Option(1e21, help="Budget to plan for, in FLOPs (the built-in ladder reaches 1e19)."),
    gpu: str = typer.Option("h100", help="GPU type for wall-clock."),
    gpus: int = typer.Option(8, help="Number of GPUs."),
    bootstrap: int = bootstrap_option("CIs"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
):
    """Fit the built-in ladder and print a compute-optimal plan (no files needed)."""
    from scalinglab.demo import run_demo

    with fail(as_json=as_json):
        check_range(budget, "--budget", low=0, low_open=True, example="1e21")
        check_range(gpus, "--gpus", low=1, integer=True, example="8")
        check_bootstrap(bootstrap, allow_zero=False)
        report = run_demo(budget=budget, n_bootstrap=bootstrap, progress=not as_json, gpu=gpu, gpus=gpus)
        if as_json:
            emit_json(report.to_dict())
        else:
            for title, text in report.sections():
                print_text_block(text, title=title)


@app.command("laws")
def laws_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")):
    """The registered laws: formula, features, target, parameters with roles, frontier."""
    from scalinglab.laws import LAWS
    from scalinglab.laws.base import Law

    def describe(law: Law) -> dict:
        return {"name": law.name, "formula": law.formula, "features": list(law.variables), "target": law.target,
                "transform": law.target_transform, "resample_unit": law.resample_unit,
                "frontier": law.budget, "frontier_constraints": list(law.frontier_constraints()),
                "params": [{"name": p.name, "role": p.role, "fitted_as": p.transform, "bounds": list(p.bounds)}
                           for p in law.all_params]}

    with fail(as_json=as_json):
        rows = [describe(law) for law in LAWS.values()]
        if as_json:
            emit_json(rows)
            return
        lines = []
        for r in rows:
            params = ", ".join(f"{p['name']} ({p['role']})" for p in r["params"])
            lines.append(f"{r['name']:<18}{r['formula']}")
            lines.append(f"{'':<18}features {', '.join(r['features'])}; target {r['transform']}({r['target']}); "
                         f"frontier {r['frontier'] or 'none'}"
                         + (f" under {', '.join(r['frontier_constraints'])}" if r["frontier_constraints"] else ""))
            lines.append(f"{'':<18}parameters {params}")
        print_text_block("\n".join(lines), title="Registered laws")
