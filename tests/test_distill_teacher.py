"""The compute-optimal teacher (planning/distill_teacher.py) and `fit --supervised-fit`.

Everything runs on the synthetic distillation ladder of laws/distillation.py (the paper's fitted
distillation constants are not available offline: see that module's docstring).  The optimum is
checked against a brute-force grid over the teacher's size and tokens written from the accounting
(6 N_T D_T / students + 2 N_T D_S + 6 N_S D_S = C) and eq. 8 by hand; the paper's claim checked is
the one its abstract states (Busbridge et al. 2025, arXiv:2502.08606v2): "if only one student is to
be distilled and a teacher also requires training, supervised learning is generally preferable".
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import scalinglab as sl
from scalinglab.laws.distillation import DISTILLATION, synthetic_distillation_ladder
from scalinglab.planning.distill_teacher import optimal_teacher
from test_distillation import _eq8, _hoffmann, bootstrap_fit


@pytest.fixture(scope="module")
def fit():
    return bootstrap_fit()


@pytest.mark.parametrize("budget, students", [(1e20, 1), (1e22, 1), (1e22, 8)])
def test_the_chosen_teacher_beats_every_teacher_on_a_brute_force_grid(fit, budget, students):
    n_s = 3e8
    r = optimal_teacher(fit, budget, n_s, students=students)
    # the accounting: the three parts spend the budget exactly
    assert r.split["teacher_training"] == pytest.approx(6 * r.teacher_params * r.teacher_tokens / students, rel=1e-9)
    assert r.split["teacher_inference"] == pytest.approx(2 * r.teacher_params * r.student_tokens, rel=1e-9)
    assert r.split["student"] == pytest.approx(6 * n_s * r.student_tokens, rel=1e-9)
    assert sum(r.split.values()) == pytest.approx(budget, rel=1e-9)
    p = fit.params
    assert r.teacher_loss == pytest.approx(_hoffmann(r.teacher_params, r.teacher_tokens), rel=1e-12)
    assert r.loss == pytest.approx(_eq8(n_s, r.student_tokens, r.teacher_loss, p), rel=1e-10)
    # every teacher (N_T, D_T) on a dense grid, the rest of the budget on the student's tokens
    n_t, d_t = np.meshgrid(np.geomspace(n_s / 100, n_s * 1000, 600), np.geomspace(1e6, 1e15, 600), indexing="ij")
    left = budget - 6 * n_t * d_t / students
    ok = left > 0
    d_s = left[ok] / (6 * n_s + 2 * n_t[ok])
    losses = _eq8(n_s, d_s, _hoffmann(n_t[ok], d_t[ok]), p)
    best = np.argmin(losses)
    assert r.loss <= losses[best] * (1 + 1e-9)                 # no grid teacher does better
    assert r.loss == pytest.approx(losses[best], rel=1e-4)     # and the grid's best is as good, to its spacing
    assert r.teacher_params == pytest.approx(n_t[ok][best], rel=0.05)
    assert r.teacher_tokens == pytest.approx(d_t[ok][best], rel=0.05)
    # the intervals: every resample re-optimised; they hold the point estimate
    assert r.resamples == 30
    for key, value in (("teacher_params", r.teacher_params), ("teacher_tokens", r.teacher_tokens),
                       ("student_tokens", r.student_tokens),
                       ("share_teacher_training", r.split["teacher_training"] / budget)):
        lo, hi = r.intervals[key]
        assert lo <= value <= hi, key
    assert r.decision.distillation.loss_ci[0] <= r.loss <= r.decision.distillation.loss_ci[1]
    assert r.decision.distillation.loss_pi[0] < r.loss < r.decision.distillation.loss_pi[1]


def test_one_student_with_its_teacher_to_train_is_better_off_supervised_even_with_the_best_teacher(fit):
    """Busbridge et al. 2025 (abstract, arXiv:2502.08606v2): 'if only one student is to be distilled
    and a teacher also requires training, supervised learning is generally preferable' -- here even
    the compute-optimal teacher loses to training the student from scratch with all of C."""
    for budget in np.geomspace(1e19, 1e24, 6):
        r = optimal_teacher(fit, budget, 3e8, max_resamples=0)
        assert r.decision.winner == "supervised"
        assert r.decision.supervised.loss == pytest.approx(_hoffmann(3e8, budget / (6 * 3e8)), rel=1e-12)


def test_more_compute_buys_a_bigger_teacher_and_sharing_it_helps_each_student(fit):
    plans = [optimal_teacher(fit, c, 3e8, max_resamples=0) for c in (1e20, 1e21, 1e22)]
    for a, b in zip(plans, plans[1:]):
        assert b.teacher_params > a.teacher_params and b.teacher_tokens > a.teacher_tokens
        assert b.student_tokens > a.student_tokens and b.loss < a.loss
    # sharing the teacher's training among 8 students: every plan of one student stays affordable
    # with budget to spare, so each student's best loss is strictly lower
    shared = optimal_teacher(fit, 1e21, 3e8, students=8, max_resamples=0)
    assert shared.loss < plans[1].loss
    with pytest.raises(ValueError, match="students must be a whole number"):
        optimal_teacher(fit, 1e21, 3e8, students=0)
    chin = sl.fit(synthetic_distillation_ladder(), "chinchilla", n_refine=4)
    with pytest.raises(ValueError, match="law 'chinchilla' has no supervised law"):
        optimal_teacher(chin, 1e21, 3e8)
    # a supervised fit gives the teacher's loss and the from-scratch side
    r = optimal_teacher(fit, 1e21, 3e8, supervised=chin, max_resamples=0)
    assert r.teacher_loss == pytest.approx(chin.predict({"params": [r.teacher_params],
                                                         "tokens": [r.teacher_tokens]})[0], rel=1e-12)
    assert r.decision.supervised.loss == pytest.approx(chin.predict({"params": [3e8], "tokens": [1e21 / 1.8e9]})[0],
                                                       rel=1e-12)


def test_cli_optimal_teacher_and_its_bad_options(fit, tmp_path):
    from typer.testing import CliRunner

    from scalinglab.cli import app

    path = tmp_path / "distill_fit.json"
    fit.to_json(path)
    runner = CliRunner()
    res = runner.invoke(app, ["plan", str(path), "--budget", "1e21", "--student-params", "3e8", "--optimal-teacher",
                              "--students", "8", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    r = optimal_teacher(fit, 1e21, 3e8, students=8)
    assert doc["teacher_params"] == pytest.approx(r.teacher_params, rel=1e-9)
    assert doc["intervals"]["share_student"] == pytest.approx(list(r.intervals["share_student"]), rel=1e-9)
    assert doc["decision"]["winner"] == r.decision.winner
    for args, message in (
            (["--student-params", "3e8", "--optimal-teacher", "--teacher-params", "1e9"],
             "leave out --teacher-params"),
            (["--student-params", "3e8", "--optimal-teacher", "--teacher-cost", "free"], "drop --teacher-cost free"),
            (["--optimal-teacher"], "give --student-params")):
        res = runner.invoke(app, ["plan", str(path), "--budget", "1e21", *args])
        assert res.exit_code == 2 and message in res.output, (args, res.output)


def test_fit_supervised_fit_sets_the_students_supervised_law(tmp_path):
    """A ladder made with the paper's supervised law (BUSBRIDGE_SUPERVISED) is fitted exactly only
    when `fit --supervised-fit` gives that law; Hoffmann's default leaves a misfit."""
    from typer.testing import CliRunner

    from scalinglab.cli import app
    from scalinglab.fitting.result import FitResult
    from scalinglab.laws.distillation import BUSBRIDGE_SUPERVISED

    law = DISTILLATION.with_supervised(dict(BUSBRIDGE_SUPERVISED))
    runs = tmp_path / "distill_runs.csv"
    synthetic_distillation_ladder(law, noise=0.0).to_csv(runs, index=False)
    constants = tmp_path / "sup.json"
    constants.write_text(json.dumps(dict(BUSBRIDGE_SUPERVISED)))
    runner = CliRunner()
    out = tmp_path / "fit_sup.json"
    res = runner.invoke(app, ["fit", str(runs), "--law", "distillation", "--supervised-fit", str(constants),
                              "--no-calibrate", "-o", str(out)])
    assert res.exit_code == 0, res.output
    with_sup = FitResult.from_json(out)
    by_hand = 1.220 + (3355.0 / 1e8 ** 0.408 + 18186.0 / 2e9 ** 0.431) ** 0.452
    assert with_sup.law_object.supervised_loss(1e8, 2e9) == pytest.approx(by_hand, rel=1e-12)
    default = tmp_path / "fit_default.json"
    assert runner.invoke(app, ["fit", str(runs), "--law", "distillation", "--no-calibrate", "-o",
                               str(default)]).exit_code == 0
    assert with_sup.objective < 0.1 * FitResult.from_json(default).objective
    # a supervised fit's JSON works too: its params are the constants
    sup_fit = sl.fit(synthetic_distillation_ladder(), "chinchilla", n_refine=4)
    sup_path = tmp_path / "chin.json"
    sup_fit.to_json(sup_path)
    res = runner.invoke(app, ["fit", str(runs), "--law", "distillation", "--supervised-fit", str(sup_path),
                              "--no-calibrate", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert dict(FitResult.from_json(out).law_object.supervised)["E"] == pytest.approx(sup_fit.params["E"], rel=1e-12)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"E": 1.7, "A": 400, "B": 400, "alpha": 0.3}))
    for args, message in ((["--supervised-fit", str(bad)], "missing ['beta']"),
                          (["--supervised-fit", str(tmp_path / "none.json")], "no such file"),
                          (["--law", "chinchilla", "--supervised-fit", str(constants)], "use --law distillation")):
        law_args = [] if "--law" in args else ["--law", "distillation"]
        res = runner.invoke(app, ["fit", str(runs), *law_args, *args, "--no-calibrate"])
        assert res.exit_code == 2 and message in res.output, (args, res.output)
