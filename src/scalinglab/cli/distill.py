"""``scalinglab plan distill.json --budget C --student-params N ...``: the plan command's
distill-or-train branch (``planning/distill.py`` holds the logic; this only checks the options
and prints)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from scalinglab.cli.render import add_file_notes, check_range, console, emit_json, print_text_block

TEACHER_COST_HELP = ("What the distillation pays for its teacher: inference (its forward passes on the "
                     "distillation tokens, 2*N_T*D_S; needs --teacher-params), included (also its training, "
                     "6*N_T*D_T; needs --teacher-tokens) or free (an existing teacher whose logits cost nothing).")


def run_distill_plan(fit_result, budget: Optional[float], target_loss: Optional[float], student_params: float,
                     teacher_loss: Optional[float], teacher_params: Optional[float], teacher_tokens: Optional[float],
                     teacher_cost: str, *, as_json: bool, output: Optional[Path],
                     supervised: Optional[Path] = None, students: int = 1, optimal_teacher: bool = False,
                     allow_edited: bool = False) -> None:
    """Check the distill options, decide, print (or write JSON); with ``optimal_teacher``, choose
    the teacher first (``planning/distill_teacher.py``)."""
    from scalinglab.planning.distill import TEACHER_COSTS, distill_or_train

    if target_loss is not None or budget is None:
        raise typer.BadParameter("--student-params plans a distillation at a budget: give --budget (FLOPs, e.g. "
                                 "1e21), not --target-loss")
    check_range(student_params, "--student-params", low=0, low_open=True, example="1e9")
    for value, option, example in ((teacher_loss, "--teacher-loss", "2.1"), (teacher_params, "--teacher-params", "7e9"),
                                   (teacher_tokens, "--teacher-tokens", "1.4e11")):
        check_range(value, option, low=0, low_open=True, example=example)
    check_range(students, "--students", low=1, integer=True, example="8")
    if optimal_teacher:
        given = [o for o, v in (("--teacher-loss", teacher_loss), ("--teacher-params", teacher_params),
                                ("--teacher-tokens", teacher_tokens)) if v is not None]
        if given:
            raise typer.BadParameter(f"--optimal-teacher chooses the teacher's size and tokens: leave out "
                                     f"{', '.join(given)} (or drop --optimal-teacher to plan with that teacher)")
        if teacher_cost == "free":
            raise typer.BadParameter("--optimal-teacher trains the teacher from the budget (its training and "
                                     "inference are counted, as --teacher-cost included): drop --teacher-cost free")
        return _run_optimal_teacher(fit_result, budget, student_params, students,
                                    _supervised_fit(supervised, allow_edited),
                                    as_json=as_json, output=output)
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
    sup_fit = _supervised_fit(supervised, allow_edited)
    decision = distill_or_train(fit_result, budget, student_params, teacher_loss=teacher_loss,
                                teacher_params=teacher_params, teacher_tokens=teacher_tokens, teacher_cost=teacher_cost,
                                supervised=sup_fit, students=students)
    _emit(decision, "Distill or train (laws/distillation.py)", as_json=as_json, output=output)


def _supervised_fit(supervised: Optional[Path], allow_edited: bool = False):
    """The --supervised fit, or None; a clear error for a missing file."""
    if supervised is None:
        return None
    from scalinglab.fitting.result import FitResult

    if not supervised.is_file():
        raise typer.BadParameter(f"--supervised {supervised}: no such file; give a fit written by `scalinglab fit "
                                 f"runs.csv --law chinchilla -o sup.json`")
    sup = FitResult.from_json(supervised, allow_edited=allow_edited)
    add_file_notes(sup)
    return sup


def _emit(result, title: str, *, as_json: bool, output: Optional[Path]) -> None:
    if output is not None:
        from scalinglab.util import jsonio

        output.write_text(jsonio.dumps(result.to_dict(), indent=2) + "\n")
    if as_json:
        emit_json(result.to_dict())
    else:
        print_text_block(result.summary(), title=title)
        if output is not None:
            console.print(f"plan written to {output}")


def _run_optimal_teacher(fit_result, budget: float, student_params: float, students: int, sup_fit, *, as_json: bool,
                         output: Optional[Path]) -> None:
    from scalinglab.planning.distill_teacher import optimal_teacher

    result = optimal_teacher(fit_result, budget, student_params, students=students, supervised=sup_fit)
    _emit(result, "Compute-optimal teacher (planning/distill_teacher.py)", as_json=as_json, output=output)


def law_with_supervised_fit(law_obj, path: Optional[Path], allow_edited: bool = False):
    """``fit --supervised-fit sup.json``: the distillation law with its student's supervised law set
    to a supervised fit's constants (E, A, B, alpha, beta and gamma, default 1), or to a JSON object
    of those constants.  A fit file is checked as ``FitResult.from_json`` checks one (its checksum,
    ``allow_edited``); a JSON object of constants is the user's own data."""
    if path is None:
        return law_obj
    from scalinglab.util.jsonio import read_json_file

    with_supervised = law_obj.capability("with_supervised")      # a fixed law forwards it, fixed values kept
    if with_supervised is None:
        raise typer.BadParameter(f"--supervised-fit sets the supervised law of a distillation law; law "
                                 f"{law_obj.name!r} has none (use --law distillation)")
    if not path.is_file():
        raise typer.BadParameter(f"--supervised-fit {path}: no such file; give a fit written by `scalinglab fit "
                                 f"runs.csv --law chinchilla -o sup.json`, or a JSON object of E, A, B, alpha, beta")
    try:
        doc = read_json_file(path, f"--supervised-fit {path}")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if isinstance(doc, dict) and "params" in doc and "theta" in doc:        # a fit file scalinglab wrote
        from scalinglab.fitting.result import FitResult

        sup = FitResult.from_json(path, allow_edited=allow_edited)
        add_file_notes(sup)
        doc = {"params": sup.params}
    constants = doc.get("params", doc) if isinstance(doc, dict) else None
    if not isinstance(constants, dict):
        raise typer.BadParameter(f"--supervised-fit {path}: expected a fit (with 'params') or a JSON object of "
                                 f"E, A, B, alpha, beta (gamma optional)")
    try:
        return with_supervised({k: v for k, v in constants.items() if isinstance(v, (int, float))})
    except ValueError as exc:
        raise typer.BadParameter(f"--supervised-fit {path}: {exc}") from None
