"""`scalinglab sweep plan | run | status | export`: a thin layer over ``scalinglab.sweep``."""
from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.text import Text

from scalinglab.cli.app import sweep_app
from scalinglab.cli.fileopts import AllowEditedOpt
from scalinglab.cli.language import EXECUTION
from scalinglab.cli.levelopts import LevelOpt, resolved_level
from scalinglab.cli.render import (RegistryHelpCommand, add_file_notes, check_range, console, emit_json, err_console, fail, file_notes,
                                   hang_lines, parse_budgets)
from scalinglab.sweep.defaults import DEFAULT_THROUGHPUT, MAX_EPOCHS
from scalinglab.util.formatting import fmt_duration, fmt_eta
from scalinglab.util.progress import eta_at


_seconds = fmt_duration


def _short(n: float) -> str:
    """3 significant digits with a k/M/G/T suffix: 1.44M, 428, 2.37 (below 100: as is)."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}" if n < 100 else f"{n:.0f}"


def _lr(lr: float) -> str:
    """2.3e-3 (not 2.3e-03)."""
    mantissa, _, exponent = f"{lr:.1e}".partition("e")
    return f"{mantissa}e{int(exponent)}"


@contextlib.contextmanager
def _store_errors(db: Path):
    """SQLite errors met after a store opened cleanly: damage the open-time check did not see,
    read-only media, a full disk (each named as what it is)."""
    import sqlite3          # here, not at import: `scalinglab fit` should not load it

    try:
        yield
    except sqlite3.DatabaseError as exc:
        from scalinglab.data.store import store_error_message
        raise ValueError(store_error_message(db, exc)) from None


def _factors(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{option} {text!r}: give comma-separated positive numbers, e.g. 0.5,1,2") from None


def _hparams_law(name_or_path: str, allow_edited: bool):
    """--hparams-law as a law; a fitted law's file read with --allow-edited's leave, its notes on every panel."""
    from scalinglab.data.law_files import get_hparam_law

    law = get_hparam_law(name_or_path, allow_edited=allow_edited)
    add_file_notes(law)
    return law


@sweep_app.command("plan", cls=RegistryHelpCommand)
def plan_command(
    budgets: str = typer.Option(..., "--budgets", help="FLOP budgets, comma-separated, e.g. 1e15,3e15,1e16"),
    sizes_per_budget: int = typer.Option(5, "--sizes-per-budget", help="model sizes per budget (IsoFLOP profile)"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="the sweep store to write (.db)"),
    min_params: Optional[float] = typer.Option(None, "--min-params", help="smallest non-embedding size"),
    max_params: Optional[float] = typer.Option(None, "--max-params", help="largest non-embedding size"),
    spread: float = typer.Option(0.5, "--spread", help="half-width of the size grid in decades around its centre"),
    tokens_per_param: float = typer.Option(20.0, "--tokens-per-param", help="the grid's centre: the size that "
                                           "trains on this many tokens per parameter (20: Hoffmann; tiny CPU "
                                           "models train best far above it, ~200)"),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="token file (scalinglab data prepare); "
                                          "default: the built-in corpus, byte tokenizer"),
    context: int = typer.Option(128, "--context", help="context length of every run, in tokens"),
    schedule: str = typer.Option("cosine", "--schedule", help="cosine (one point per run) or wsd (+ branches)"),
    seed: int = typer.Option(0, "--seed", help="seed of the first run; run i gets seed + i"),
    seeds: int = typer.Option(1, "--seeds", help="train each planned run this many times with distinct seeds "
                              "(run ids end in -s0, -s1, ...): the repeats measure run-to-run noise"),
    throughput: float = typer.Option(DEFAULT_THROUGHPUT, "--throughput", help="FLOP/s assumed for the time "
                                     "estimate (default: one CPU thread, measured 6e9-2.8e10 on small models)"),
    max_epochs: float = typer.Option(MAX_EPOCHS, "--max-epochs", help="refuse the plan when a run would "
                                     "pass over the corpus more often than this (it warns above 1)"),
    hparams: str = typer.Option("", "--hparams", help="sweep these settings around the law's guess: lr, batch "
                                "or lr,batch (an LR × batch grid for `scalinglab hparams fit`)"),
    hparams_law: str = typer.Option("deepseek", "--hparams-law", help="the lr/batch law: stepLaw, deepseek or a "
                                    "fitted law's JSON (`scalinglab hparams fit -o hp.json`)"),
    lr_factors: str = typer.Option("0.25,0.5,1,2,4", "--lr-factors", help="with --hparams lr: multiples of the "
                                   "law's lr"),
    batch_factors: str = typer.Option("0.5,1,2", "--batch-factors", help="with --hparams batch: multiples of the "
                                      "law's batch size"),
    tensor_parallel: int = typer.Option(1, "--tensor-parallel", help="devices that split each layer "
                                        "(Megatron tensor parallelism): every shape's heads and MLP divide by it"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan, write nothing"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing store"),
    as_json: bool = typer.Option(False, "--json", help="print the plan as JSON"),
    allow_edited: bool = AllowEditedOpt,
    adaptive: bool = typer.Option(False, "--adaptive", help="do not run this grid: keep it as the candidate pool "
                                  "of a ladder that designs itself; `sweep run` trains --batch runs at a time, "
                                  "each round the ones expected to narrow the target's interval most per FLOP"),
    ladder_budget: Optional[float] = typer.Option(None, "--ladder-budget", help="with --adaptive: FLOPs the "
                                                  "whole ladder may spend (exact count), e.g. 3e11"),
    target_budget: Optional[float] = typer.Option(None, "--target-budget", help="with --adaptive: the big "
                                                  "run's compute C whose planned loss the ladder is for, e.g. 1e15"),
    stop_width: Optional[float] = typer.Option(None, "--stop-width", help="with --adaptive: stop once the "
                                               "planned loss's interval at --target-budget is at most this "
                                               "wide (nats/token) [default: spend the ladder budget]"),
    batch: int = typer.Option(4, "--batch", help="with --adaptive: runs suggested and trained per round"),
    law: str = typer.Option("chinchilla", "--law", help="with --adaptive: the law refitted each round: {laws} "
                            "(a registered law with a compute-optimal frontier)"),
    level: Optional[float] = LevelOpt,
) -> None:
    """Plan an IsoFLOP ladder: sizes around the rough optimum of each budget, tokens from the exact FLOP count;
    with --adaptive, a ladder that picks its runs from that grid round by round."""
    from scalinglab.sweep.plan import plan_sweep, write_plan
    with fail():
        settings = _adaptive_settings(adaptive, ladder_budget, target_budget, stop_width, batch, law,
                                      resolved_level(level), seed)
        if output is None and not dry_run:
            raise ValueError("-o/--output: give the sweep store to write, e.g. -o ladder.db (or --dry-run)")
        check_range(spread, "--spread", low=0, low_open=True, high=3, example="0.5")
        check_range(seed, "--seed", low=0, integer=True, example="0")
        check_range(throughput, "--throughput", low=0, low_open=True, example="1e10")
        check_range(max_epochs, "--max-epochs", low=0, low_open=True, example="100")
        plan = plan_sweep(parse_budgets(budgets), sizes_per_budget=sizes_per_budget, min_params=min_params,
                          max_params=max_params, spread_decades=spread, corpus=corpus, tokens_per_param=tokens_per_param,
                          context_length=context, schedule=schedule, seed=seed, throughput=throughput,
                          max_epochs=max_epochs, hparams=hparams,
                          hparams_law=_hparams_law(hparams_law, allow_edited),
                          lr_factors=_factors(lr_factors, "--lr-factors"),
                          batch_factors=_factors(batch_factors, "--batch-factors"), tensor_parallel=tensor_parallel,
                          seeds=seeds)
        if not dry_run:
            write_plan(plan, output, overwrite=overwrite, adaptive=settings).close()
        elif settings is not None:
            from scalinglab.sweep.adaptive import check_settings
            check_settings(settings, min(r.flops for r in plan.runs))
    if as_json:
        emit_json(dict(plan.to_dict(), written=None if dry_run else str(output),
                       adaptive=None if settings is None else settings.to_dict()))
        return
    # fits 80 columns: compact numbers, the shared sequence length in the title, and a run id that
    # folds rather than pushing the other columns out (tests/test_cli_width.py)
    seq_lens = sorted({r.seq_len for r in plan.runs})
    what = (f"Candidate pool of an adaptive ladder: {len(plan.runs)} runs" if settings is not None
            else f"IsoFLOP sweep: {len(plan.runs)} runs")
    from rich.table import Table

    table = Table(title=f"{what}, each within half a step of C (exact FLOP count; "
                  f"6ND and more with --json); batch in sequences of {'/'.join(map(str, seq_lens))} tokens",
                  title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    for col in ("run id", "C", "N", "L×d/h", "D", "D/N", "batch", "lr", "epochs", "time"):
        table.add_column(col, justify="left" if col in ("run id", "L×d/h") else "right",
                         no_wrap=col != "run id", overflow="fold")
    for r in plan.runs:
        epochs = "?" if r.epochs is None else (f"[yellow]{r.epochs:.3g}[/yellow]" if r.epochs > 1 else f"{r.epochs:.2f}")
        table.add_row(r.run_id, f"{r.budget:.2g}", _short(r.params),
                      f"{r.shape.n_layers}×{r.shape.d_model}/{r.shape.n_heads}", _short(r.tokens),
                      _short(r.tokens_per_param), str(r.batch_size), _lr(r.lr), epochs,
                      _seconds(plan.estimated_seconds(r)))
    console.print(table)
    console.print(f"total {plan.total_flops:.3g} FLOPs, about {_seconds(plan.total_seconds)} at "
                  f"{plan.throughput:.2g} FLOP/s (--throughput)")
    for key, rule in plan.rules.items():
        console.print(Text(hang_lines(f"{key}: {rule}", console.width), style="dim"))
    for w in plan.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {w}")
    for note in file_notes():                   # the --hparams-law file: edited, or an earlier release's
        err_console.print(note, style="yellow", markup=False)
    if settings is not None:
        console.print(f"adaptive: rounds of {settings.batch} runs from this pool until {settings.ladder_budget:.3g} "
                      f"FLOPs are spent" + (f" or the planned loss's {100 * settings.level:g}% interval at "
                                            f"{settings.target_budget:.3g} FLOPs is at most {settings.stop_width:g} wide"
                                            if settings.stop_width else f" (target {settings.target_budget:.3g} FLOPs)"),
                      soft_wrap=True)
    if dry_run:
        console.print("dry run: nothing written")
    else:
        console.print(f"wrote {output}; train it with `scalinglab sweep run {output}`")


def _adaptive_settings(adaptive: bool, ladder_budget, target_budget, stop_width, batch: int, law: str,
                       level: float, seed: int):
    """--adaptive's settings (None without it); its options without --adaptive are refused."""
    if not adaptive:
        given = [o for o, v in (("--ladder-budget", ladder_budget), ("--target-budget", target_budget),
                                ("--stop-width", stop_width)) if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only for an adaptive ladder; add --adaptive, or leave "
                             f"{'it' if len(given) == 1 else 'them'} out to plan the whole grid")
        return None
    missing = [o for o, v in (("--ladder-budget", ladder_budget), ("--target-budget", target_budget)) if v is None]
    if missing:
        raise ValueError(f"--adaptive needs {' and '.join(missing)}: the FLOPs the ladder may spend and the big "
                         "run's compute it is for, e.g. --ladder-budget 3e11 --target-budget 1e15")
    from scalinglab.sweep.adaptive import AdaptiveSettings
    return AdaptiveSettings(ladder_budget=ladder_budget, target_budget=target_budget, stop_width=stop_width,
                            batch=batch, law=law, level=level, seed=seed)


def _jobs(text: str) -> int | str:
    """--jobs as run_sweep takes it: "auto", or an integer (its range is checked there)."""
    from scalinglab.sweep.executors import AUTO
    word = text.strip().lower()
    if word == AUTO:
        return AUTO
    try:
        return int(word)
    except ValueError:
        raise ValueError(f"--jobs must be a positive integer (runs trained at once on CPU) or {AUTO} "
                         f"(as many as the cores hold); got {text!r}") from None


@sweep_app.command("run")
def run_command(
    db: Path = typer.Argument(..., help="the sweep store (from `scalinglab sweep plan`)"),
    executor: str = typer.Option("local", "--executor", help="local (child processes) or ray"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: local Ray)"),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="token file; default: the plan's, else the "
                                          "built-in corpus prepared once into <db>.d/corpus.bin (10 MB)"),
    workdir: Optional[Path] = typer.Option(None, "--workdir", help="checkpoints (default <db>.d/runs)"),
    max_runs: Optional[int] = typer.Option(None, "--max-runs", help="stop after this many runs"),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="run failed runs again"),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available, else cpu), cpu, cuda or cuda:N"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads per run (at most cores // --jobs)"),
    jobs: str = typer.Option("auto", "--jobs", "-j", rich_help_panel=EXECUTION,
                             help="CPU runs trained at once, each in its own process: a number, or auto "
                             "(cores // --threads, at most one per pending run); on CUDA: one run per GPU"),
    restart: List[str] = typer.Option([], "--restart", metavar="RUN", help="train this run again from "
                                      "scratch: discard its checkpoints and anything it recorded (repeat "
                                      "for several runs); the way out when a run was started with "
                                      "another corpus or config"),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bars"),
) -> None:
    """Train every pending run; safe to interrupt (Ctrl-C) or kill and run again."""
    from scalinglab.sweep.runner import run_sweep
    with fail(), _store_errors(db), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        summary = run_sweep(db, executor=executor, corpus=corpus, workdir=workdir, max_runs=max_runs,
                            progress=not no_progress, address=address, retry_failed=retry_failed,
                            device=device, threads=threads, jobs=_jobs(jobs), restart=restart)
    for w in caught:
        if issubclass(w.category, UserWarning):
            err_console.print(Text.assemble(("warning: ", "yellow"), str(w.message)), soft_wrap=True)
    for note in summary.notes:
        console.print(Text.assemble(("note: ", "cyan"), note), soft_wrap=True)
    if summary.restarted:
        console.print(f"restarted from scratch: {', '.join(summary.restarted)}", soft_wrap=True)
    if summary.resumed:
        console.print(f"resumed {len(summary.resumed)} run(s) interrupted when an earlier `sweep run` "
                      "was stopped", soft_wrap=True)
    for run_id, reason in summary.failed.items():
        err_console.print(Text.assemble((f"{run_id} failed: ", "red"), reason), soft_wrap=True)
    c = summary.counts
    console.print(f"{len(summary.done)} run(s) finished now; store: {c['done']} done, {c['failed']} failed, "
                  f"{c['pending']} pending")
    if summary.adaptive:
        console.print(f"adaptive: stopped after round {summary.adaptive['rounds']}, {summary.adaptive['stop']}; "
                      f"`scalinglab sweep status {db}` shows every round", soft_wrap=True)
    if summary.interrupted:
        err_console.print("interrupted: runs in flight are pending again; `scalinglab sweep run` resumes them")
        raise typer.Exit(code=130)
    if summary.failed:
        logs = sorted(set(summary.logs.values()))
        where = (f"details and any traceback in {logs[0]}" if len(logs) == 1 else
                 f"details and tracebacks in each run's log, {Path(logs[0]).parent.parent}/<run id>/"
                 f"{Path(logs[0]).name}")
        attempted = len(summary.done) + len(summary.failed)
        others = (f"; the other {len(summary.done)} finished" if summary.done else "")
        err_console.print(Text(
            f"{len(summary.failed)} of {attempted} run(s) failed ({where}){others}. "
            f"`scalinglab sweep status {db}` lists the causes; fix the cause, then `scalinglab sweep run {db} "
            "--retry-failed` trains the failed runs again"), soft_wrap=True)
        raise typer.Exit(code=1)
    if c["failed"]:
        err_console.print(Text(
            f"{c['failed']} run(s) failed in an earlier `sweep run` and were not retried; `scalinglab sweep "
            f"status {db}` lists the causes, `scalinglab sweep run {db} --retry-failed` trains them again"),
            soft_wrap=True)
        raise typer.Exit(code=1)


@sweep_app.command("status")
def status_command(
    db: Path = typer.Argument(..., help="the sweep store"),
    as_json: bool = typer.Option(False, "--json", help="print the status as JSON"),
) -> None:
    """Done, running, interrupted, failed and pending runs of a sweep, with each failure's cause."""
    from scalinglab.data.store import LOG_NAME, SweepStore, one_line_error
    with fail(), _store_errors(db):
        with SweepStore(db, readonly=True) as store:
            counts, runs = store.counts(), store.runs()
            interrupted = set(store.interrupted())
            losses = store.final_losses()
            where, sweep_progress = store.progress()
            decisions, stop = store.decisions(), _adaptive_stop(store)
    # a run marked running whose `sweep run` is gone (killed) is interrupted: the next run resumes it
    counts = {"pending": counts["pending"], "running": counts["running"] - len(interrupted),
              "interrupted": len(interrupted), "done": counts["done"], "failed": counts["failed"]}

    def shown(r) -> str:
        return "interrupted" if r.run_id in interrupted else r.status

    def log_of(r) -> str | None:
        return str(Path(r.workdir) / LOG_NAME) if r.workdir else None

    progress = _running_progress(runs, shown, where, time.time())
    sweep_eta = (eta_at(sweep_progress.get("eta_seconds"), sweep_progress.get("updated"), time.time())
                 if counts["running"] else None)
    if as_json:
        emit_json({"counts": counts, "eta_seconds": sweep_eta, "runs": [
            {"run_id": r.run_id, "budget": r.budget, "status": shown(r), "attempts": r.attempts,
             "params": r.config.get("plan", {}).get("params"), "tokens": r.config["train"]["tokens"],
             "loss": losses.get(r.run_id), "wall_seconds": r.wall_seconds,
             "error": one_line_error(r.error) or None, "progress": progress.get(r.run_id),
             "log": log_of(r) if r.status == "failed" else None} for r in runs],
            **({"decisions": decisions, "adaptive_stop": stop} if decisions or stop else {})})
        return
    colour = {"done": "green", "running": "cyan", "interrupted": "yellow", "failed": "red", "pending": "white"}
    from rich.table import Table

    table = Table(title=f"{db}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s != "interrupted"),
                  title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    for col in ("run id", "C", "N", "D", "status", "tries", "loss", "wall"):
        table.add_column(col, no_wrap=True)
    for r in runs:
        loss = losses.get(r.run_id)
        table.add_row(r.run_id, f"{r.budget:.2g}", _short(r.config.get("plan", {}).get("params", 0)),
                      _short(r.config["train"]["tokens"]), f"[{colour[shown(r)]}]{shown(r)}[/]", str(r.attempts),
                      "" if loss is None else f"{loss:.4f}",
                      "" if r.wall_seconds is None else _seconds(r.wall_seconds))
    console.print(table)
    # the causes in full, one line each, below the table (a table column would cut or wrap them)
    for r in runs:
        if r.status == "failed":
            log = log_of(r)
            console.print(Text.assemble((f"{r.run_id} failed: ", "red"), one_line_error(r.error) or "no cause recorded",
                                        f" (log {log})" if log else ""), soft_wrap=True)
    for run_id, p in progress.items():
        loss = "–" if p["train_loss"] is None else f"{p['train_loss']:.4f}"
        console.print(Text.assemble((f"{run_id} running: ", "cyan"), f"step {p['steps_done']:,}/{p['steps_total']:,}, "
                                    f"loss {loss}, ETA {fmt_eta(p['eta_seconds'])}"), soft_wrap=True)
    if counts["running"]:
        rate = sweep_progress.get("flops_per_second")
        console.print(f"sweep ETA {fmt_eta(sweep_eta)}" + (f" at {rate:.3g} FLOP/s measured" if rate else ""),
                      soft_wrap=True)
    if decisions or stop:
        print_decisions(decisions, stop)
    if interrupted:
        console.print(f"{len(interrupted)} run(s) interrupted: the `sweep run` that ran them was stopped (killed) "
                      f"mid-run; `scalinglab sweep run {db}` resumes them from their checkpoints", soft_wrap=True)


def _adaptive_stop(store) -> dict | None:
    """Why an adaptive sweep stopped ({"reason", "round"}), None while it goes on or for a grid."""
    import json
    from scalinglab.sweep.adaptive import STOP_KEY
    try:
        stop = json.loads(store.get_meta(STOP_KEY) or "null")
    except ValueError:
        return None
    return stop if isinstance(stop, dict) else None


def _interval_text(interval: dict | None) -> str:
    return "–" if not interval else f"[{interval['low']:.4g}, {interval['high']:.4g}]"


def print_decisions(decisions: list[dict], stop: dict | None) -> None:
    """An adaptive sweep's rounds: the runs each chose, the planned loss's interval at the target
    budget before it, expected after it and measured after it; each round's reasons below."""
    from rich.table import Table

    table = Table(title="adaptive rounds: the planned loss's interval at the target budget",
                  title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in ("round", "runs", "before", "expected after", "after", "FLOPs so far"):
        table.add_column(col, overflow="fold")
    for d in decisions:
        table.add_row(str(d["round"]), ", ".join(d["run_ids"]), _interval_text(d["before"]),
                      _interval_text(d["expected"]), _interval_text(d["actual"]), f"{d['committed_flops']:.3g}")
    console.print(table)
    for d in decisions:
        console.print(Text.assemble((f"round {d['round']} why: ", "cyan"), d["why"]), soft_wrap=True)
    if stop:
        console.print(Text.assemble(("stopped: ", "green"), f"after round {stop['round']}, {stop['reason']}"),
                      soft_wrap=True)
    else:
        console.print("not finished: `scalinglab sweep run` goes on with the next round", soft_wrap=True)


def _running_progress(runs, shown, where: dict, now: float) -> dict[str, dict]:
    """run_id -> {steps_done, steps_total, train_loss, eta_seconds (as of ``now``)} of each run
    that is running now and has recorded where it is."""
    out = {}
    for r in runs:
        p = where.get(r.run_id)
        if shown(r) == "running" and p is not None:
            out[r.run_id] = {"steps_done": p["steps_done"], "steps_total": p["steps_total"],
                             "train_loss": p["train_loss"],
                             "eta_seconds": eta_at(p["eta_seconds"], p["updated"], now)}
    return out


@sweep_app.command("export")
def export_command(
    db: Path = typer.Argument(..., help="the sweep store"),
    output: Path = typer.Option(..., "-o", "--output", help="runs.csv or runs.parquet"),
    curves: bool = typer.Option(False, "--curves", help="export the loss curves instead of the points"),
) -> None:
    """Write the finished runs' points (canonical columns) or loss curves to CSV/Parquet."""
    from scalinglab.data.store import export
    with fail(), _store_errors(db):
        frame = export(db, output, curves=curves)
    console.print(f"wrote {len(frame)} rows to {output}")
