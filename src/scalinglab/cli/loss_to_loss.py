"""`scalinglab loss-to-loss`: a thin layer over ``studies/loss_to_loss.py`` (Brandfonbrener et
al. 2024): fit L_y = K (L_x - E_x)^kappa + E_y to paired losses, predict y losses from x losses."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from scalinglab.cli.app import app
from scalinglab.cli.language import bootstrap_option
from scalinglab.cli.runopts import where_help
from scalinglab.cli.fileopts import AllowEditedOpt
from scalinglab.cli.rowopts import DropInvalidOpt
from scalinglab.cli.render import add_file_notes, check_bootstrap, check_range, emit_json, fail, parse_mapping, print_text_block
from scalinglab.util.formatting import fmt_num

IRREDUCIBLE_HELP = ("Where E_x and E_y come from: compute (each loss's own compute law E + A*C^-alpha fitted to "
                    "each budget's lowest loss), joint (fitted from the pairs with K and kappa), "
                    "or two numbers EX,EY")


def _irreducible(text: str):
    if text in ("compute", "joint"):
        return text
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2:
        raise typer.BadParameter(f"--irreducible {text!r}: give compute, joint, or two numbers EX,EY (e.g. 1.9,1.6)")
    return values


def _prediction_lines(fit, preds) -> list[str]:
    lines = []
    for p in preds:
        pct = f"{100 * p.level:g}%"
        lines.append(f"{fit.y} at {fit.x} = {fmt_num(p.x_loss, 4)}: {p.y_loss:.4f} (C = {p.flops:.3g} FLOPs, "
                     f"{p.flops_source})")
        lines.append(f"  {pct} CI {p.ci[0]:.4f} – {p.ci[1]:.4f} (the curve); {pct} PI {p.pi[0]:.4f} – {p.pi[1]:.4f} "
                     f"(a new run)")
    return lines


@app.command("loss-to-loss")
def loss_to_loss_command(
    runs: str = typer.Argument(..., help="Runs with two loss columns per row (.csv/.parquet/.jsonl), e.g. train->train "
                               "pairs matched by compute, or a fit written by -o (.json) to predict from"),
    x: Optional[str] = typer.Option(None, "--x", help="Column of the loss predicted from (the first dataset)"),
    y: Optional[str] = typer.Option(None, "--y", help="Column of the loss to predict (the second dataset)"),
    predict: List[float] = typer.Option([], "--predict", help="An x loss to predict the y loss at, repeatable"),
    flops: Optional[float] = typer.Option(None, "--flops", help="Training compute of the predicted run(s) (the PI "
                                          "widens beyond the data); default: where the x loss's compute law "
                                          "reaches the given x loss"),
    irreducible: str = typer.Option("compute", "--irreducible", help=IRREDUCIBLE_HELP),
    mapping: List[str] = typer.Option([], "--map", help="Column mapping canonical=source, repeatable, e.g. "
                                      "--map params=n_params --map flops=C"),
    where: Optional[str] = typer.Option(None, help=where_help("setting == 'tuned'")),
    bootstrap: int = bootstrap_option("CIs (the pairs resampled; 0 = none)"),
    level: float = typer.Option(0.9, "--level", help="Coverage of the CI and the PI"),
    seed: int = typer.Option(0, "--seed"),
    drop_invalid: bool = DropInvalidOpt,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the fit (JSON) to predict from later"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    allow_edited: bool = AllowEditedOpt,
):
    """Loss-to-loss (Brandfonbrener et al. 2024): fit y = K*(x - E_x)^kappa + E_y, predict y losses from x losses."""
    from scalinglab.studies.loss_to_loss import LossToLossFit, fit_loss_to_loss

    with fail(as_json=as_json):
        check_bootstrap(bootstrap)
        check_range(level, "--level", low=0, low_open=True, high=1, high_open=True, example="0.9")
        check_range(flops, "--flops", low=0, low_open=True, example="1e21")
        check_range(seed, "--seed", low=0, integer=True, example="0")
        for value in predict:
            check_range(value, "--predict", low=0, low_open=True, example="3.2")
        if output is not None and (output.is_dir() or not output.parent.exists()):
            raise typer.BadParameter(f"-o {output}: give a file in an existing directory, e.g. -o l2l.json")
        if runs.endswith(".json"):
            result = LossToLossFit.from_json(runs, allow_edited=allow_edited)
            add_file_notes(result)
            if not predict:
                raise typer.BadParameter(f"{runs} is a saved fit: give --predict X (an x loss) to predict from it")
        else:
            if not x or not y:
                raise typer.BadParameter("give the two loss columns: --x COLUMN (predicted from) and --y COLUMN "
                                         "(predicted), e.g. --x loss_rw --y loss_owt2")
            result = fit_loss_to_loss(runs, x, y, irreducible=_irreducible(irreducible), n_bootstrap=bootstrap,
                                      level=level, seed=seed, mapping=parse_mapping(mapping) or {}, where=where,
                                      drop_invalid=drop_invalid)
        preds = result.predict(list(predict), flops) if predict else []
        if output is not None:
            result.to_json(output)
    if as_json:
        emit_json({**result.to_dict(), "predictions": [p.to_dict() for p in preds], "notes": list(result.notes)})
        return
    text = result.summary()
    if preds:
        text += "\n" + "\n".join(_prediction_lines(result, preds))
    print_text_block(text, title=f"loss-to-loss fit to {runs}")
    if output is not None:
        print(f"fit written to {output}; predict from it with `scalinglab loss-to-loss {output} --predict X`")
