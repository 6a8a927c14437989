"""The adaptive ladder's decisions (issue 28 part 3 follow-ups): a degenerate refit never drives a
suggestion (early: the round falls back to the start rule and says so; late: the loop stops with a
named reason), each round's why names the rule that picked each run, and `design suggest` names
its run count --batch (as `sweep plan --adaptive` does), -k/--k kept for one release."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.data.builtin import synthetic_ladder
from scalinglab.data.store import SweepStore
from scalinglab.design import candidate_pool, suggest
from scalinglab.laws import LAWS
from scalinglab.studies.design import BRACKET_RULES
from scalinglab.sweep.adaptive import (DEGENERATE, LATE_SHARE, STOP_KEY, AdaptiveSettings, degenerate_refit,
                                       next_step, pool_frame, round_why, run_adaptive)
from scalinglab.sweep.plan import plan_sweep, write_plan
from scalinglab.sweep.runner import SweepSummary
from test_sweep_adaptive import chinchilla_loss, fake_trainer

N_PARAMS = len(LAWS["chinchilla"].params)      # 5: E, A, B, alpha, beta


@pytest.fixture(scope="module")
def plan():
    """The candidate pool: the IsoFLOP grid `sweep plan` makes for four budgets, 4 sizes each."""
    return plan_sweep([3e9, 1e10, 3e10, 1e11], sizes_per_budget=4)


def _pool(plan) -> pd.DataFrame:
    """The pool as the store keeps it (sweep.adaptive.pool) read by pool_frame."""
    return pool_frame([{"run_id": r.run_id, "budget": r.budget, "config": {"plan": r.to_dict()}} for r in plan.runs])


def _finished(pool: pd.DataFrame, ids) -> pd.DataFrame:
    """Finished runs as the loop reads them: the pool's rows with the law's loss, no noise."""
    rows = pool[pool["run_id"].isin(ids)].reset_index(drop=True)
    return rows.assign(loss=chinchilla_loss(rows["params"], rows["tokens"]))


def _settings(**kw) -> AdaptiveSettings:
    return AdaptiveSettings(**{"ladder_budget": 3e11, "target_budget": 1e15, "batch": 3, **kw})


def failing_fit(runs, law, target, level=0.9):
    raise RuntimeError("law 'chinchilla': every one of 64 L-BFGS-B runs ended with a non-finite objective")


def absurd_interval(runs, law, target, level=0.9):
    """A refit whose planned loss at the target reaches 10x above the ladder's worst loss."""
    return {"loss@C": (0.5 * runs["loss"].min(), 10 * runs["loss"].max())}


# ---- 1. a degenerate refit -----------------------------------------------------------------

def test_an_interval_is_degenerate_when_absurd_or_missing_after_enough_runs(plan):
    pool = _pool(plan)
    runs = _finished(pool, pool["run_id"][:6])
    worst = runs["loss"].max()
    s = _settings()
    assert degenerate_refit({"low": 2.0, "high": worst - 1, "width": worst - 3}, runs, s) is None
    above = degenerate_refit({"low": 2.0, "high": 2 * worst, "width": 2 * worst - 2}, runs, s)
    assert "above the worst loss of the ladder" in above and f"{worst:.4g}" in above
    assert "<= 0" in degenerate_refit({"low": -1.0, "high": 3.0, "width": 4.0}, runs, s)
    assert "not finite" in degenerate_refit(None, runs, s)                 # 6 runs >= 5 parameters
    assert degenerate_refit(None, runs.head(N_PARAMS - 1), s) is None      # too few runs to fit: no fit yet
    # a target budget inside the ladder's compute: a loss above its worst run is no contradiction
    small = _settings(target_budget=float(runs["flops"].min()))
    assert degenerate_refit({"low": 2.0, "high": 2 * worst, "width": 2 * worst - 2}, runs, small) is None


@pytest.mark.parametrize("interval, says", [(failing_fit, "failed: law 'chinchilla': every one of 64"),
                                            (absurd_interval, "above the worst loss of the ladder")])
def test_a_degenerate_refit_early_falls_back_to_the_start_rule_and_says_so(plan, interval, says):
    pool = _pool(plan)
    done = list(pool.sort_values("cost")["run_id"][:6])
    committed = float(pool.loc[pool["run_id"].isin(done), "cost"].sum())
    s = _settings()
    assert committed < LATE_SHARE * s.ladder_budget
    asked = []

    def spy(runs, *args, **kwargs):
        asked.append(runs)
        return suggest(runs, *args, **kwargs)

    step = next_step(_finished(pool, done), pool, set(done), committed, s, 3, suggest=spy, interval=interval)
    assert step.stop is None and step.decision is not None
    why = step.decision["why"]
    assert why.startswith(f"{DEGENERATE} on 6 run(s): ") and says in why and "falls back to the start rule" in why
    assert asked == [None]                    # suggest was asked without the degenerate fit: its start rule
    assert step.decision["expected"] is None  # the start rule expects no interval
    assert not set(step.decision["run_ids"]) & set(done)
    rules = {c["reason"].partition(": ")[0] for c in step.decision["detail"]["chosen"]}
    assert rules <= {"pilot", "space-filling start"} and rules
    assert all(f"{rule} - " in why for rule in rules)


def test_a_degenerate_refit_late_stops_the_loop_with_a_named_reason(plan):
    pool = _pool(plan)
    s = _settings()
    done, committed = [], 0.0
    for rid, cost in pool.sort_values("cost", ascending=False)[["run_id", "cost"]].itertuples(index=False):
        if committed >= LATE_SHARE * s.ladder_budget:
            break
        if committed + cost <= s.ladder_budget:
            done.append(rid)
            committed += cost
    asked = []
    step = next_step(_finished(pool, done), pool, set(done), committed, s, 4,
                     suggest=lambda *a, **k: asked.append(a) or suggest(*a, **k), interval=failing_fit)
    assert step.decision is None and asked == []
    assert step.stop.startswith(f"{DEGENERATE}: the fit of the {len(done)} run(s) failed")
    assert f"{committed / s.ladder_budget:.0%} of the ladder budget committed" in step.stop


def test_the_loop_falls_back_while_early_then_stops_and_keeps_the_reason(tmp_path, plan):
    """Every refit absurd: rounds fall back while under LATE_SHARE of the budget is committed, then
    the loop stops; the stop reason is in the store (STOP_KEY) and in the summary."""
    db = tmp_path / "a.db"
    s = _settings()         # 3e11: three rounds commit 1.56e11 >= half of it, with candidates still affordable
    write_plan(plan, db, adaptive=s).close()
    summary = run_adaptive(db, fake_trainer(db, []), SweepSummary(), interval=absurd_interval)
    with SweepStore(db, readonly=True) as store:
        decisions, stop = store.decisions(), json.loads(store.get_meta(STOP_KEY))
    assert stop["reason"].startswith(f"{DEGENERATE}: ") and summary.adaptive["stop"] == stop["reason"]
    before = [0.0] + [d["committed_flops"] for d in decisions[:-1]]     # committed when each round was decided
    assert decisions[0]["why"].startswith("pilot - ")                   # no run yet: nothing refitted
    for d, committed in zip(decisions[1:], before[1:]):
        assert d["why"].startswith(f"{DEGENERATE} on ") and committed < LATE_SHARE * s.ladder_budget
    assert decisions[-1]["committed_flops"] >= LATE_SHARE * s.ladder_budget
    assert decisions[-1]["committed_flops"] <= s.ladder_budget


# ---- 2. the why names each run's rule -------------------------------------------------------

def _segments(why: str) -> dict[str, str]:
    """rule -> the text of its segment of a round_why."""
    return dict(part.split(" - ", 1) for part in why.split(" | "))


def test_the_why_groups_each_run_under_the_rule_suggest_gave_it():
    chosen = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "reason": [
        "pilot: IsoFLOP grid at the cheapest budgets around the valley",
        f"{BRACKET_RULES[0]}: cuts var(loss@1e+15) by 30% for 1e+10",
        "pilot: IsoFLOP grid at the cheapest budgets around the valley",
        f"{BRACKET_RULES[2]}: cuts var(loss@1e+15) by 5% for 3e+10"]})
    why = round_why(chosen.itertuples(index=False))
    seg = _segments(why)
    assert list(seg) == ["pilot", BRACKET_RULES[0], BRACKET_RULES[2]]
    assert seg["pilot"] == "a, c (IsoFLOP grid at the cheapest budgets around the valley)"   # one detail, shared
    assert seg[BRACKET_RULES[0]] == "b (cuts var(loss@1e+15) by 30% for 1e+10)"
    assert seg[BRACKET_RULES[2]].startswith("d (cuts var(loss@1e+15) by 5%")


def test_suggest_names_the_rule_past_the_pilot():
    runs = synthetic_ladder(budgets=(1e17, 3e17, 1e18), sizes_per_budget=5)       # 15 runs: the pilot is done
    pool = candidate_pool([1e17, 3e17, 1e18, 3e18], sizes_per_budget=9)
    got = suggest(runs, "chinchilla", pool, 1e21, budget_left=1e19, k=4)
    rules = [r.partition(": ")[0] for r in got.chosen["reason"]]
    assert got.method == "gauss-newton" and rules and set(rules) <= set(BRACKET_RULES)


def test_each_real_round_names_the_rule_of_each_of_its_runs(tmp_path, plan):
    db = tmp_path / "a.db"
    write_plan(plan, db, adaptive=_settings(ladder_budget=2e11, batch=2)).close()
    run_adaptive(db, fake_trainer(db, []), SweepSummary())
    with SweepStore(db, readonly=True) as store:
        decisions = store.decisions()
    seen = {pick["reason"].partition(": ")[0] for d in decisions for pick in d["detail"]["chosen"]}
    assert "pilot" in seen and seen & set(BRACKET_RULES)        # the pilot first, then the design past it
    for d in decisions:
        seg = _segments(d["why"].split("needs no fit. ")[-1])
        for pick in d["detail"]["chosen"]:
            rule = pick["reason"].partition(": ")[0]
            assert rule in {"pilot", "space-filling start", "variance per cost", *BRACKET_RULES}
            assert pick["run_id"] in seg[rule]                  # listed under the rule that picked it
            assert all(pick["run_id"] not in text for other, text in seg.items() if other != rule)


# ---- 3. design suggest --batch ------------------------------------------------------------------

@pytest.fixture(scope="module")
def design_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("design")
    synthetic_ladder(budgets=(1e17, 3e17), sizes_per_budget=4).to_csv(d / "runs.csv", index=False)
    candidate_pool([1e17, 3e17, 1e18], sizes_per_budget=5).to_csv(d / "pool.csv", index=False)
    return d


@pytest.mark.parametrize("old", ["-k", "--k"])
def test_design_suggest_batch_and_its_old_spellings(design_files, old):
    base = ["design", "suggest", str(design_files / "runs.csv"), "--pool", str(design_files / "pool.csv"),
            "--target-budget", "1e21", "--budget-left", "3e18", "--json"]
    runner = CliRunner()
    new = runner.invoke(app, base + ["--batch", "2"])
    assert new.exit_code == 0, new.output
    assert len(json.loads(new.stdout)["chosen"]) == 2 and "deprecated" not in new.stderr
    legacy = runner.invoke(app, base + [old, "2"])
    assert legacy.exit_code == 0, legacy.output
    assert json.loads(legacy.stdout) == json.loads(new.stdout)
    assert legacy.stderr.strip() == f"deprecated: use --batch ({old} is its old spelling, kept for one release)"
    bad = runner.invoke(app, base + ["--batch", "0"])
    assert bad.exit_code == 2 and "--batch" in bad.output and "Traceback" not in bad.output


def test_k_is_only_test_times_pass_at_k():
    from scalinglab.cli.language import PANELS
    assert "-k" not in PANELS and PANELS["--batch"] == PANELS["--ladder-budget"]
    for command in (["design", "suggest"], ["sweep", "plan"]):
        text = " ".join(CliRunner().invoke(app, command + ["--help"]).output.split())
        assert "--batch" in text and "--k " not in text and " -k " not in text
