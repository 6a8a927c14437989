"""Issue 27, part 1: in an LR × batch sweep read from a sweep store, a run whose evaluated loss rose
through training (its final evaluation more than RISE_MARGIN above its own running minimum) diverged
even when its final loss is finite and within DIVERGED_RATIO of its group's best: it is named (row,
run id, minimum and final loss, their steps) and left out of the smoothing, like the other diverged
runs. A CSV of the same runs has no histories: nothing is flagged there."""
from __future__ import annotations

import numpy as np
import pytest

from scalinglab.data.store import create_store, runs_frame
from scalinglab.studies.hparams import (DIVERGED_RATIO, RISE_MARGIN, fit_hparams, load_hparam_runs,
                                        synthetic_hparam_sweep)

GROUP = (3e7, 6e8)                       # the group whose high-lr runs rose (N, D = 20 N)
EVALS = 5                                # evaluations per run, every 100 steps


def _curve(final: float, rise: float) -> list[float]:
    """Evaluated losses ending at ``final``: falling throughout (rise 0), or reaching a minimum of
    final / (1 + rise) at the third evaluation and climbing back to ``final``."""
    if rise == 0:
        return [final * (1 + 0.1 * (EVALS - 1 - k)) for k in range(EVALS)]
    low = final / (1 + rise)
    return [final * 1.4, final * 1.2, low, low * (1 + rise / 2), final]


def _store(tmp_path, sweep, rises):
    runs = [{"run_id": f"r{i}", "budget": 6 * r.params * r.tokens,
             "config": {"train": {"lr": r.lr, "batch_size": r.batch_size, "seq_len": 1, "seed": 0}}}
            for i, r in enumerate(sweep.itertuples())]
    store = create_store(tmp_path / "sweep.db", runs, {})
    for i, r in enumerate(sweep.itertuples()):
        c = 6 * r.params * r.tokens
        losses = _curve(r.loss, rises.get(i, 0.0))
        curve = [{"step": 100 * (k + 1), "tokens": r.tokens * (k + 1) / EVALS, "train_loss": v, "val_loss": v,
                  "lr": r.lr, "branch": None} for k, v in enumerate(losses)]
        point = {"tokens": r.tokens, "val_loss": r.loss, "flops": c, "flops_6nd": c, "params": r.params,
                 "branch": None, "step": 100 * EVALS}
        store.record_done(f"r{i}", [point], curve, wall_seconds=1.0, hardware={})
    store.close()
    return tmp_path / "sweep.db"


@pytest.fixture(scope="module")
def sweep():
    s = synthetic_hparam_sweep(sizes=(1e7, 3e7, 1e8), multipliers=(20.0,), seed=0)
    return s[np.isfinite(s["loss"])].reset_index(drop=True)


@pytest.fixture(scope="module")
def rising(sweep, tmp_path_factory):
    """The sweep's store, where every run of GROUP above 2 lr* rose by 2x the margin, and two more
    runs of another group rose by just under and just over the margin."""
    in_group = (sweep.params == GROUP[0]) & (sweep.tokens == GROUP[1])
    hot = np.flatnonzero(in_group & (sweep.lr > 2 * sweep.lr_true_opt))
    other = np.flatnonzero(~in_group)
    rises = {int(i): 2 * RISE_MARGIN for i in hot}
    rises[int(other[0])] = RISE_MARGIN - 0.005          # within the margin: kept
    rises[int(other[1])] = RISE_MARGIN + 0.005          # beyond it: flagged
    return _store(tmp_path_factory.mktemp("rising"), sweep, rises), hot, int(other[0]), int(other[1])


def test_the_risen_runs_are_finite_and_within_the_ratio_rule(sweep, rising):
    # what makes the check needed: the far-above rule alone (1.5x the group's best) keeps them all
    _, hot, _, _ = rising
    best = sweep.groupby(["params", "tokens"])["loss"].transform("min")
    assert len(hot) >= 3 and (sweep.loss[hot] / best[hot]).max() < DIVERGED_RATIO


def test_runs_whose_loss_rose_are_named_and_left_out(sweep, rising):
    path, hot, kept, over = rising
    runs, diverged = load_hparam_runs(path)
    flagged = diverged[diverged["rose"].eq(True)]
    assert sorted(flagged["run_id"]) == sorted(f"r{i}" for i in [*hot, over])
    assert len(runs.df) == len(sweep) - len(hot) - 1 and f"r{kept}" in set(runs.df["run_id"])
    # the reason names the row, the run, its minimum and final loss and the steps of both
    i = int(hot[0])
    reason = flagged.set_index("run_id").loc[f"r{i}", "reason"]
    low, final = sweep.loss[i] / (1 + 2 * RISE_MARGIN), sweep.loss[i]
    assert f"(run r{i})" in reason and f"{low:.4g} at step 300" in reason and f"{final:.4g} at step 500" in reason
    assert f"+{100 * 2 * RISE_MARGIN:.1f}%" in reason and "left out of the smoothing" in reason
    assert reason.startswith(f"row {i + 1} ")            # the store's rows are its done runs in order

    fit = fit_hparams((runs, diverged), n_boot=5)
    note = next(n for n in fit.notes if "rose through training" in n)
    assert note.startswith(f"{len(hot) + 1} run(s)") and f"r{i} ({low:.4g} at step 300 -> {final:.4g} at step 500)" in note
    assert not any("diverged with a finite loss" in n for n in fit.notes)   # they are not far-above runs
    g = fit.groups
    row = g[np.isclose(g.params, GROUP[0]) & np.isclose(g.tokens, GROUP[1])].iloc[0]
    assert row["diverged"] == len(hot) and row["runs"] == int(((sweep.params == GROUP[0])
                                                               & (sweep.tokens == GROUP[1])).sum()) - len(hot)
    assert fit.n_runs == len(runs.df)


def test_a_csv_of_the_same_runs_has_no_histories_and_flags_nothing(rising, tmp_path):
    path, _, _, _ = rising
    csv = tmp_path / "sweep.csv"
    runs_frame(path).query("branch == -1").drop(columns=["budget", "run_budget"]).to_csv(csv, index=False)
    runs, diverged = load_hparam_runs(csv)
    assert len(diverged) == 0 and len(runs.df) == len(runs_frame(path).query("branch == -1"))
