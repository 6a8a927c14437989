"""`scalinglab hparams laws | fit | validate | critical-batch`: a thin layer over
``laws/hparams.py``, ``studies/hparams.py``, ``laws/critical_batch.py`` and ``studies/critical_batch.py``."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from scalinglab.cli.app import app
from scalinglab.cli.language import LanguageGroup, bootstrap_option
from scalinglab.cli.runopts import where_help
from scalinglab.cli.render import check_bootstrap, check_range, emit_json, err_console, fail, parse_mapping, \
    print_text_block, to_cli
from scalinglab.cli.rowopts import DropInvalidOpt, print_read_report

hparams_app = typer.Typer(cls=LanguageGroup, help="Learning-rate and batch-size laws: presets, fits from LR × batch sweeps, "
                               "hold-out checks, and the critical batch.", no_args_is_help=True)
app.add_typer(hparams_app, name="hparams")

MapOpt = typer.Option([], "--map", help="Column mapping canonical=source, repeatable, e.g. --map lr=peak_lr "
                                        "--map batch_size=bs --map params=n_params")
BatchUnitOpt = typer.Option("tokens", "--batch-unit", help="What the batch_size column counts: tokens or "
                            "sequences (converted to tokens with --seq-len; kept in sequences without it)")
SeqLenOpt = typer.Option(None, "--seq-len", help="Tokens per sequence, with --batch-unit sequences")
WindowOpt = typer.Option(0.02, "--window", help="Near-optimal band of the smoothing: the quadratic is fitted to "
                         "the runs within this relative loss of the smoothed minimum (at least terms + 2 runs)")
GroupByOpt = typer.Option(None, "--group-by", help="Column(s) naming each model's runs, comma-separated (default: "
                          "runs of equal params and tokens); for sweeps whose tokens move with the batch size")
DivergedRatioOpt = typer.Option(1.5, "--diverged-ratio", help="A run whose final loss is more than this multiple of "
                                "its group's best diverged (kept logging): listed and left out (1e9 keeps all)")
FormOpt = typer.Option("auto", "--form", help="Regressors of log lr* and log B*: auto, ND (log N and log D, Step "
                       "Law's form), C (log C, DeepSeek's), N or D")


def _check_common(seed: int, seq_len: Optional[float]) -> None:
    check_range(seed, "--seed", low=0, integer=True, example="0")
    check_range(seq_len, "--seq-len", low=1, integer=True, example="2048")


def _columns(text: Optional[str]):
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _read(sweep: str, mapping, where, sep, batch_unit, seq_len, drop_invalid: bool = False):
    from scalinglab.studies.hparams import load_hparam_runs

    runs, diverged = load_hparam_runs(sweep, mapping=parse_mapping(mapping) or {}, where=where, sep=sep,
                                      batch_unit=batch_unit, seq_len=seq_len, drop_invalid=drop_invalid)
    print_read_report(runs.source, runs.invalid_dropped)
    for note in runs.notes:
        if note.startswith("batch_size"):
            err_console.print(f"note: {note}", markup=False)
    for warning in getattr(runs, "warnings", []) or []:
        err_console.print(f"warning: {warning}", style="yellow", markup=False)
    return runs, diverged


@hparams_app.command("laws")
def laws_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text.")):
    """The published lr/batch laws and the critical-batch preset, with their constants and sources."""
    from scalinglab.laws.critical_batch import KAPLAN_CRITICAL_BATCH
    from scalinglab.laws.hparams import HPARAM_LAWS

    if as_json:
        emit_json({"hparams": {k: v.to_dict() for k, v in HPARAM_LAWS.items()},
                   "critical_batch": {KAPLAN_CRITICAL_BATCH.name: KAPLAN_CRITICAL_BATCH.to_dict()}})
        return
    lines = [law.describe() for law in HPARAM_LAWS.values()]
    lines += [f"  ({law.name}: {law.description})" for law in HPARAM_LAWS.values() if law.description]
    lines.append(KAPLAN_CRITICAL_BATCH.describe())
    print_text_block("\n".join(lines), title="Hyperparameter laws")


@hparams_app.command("fit")
def fit_command(
    sweep: str = typer.Argument(..., help="An LR × batch sweep: runs with params, tokens (or flops), lr, "
                                "batch_size, loss (.csv/.parquet/.jsonl or a sweep store .db); a missing or "
                                "non-finite loss is a diverged run"),
    mapping: List[str] = MapOpt,
    where: Optional[str] = typer.Option(None, help=where_help("optimizer == 'adamw'")),
    sep: Optional[str] = typer.Option(None, "--sep", help="Separator of a delimited file"),
    batch_unit: str = BatchUnitOpt,
    seq_len: Optional[float] = SeqLenOpt,
    drop_invalid: bool = DropInvalidOpt,
    window: float = WindowOpt,
    form: str = FormOpt,
    group_by: Optional[str] = GroupByOpt,
    bootstrap: int = bootstrap_option("intervals (runs resampled within each group)"),
    seed: int = typer.Option(0, "--seed"),
    keep_edge: bool = typer.Option(False, "--keep-edge", help="Keep groups whose optimum is on the sampled range's edge"),
    diverged_ratio: float = DivergedRatioOpt,
    params: Optional[float] = typer.Option(None, "--params", help="Predict lr* and B* at this N (with --tokens)"),
    tokens: Optional[float] = typer.Option(None, "--tokens", help="Predict at this D (with --params)"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the fitted law (JSON) for "
                                          "`plan --hparams-law` and `sweep plan --hparams-law`"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
):
    """Fit lr* and B* power laws from an LR × batch sweep: smooth, keep the near-optimal runs, regress, bootstrap."""
    from scalinglab.studies.hparams import fit_hparams

    with fail(as_json=as_json):
        check_bootstrap(bootstrap)
        check_range(window, "--window", low=0, low_open=True, high=1, high_open=True, example="0.02")
        _check_common(seed, seq_len)
        check_range(params, "--params", low=0, low_open=True, example="1e9")
        check_range(tokens, "--tokens", low=0, low_open=True, example="2e10")
        if (params is None) != (tokens is None):
            raise typer.BadParameter("give --params and --tokens together (the scale to predict at)")
        if output is not None and (output.is_dir() or not output.parent.exists()):
            raise typer.BadParameter(f"-o {output}: give a file in an existing directory, e.g. -o hp.json")
        runs = _read(sweep, mapping, where, sep, batch_unit, seq_len, drop_invalid)
        result = fit_hparams(runs, window=window, form=form, n_boot=bootstrap, seed=seed, keep_edge=keep_edge,
                             group_by=_columns(group_by), diverged_ratio=diverged_ratio)
        target = None if params is None else {"params": params, "tokens": tokens}
        if output is not None:
            result.to_json(output)
    if as_json:
        payload = result.to_dict()
        if target:
            payload["prediction"] = {"params": params, "tokens": tokens, **result.predict(**target)}
        emit_json(payload)
    else:
        print_text_block(to_cli(result.summary(target)), title=f"lr/batch law fitted to {sweep}")
        if output is not None:
            print(f"law written to {output}; use it with `scalinglab plan FIT --hparams-law {output}`")


@hparams_app.command("validate")
def validate_command(
    sweep: str = typer.Argument(..., help="An LR × batch sweep (as for `hparams fit`) with 3 or more (N, D) groups"),
    mapping: List[str] = MapOpt,
    where: Optional[str] = typer.Option(None, help=where_help("optimizer == 'adamw'")),
    sep: Optional[str] = typer.Option(None, "--sep", help="Separator of a delimited file"),
    batch_unit: str = BatchUnitOpt,
    seq_len: Optional[float] = SeqLenOpt,
    drop_invalid: bool = DropInvalidOpt,
    window: float = WindowOpt,
    form: str = FormOpt,
    group_by: Optional[str] = GroupByOpt,
    bootstrap: int = bootstrap_option("intervals"),
    seed: int = typer.Option(0, "--seed"),
    keep_edge: bool = typer.Option(False, "--keep-edge"),
    diverged_ratio: float = DivergedRatioOpt,
    procedure_band: float = typer.Option(0.0025, "--procedure-band", help="The published procedure scored beside "
                                         "the fit (DeepSeek LLM sec. 3.1, Step Law): per group the runs within this "
                                         "relative loss of its best, pooled and regressed (DeepSeek's 0.25%)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
):
    """Fit on every (N, D) group but the largest, predict its lr* and B*, and read its loss there vs its best run."""
    from scalinglab.studies.hparams import validate_hparams

    with fail(as_json=as_json):
        check_bootstrap(bootstrap)
        check_range(window, "--window", low=0, low_open=True, high=1, high_open=True, example="0.02")
        _check_common(seed, seq_len)
        runs = _read(sweep, mapping, where, sep, batch_unit, seq_len, drop_invalid)
        result = validate_hparams(runs, window=window, form=form, n_boot=bootstrap, seed=seed, keep_edge=keep_edge,
                                  group_by=_columns(group_by), diverged_ratio=diverged_ratio,
                                  procedure_band=procedure_band)
    if as_json:
        emit_json(result.to_dict())
    else:
        print_text_block(to_cli(result.summary() + "\n\n" + result.fit.summary()), title=f"lr/batch hold-out on {sweep}")


@hparams_app.command("critical-batch")
def critical_batch_command(
    curves: str = typer.Argument(..., help="Loss curves of runs at several batch sizes: a .csv/.parquet with "
                                 "run_id, batch_size, step, loss, or a sweep store (.db: its training curves)"),
    target_loss: Optional[str] = typer.Option(None, "--target-loss", help="Loss(es) every batch size is timed "
                                              "to, comma-separated, e.g. 3.5,3.2 (2 or more give B_crit(L))"),
    noise: bool = typer.Option(False, "--noise", help="Instead: fit B_crit(L) to the gradient noise scale the "
                               "trainer measured (a sweep store; B_simple ≈ B_crit, McCandlish et al. §2.2)"),
    mapping: List[str] = MapOpt,
    batch_unit: str = BatchUnitOpt,
    seq_len: Optional[float] = SeqLenOpt,
    drop_invalid: bool = DropInvalidOpt,
    bootstrap: int = bootstrap_option("intervals (residual resamples)"),
    seed: int = typer.Option(0, "--seed"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the B_crit(L) law (JSON) for "
                                          "`plan --critical-batch`"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
):
    """Fit McCandlish's steps/examples trade-off (S/S_min - 1)(E/E_min - 1) = 1: B_crit at each target loss."""
    from scalinglab.data.batch_curves import read_batch_curves
    from scalinglab.studies.critical_batch import fit_critical_batch

    if noise:
        _noise_command(curves, target_loss, bootstrap, seed, output, as_json)
        return
    with fail(as_json=as_json):
        check_bootstrap(bootstrap)
        _check_common(seed, seq_len)
        if target_loss is None:
            raise typer.BadParameter("give --target-loss (e.g. 3.5,3.2), or --noise with a sweep store")
        try:
            targets = [float(x) for x in target_loss.split(",") if x.strip()]
        except ValueError:
            raise typer.BadParameter(f"--target-loss {target_loss!r}: give losses, e.g. 3.5,3.2") from None
        read = read_batch_curves(curves, mapping=parse_mapping(mapping) or {}, batch_unit=batch_unit,
                                 seq_len=seq_len, drop_invalid=drop_invalid)
        print_read_report(read.source, read.dropped, read.notes, read.warnings)
        result = fit_critical_batch(read.frame, targets, unit=read.unit, n_boot=bootstrap, seed=seed, source=curves)
        if output is not None:
            if result.law is None:
                raise typer.BadParameter("-o: a B_crit(L) law needs 2 or more --target-loss values")
            result.to_json(output)
    if as_json:
        emit_json(result.to_dict())
    else:
        print_text_block(result.summary(), title=f"Critical batch from {curves}")
        if output is not None:
            print(f"law written to {output}; use it with `scalinglab plan FIT --critical-batch {output}`")


def _noise_command(source: str, target_loss, bootstrap: int, seed: int, output, as_json: bool) -> None:
    import numpy as np

    from scalinglab.data.law_files import write_law_file
    from scalinglab.studies.critical_batch import fit_noise_scale_law, noise_scale_points

    with fail(as_json=as_json):
        check_bootstrap(bootstrap)
        if target_loss is not None:
            raise typer.BadParameter("--noise fits B_crit(L) from the measured noise scale: leave out --target-loss")
        if Path(source).suffix.lower() not in (".db", ".sqlite"):
            raise typer.BadParameter(f"--noise reads the noise scale the trainer stored: give a sweep store (.db), "
                                     f"not {source}")
        from scalinglab.data.store import main_branch_curves

        frame = main_branch_curves(source)
        frame = frame.assign(loss=frame["train_loss"])
        points, dropped = noise_scale_points(frame)
        if points.empty:
            raise ValueError(f"{source}: no noise-scale measurements in its curves (stores written before the "
                             "trainer measured it, or runs of one sequence per step)")
        law = fit_noise_scale_law(points["loss"], points["noise_scale"], n_boot=bootstrap, seed=seed,
                                  source=source, name="noise scale")
        if output is not None:
            write_law_file(law, output)
    if as_json:
        emit_json({"law": law.to_dict(), "points": int(len(points)), "dropped": dropped})
        return
    lines = [f"B_crit(L) from the gradient noise scale of {points['run_id'].nunique()} run(s): {len(points)} "
             f"pooled measurements (5 curve rows each), losses {points['loss'].min():.4g} – "
             f"{points['loss'].max():.4g}", f"  {law.describe()}"]
    if law.samples:
        from scalinglab.util.intervals import percentile_interval

        lo, hi = percentile_interval(np.asarray(law.samples)[:, 1], law.level)
        lines.append(f"  exponent 1/alpha_b {1 / law.alpha_b:.3g}   [{100 * law.level:g}% CI {lo:.3g} – {hi:.3g}; "
                     "Kaplan et al. 2020: 1/0.21 = 4.76]")
    for L in np.quantile(points["loss"], [0.0, 0.5, 1.0]):
        ci = law.interval(float(L))
        lines.append(f"  at loss {L:.4g}: B_crit {float(law.b_crit(L)):.3g} tokens"
                     + (f"   [{100 * law.level:g}% CI {ci[0]:.3g} – {ci[1]:.3g}]" if ci else ""))
    if dropped:
        lines.append(f"  note: {dropped} pooled measurement(s) left out: |G|² estimate not positive (the gradient "
                     "lost in the noise)")
    print_text_block("\n".join(lines), title=f"Critical batch from the noise scale in {source}")
    if output is not None:
        print(f"law written to {output}; use it with `scalinglab plan FIT --critical-batch {output}`")
