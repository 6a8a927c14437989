"""`scalinglab design suggest` and `scalinglab design score`: a thin layer over ``scalinglab.design``
(experiment design: the next runs that most narrow the target's interval per unit cost; a ladder
scored by simulation before it is run)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from scalinglab.cli.app import app
from scalinglab.cli.core import SourceArg, _load
from scalinglab.cli.language import LanguageGroup
from scalinglab.cli.lawopts import LawOptions
from scalinglab.cli.levelopts import LevelOpt, resolved_level
from scalinglab.cli.optionset import with_option_sets
from scalinglab.cli.render import RegistryHelpCommand, check_range, emit_json, fail, parse_budgets, print_text_block, to_cli
from scalinglab.cli.runopts import RunOptions

design_app = typer.Typer(cls=LanguageGroup, help="Design the ladder: suggest the next runs, score a ladder before "
                         "running it.", no_args_is_help=True)
app.add_typer(design_app, name="design")

TargetBudgetOpt = typer.Option(..., "--target-budget", help="Compute budget C (FLOPs) of the big run to plan for: "
                               "the target quantities are its planned loss and log10 N*(C).")
SeedOpt = typer.Option(0, "--seed", help="Seed of the parameter draws / simulations (same seed, same answer).")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of text.")


def _read_table(path: Path, option: str):
    import pandas as pd

    if not path.exists():
        raise typer.BadParameter(f"{option} {path}: no such file")
    return pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)


@design_app.command("suggest", cls=RegistryHelpCommand)
@with_option_sets
def suggest_command(
    source: str = SourceArg,
    laws: LawOptions = LawOptions(),
    reading: RunOptions = RunOptions(),
    pool: Optional[Path] = typer.Option(None, "--pool", help="Candidate runs (.csv/.parquet): the law's variables "
                                        "(params, tokens, ...) and optionally cost (default 6*params*tokens)."),
    budgets: Optional[str] = typer.Option(None, "--budgets", help="Without --pool: candidates on an IsoFLOP grid at "
                                          "these comma-separated budgets, e.g. 1e17,1e18."),
    sizes_per_budget: int = typer.Option(7, "--sizes-per-budget", help="Without --pool: sizes per budget, spread "
                                         "+-1 decade around Chinchilla's N*(C)."),
    target_budget: float = TargetBudgetOpt,
    budget_left: float = typer.Option(..., "--budget-left", help="Compute the suggested runs may spend together "
                                      "(same unit as the pool's cost)."),
    batch: int = typer.Option(4, "--batch", help="How many runs to suggest (the batch the next round trains), "
                              "as `sweep plan --adaptive --batch`."),
    seed: int = SeedOpt,
    level: Optional[float] = LevelOpt,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the suggested runs to this CSV."),
    as_json: bool = JsonOpt,
):
    """Suggest the next runs: the candidates that most narrow the interval of the target's planned loss
    and N*(C) per unit cost (Gauss-Newton information of the fit; a space-filling start before there
    are enough runs to fit). No SOURCE: no runs yet."""
    from scalinglab.design import candidate_pool, suggest

    with fail(as_json=as_json):
        check_range(seed, "--seed", low=0, integer=True, example="0")
        law = laws.resolve()
        runs = None if source is None else _load(source, reading)
        if pool is not None:
            if budgets is not None:
                raise typer.BadParameter("--budgets builds a pool when --pool is absent; give one of them")
            table = _read_table(pool, "--pool")
        elif budgets is not None:
            table = candidate_pool(parse_budgets(budgets), sizes_per_budget=sizes_per_budget)
        else:
            raise typer.BadParameter("give the candidate runs: --pool POOL.csv, or --budgets 1e17,1e18 for an "
                                     "IsoFLOP grid of candidates")
        result = suggest(runs, law, table, target_budget, budget_left=budget_left, k=batch, seed=seed,
                         level=resolved_level(level))
        if output is not None:
            result.chosen.to_csv(output, index=False)
    if as_json:
        emit_json(result.to_dict())
        return
    print_text_block(to_cli(result.summary()), title="design suggest")


@design_app.command("score", cls=RegistryHelpCommand)
@with_option_sets
def score_command(
    ladder: Path = typer.Argument(..., help="The ladder to score (.csv/.parquet): the law's variables (params, "
                                  "tokens, ...) and optionally cost (default 6*params*tokens); losses not needed."),
    compare: Optional[Path] = typer.Option(None, "--compare", help="A second ladder to score beside it."),
    laws: LawOptions = LawOptions(),
    target_budget: float = TargetBudgetOpt,
    fit: Optional[Path] = typer.Option(None, "--fit", help="Simulate from this fit (a fit JSON) and its noise; "
                                       "default: the law's reference constants, noise sd 0.01 of log loss."),
    simulations: int = typer.Option(200, "--simulations", help="Simulated ladders to fit (>= 20)."),
    seed: int = SeedOpt,
    level: Optional[float] = LevelOpt,
    as_json: bool = JsonOpt,
):
    """Score a ladder before running it: simulate it from a fit or the law's reference constants, fit
    every simulation, and report the expected interval widths of the planned loss and N*(C), their
    coverage of the truth and the ladder's compute; --compare scores a second ladder beside it."""
    from scalinglab.design import compare_summary, score
    from scalinglab.fitting.result import FitResult

    with fail(as_json=as_json):
        check_range(seed, "--seed", low=0, integer=True, example="0")
        reference = None if fit is None else FitResult.from_json(fit)
        law = laws.resolve() if reference is None else None
        ladders = [ladder] + ([compare] if compare is not None else [])
        scores = [score(_read_table(p, "LADDER" if i == 0 else "--compare"), law, target_budget,
                        reference=reference, n_sim=simulations, seed=seed, level=resolved_level(level))
                  for i, p in enumerate(ladders)]
    if as_json:
        emit_json([s.to_dict() for s in scores] if compare is not None else scores[0].to_dict())
        return
    text = scores[0].summary() if compare is None else (
        "\n".join(s.summary() for s in scores) + "\n\n" + compare_summary(scores, [p.name for p in ladders]))
    print_text_block(to_cli(text), title="design score")
