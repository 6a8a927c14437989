"""``scalinglab plan distill.json --budget C --student-params N ...``: the plan command's
distill-or-train branch (``planning/distill.py`` holds the logic; this only checks the options
and prints)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from scalinglab.cli.render import check_range, console, emit_json, print_text_block

TEACHER_COST_HELP = ("What the distillation pays for its teacher: inference (its forward passes on the "
                     "distillation tokens, 2*N_T*D_S; needs --teacher-params), included (also its training, "
                     "6*N_T*D_T; needs --teacher-tokens) or free (an existing teacher whose logits cost nothing).")


def run_distill_plan(fit_result, budget: Optional[float], target_loss: Optional[float], student_params: float,
                     teacher_loss: Optional[float], teacher_params: Optional[float], teacher_tokens: Optional[float],
                     teacher_cost: str, *, as_json: bool, output: Optional[Path],
                     supervised: Optional[Path] = None, students: int = 1) -> None:
    """Check the distill options, decide, print (or write JSON)."""
    from scalinglab.planning.distill import TEACHER_COSTS, distill_or_train

    if target_loss is not None or budget is None:
        raise typer.BadParameter("--student-params plans a distillation at a budget: give --budget (FLOPs, e.g. "
                                 "1e21), not --target-loss")
    check_range(student_params, "--student-params", low=0, low_open=True, example="1e9")
    for value, option, example in ((teacher_loss, "--teacher-loss", "2.1"), (teacher_params, "--teacher-params", "7e9"),
                                   (teacher_tokens, "--teacher-tokens", "1.4e11")):
        check_range(value, option, low=0, low_open=True, example=example)
    check_range(students, "--students", low=1, integer=True, example="8")
    if students > 1 and teacher_cost != "included":
        raise typer.BadParameter("--students shares the teacher's training between students: it needs "
                                 "--teacher-cost included")
    if teacher_cost not in TEACHER_COSTS:
        raise typer.BadParameter(f"--teacher-cost {teacher_cost!r} is not one of {', '.join(TEACHER_COSTS)}")
    if teacher_loss is None and (teacher_params is None or teacher_tokens is None):
        raise typer.BadParameter("give the teacher: --teacher-loss (its cross-entropy, e.g. 2.1), or --teacher-params "
                                 "and --teacher-tokens (its size and training tokens) to predict it")
    if teacher_cost != "free" and teacher_params is None:
        raise typer.BadParameter(f"--teacher-cost {teacher_cost} counts the teacher's forward passes (2*N_T*D_S): "
                                 f"give --teacher-params, or --teacher-cost free")
    if teacher_cost == "included" and teacher_tokens is None:
        raise typer.BadParameter("--teacher-cost included counts the teacher's training (6*N_T*D_T): give "
                                 "--teacher-tokens too")
    sup_fit = None
    if supervised is not None:
        from scalinglab.fitting.result import FitResult

        if not supervised.is_file():
            raise typer.BadParameter(f"--supervised {supervised}: no such file; give a fit written by `scalinglab fit "
                                     f"runs.csv --law chinchilla -o sup.json`")
        sup_fit = FitResult.from_json(supervised)
    decision = distill_or_train(fit_result, budget, student_params, teacher_loss=teacher_loss,
                                teacher_params=teacher_params, teacher_tokens=teacher_tokens, teacher_cost=teacher_cost,
                                supervised=sup_fit, students=students)
    if output is not None:
        from scalinglab.util import jsonio

        output.write_text(jsonio.dumps(decision.to_dict(), indent=2) + "\n")
    if as_json:
        emit_json(decision.to_dict())
    else:
        print_text_block(decision.summary(), title="Distill or train (laws/distillation.py)")
        if output is not None:
            console.print(f"plan written to {output}")
