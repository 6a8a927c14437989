"""The adaptive sweep (issue 28 part 3): suggest, train, refit, until the ladder budget is spent or
the target interval is narrow enough; every decision persisted before its runs start, so a killed
sweep resumes the round it had decided."""
from __future__ import annotations

import importlib.util
import json
import zlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from scalinglab.data.store import SweepStore
from scalinglab.sweep.adaptive import STOP_KEY, AdaptiveSettings, pool_frame, run_adaptive
from scalinglab.sweep.plan import plan_sweep, write_plan
from scalinglab.sweep.runner import SweepSummary
from scalinglab.util.errors import ParamError
from sweep_helpers import corpus, query, run_cli  # noqa: F401  (corpus: a fixture)

# Hoffmann et al. 2022, eq. 10: L = E + A / N^alpha + B / D^beta
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28
NOISE = 0.01                        # relative, log-normal: the run-to-run spread the fake trainer adds


def chinchilla_loss(params, tokens):
    return E + A / np.asarray(params, float) ** ALPHA + B / np.asarray(tokens, float) ** BETA


def fake_trainer(db, trained: list[str]):
    """``train()`` for run_adaptive: every pending run finishes at the law's loss times seeded noise
    (the seed is the run id, so a run gets the same loss whenever it is trained)."""
    def train():
        summary = SweepSummary()
        with SweepStore(db) as store:
            for run in store.runs("pending"):
                plan = run.config["plan"]
                rng = np.random.default_rng(zlib.crc32(run.run_id.encode()))
                loss = float(chinchilla_loss(plan["params"], plan["tokens"]) * np.exp(NOISE * rng.standard_normal()))
                store.mark_running(run.run_id, "unused")
                store.record_done(run.run_id, [{"tokens": plan["tokens"], "val_loss": loss, "flops": plan["flops"],
                                                "flops_6nd": plan["flops_6nd"], "params": plan["params"]}], [],
                                  wall_seconds=0.0, hardware={})
                trained.append(run.run_id)
                summary.done.append(run.run_id)
            summary.counts = store.counts()
        return summary
    return train


def standin_suggest(runs, law, pool, target, *, budget_left, k=4, seed=0, level=0.9):
    """A stand-in for studies.design.suggest with its contract (a Suggestion's chosen, quantities,
    current, after, to_dict): the k cheapest affordable candidates not yet run; the planned loss's
    interval 1/sqrt(runs) wide around 2.0 (NaN before any run), so a stop width is reached after a
    known number of runs."""
    have = set() if runs is None else set(runs["run_id"])
    free = pool[~pool["run_id"].isin(sorted(have)) & (pool["cost"] <= budget_left)].sort_values("cost")
    chosen = free.head(k).assign(expected_gain=1.0, reason="cheapest untried")

    def interval(n):
        return (np.nan, np.nan) if n == 0 else (2.0 - 0.5 / np.sqrt(n), 2.0 + 0.5 / np.sqrt(n))
    n = 0 if runs is None else len(runs)
    q = "loss@C"
    return SimpleNamespace(chosen=chosen, quantities=[q], current={q: interval(n)},
                           after={q: interval(n + len(chosen))},
                           to_dict=lambda: {"k": k, "seed": seed, "chosen": chosen.to_dict(orient="records")})


def standin_interval(runs, law, target, level=0.9):
    """The stand-in's interval now, as studies.design.target_interval gives it: {quantity: (low, high)}."""
    return standin_suggest(runs, law, pd.DataFrame(columns=["run_id", "cost"]), target, budget_left=0.0).current


@pytest.fixture(scope="module")
def pool_plan():
    """The candidate pool: the IsoFLOP grid `sweep plan` makes for three budgets (built-in corpus): 9 runs."""
    return plan_sweep([3e9, 1e10, 3e10], sizes_per_budget=4)


def _adaptive_store(tmp_path, plan, **settings):
    db = tmp_path / "adaptive.db"
    write_plan(plan, db, adaptive=AdaptiveSettings(**settings)).close()
    return db


def test_the_store_starts_empty_with_the_plan_as_its_pool(tmp_path, pool_plan):
    db = _adaptive_store(tmp_path, pool_plan, ladder_budget=2e10, target_budget=1e15)
    with SweepStore(db, readonly=True) as store:
        assert store.runs() == [] and store.decisions() == []
        pool = pool_frame(store.sweep["adaptive"]["pool"])
    assert sorted(pool["run_id"]) == sorted(r.run_id for r in pool_plan.runs)
    assert np.allclose(pool["cost"], [r.flops for r in pool_plan.runs])


def test_the_loop_stops_when_the_ladder_budget_is_spent(tmp_path, pool_plan):
    ladder = 2.5e10
    db = _adaptive_store(tmp_path, pool_plan, ladder_budget=ladder, target_budget=1e15, batch=2)
    trained = []
    summary = run_adaptive(db, fake_trainer(db, trained), SweepSummary(), suggest=standin_suggest, interval=standin_interval)
    with SweepStore(db, readonly=True) as store:
        decisions, runs = store.decisions(), store.runs()
        stop = store.get_meta(STOP_KEY)
    cost = {r.run_id: r.flops for r in pool_plan.runs}
    spent = sum(cost[r.run_id] for r in runs)
    assert spent <= ladder
    # stopped because nothing untried fits what is left, not earlier
    left = [c for rid, c in cost.items() if rid not in {r.run_id for r in runs}]
    assert not left or min(left) > ladder - spent
    assert "ladder budget spent" in summary.adaptive["stop"] and "ladder budget spent" in stop
    # every decision is recorded, with its runs, and each run was trained once
    assert [d["round"] for d in decisions] == list(range(1, len(decisions) + 1))
    assert sum(len(d["run_ids"]) for d in decisions) == len(runs) == len(trained) == len(set(trained))
    assert all(len(d["run_ids"]) <= 2 and d["why"] for d in decisions)
    assert decisions[0]["before"] is None               # no run yet: no interval
    assert all(d["actual"] is not None for d in decisions)
    # a round's actual interval is the next round's "before"
    for a, b in zip(decisions, decisions[1:]):
        assert a["actual"] == b["before"]


def test_the_loop_stops_at_the_stop_width(tmp_path, pool_plan):
    # the stand-in's width is 1/sqrt(n) after n runs: 0.577 after round 1 (3 runs), 0.408 after
    # round 2 (6 runs), so a stop width of 0.5 stops the loop after round 2, with pool to spare
    assert len(pool_plan.runs) > 6
    db = _adaptive_store(tmp_path, pool_plan, ladder_budget=1e12, target_budget=1e15, batch=3, stop_width=0.5)
    summary = run_adaptive(db, fake_trainer(db, []), SweepSummary(), suggest=standin_suggest, interval=standin_interval)
    with SweepStore(db, readonly=True) as store:
        decisions = store.decisions()
    assert len(decisions) == 2 and summary.adaptive["rounds"] == 2
    assert "stop width" in summary.adaptive["stop"]
    assert decisions[0]["actual"]["width"] == pytest.approx(1 / np.sqrt(3))
    assert decisions[-1]["actual"]["width"] == pytest.approx(1 / np.sqrt(6))


def test_a_killed_round_is_resumed_not_re_decided(tmp_path, pool_plan):
    db = _adaptive_store(tmp_path, pool_plan, ladder_budget=2.5e10, target_budget=1e15, batch=2)
    trained = []
    real = fake_trainer(db, trained)
    calls = {"n": 0}

    class Killed(BaseException):
        pass

    def dies_in_round_2():
        calls["n"] += 1
        if calls["n"] == 2:             # round 2 is decided and written; kill before it trains
            raise Killed
        return real()

    with pytest.raises(Killed):
        run_adaptive(db, dies_in_round_2, SweepSummary(), suggest=standin_suggest, interval=standin_interval)
    with SweepStore(db, readonly=True) as store:
        before_kill = store.decisions()
        pending = [r.run_id for r in store.runs("pending")]
    assert len(before_kill) == 2 and pending == before_kill[1]["run_ids"]

    asked = []

    def counting_suggest(*args, **kwargs):
        asked.append(kwargs["seed"])
        return standin_suggest(*args, **kwargs)

    run_adaptive(db, real, SweepSummary(), suggest=counting_suggest, interval=standin_interval)
    with SweepStore(db, readonly=True) as store:
        after = store.decisions()
        runs = store.runs()
    # round 2 kept its runs and reason; no round was decided twice; no run lost or trained twice
    assert after[1]["run_ids"] == before_kill[1]["run_ids"] and after[1]["why"] == before_kill[1]["why"]
    assert [d["round"] for d in after] == list(range(1, len(after) + 1))
    assert len(trained) == len(set(trained)) == len(runs) == sum(len(d["run_ids"]) for d in after)
    assert all(r.status == "done" for r in runs)
    assert 2 not in asked                               # the seed of round 2: it was never asked again


def test_bad_settings_are_refused_naming_the_parameter(tmp_path, pool_plan):
    cheapest = min(r.flops for r in pool_plan.runs)
    with pytest.raises(ParamError, match="ladder_budget") as err:
        _adaptive_store(tmp_path, pool_plan, ladder_budget=cheapest / 2, target_budget=1e15)
    assert err.value.param == "ladder_budget"
    with pytest.raises(ParamError, match="batch"):
        _adaptive_store(tmp_path, pool_plan, ladder_budget=1e11, target_budget=1e15, batch=0)
    with pytest.raises(ParamError, match="stop_width"):
        _adaptive_store(tmp_path, pool_plan, ladder_budget=1e11, target_budget=1e15, stop_width=-1.0)
    assert not (tmp_path / "adaptive.db").exists()


def test_status_and_report_show_every_round(tmp_path, pool_plan):
    from scalinglab.report.document import store_decisions
    from scalinglab.report.html import _decisions
    db = _adaptive_store(tmp_path, pool_plan, ladder_budget=2.5e10, target_budget=1e15, batch=2)
    run_adaptive(db, fake_trainer(db, []), SweepSummary(), suggest=standin_suggest, interval=standin_interval)
    with SweepStore(db, readonly=True) as store:
        decisions = store.decisions()
    code, out = run_cli("sweep", "status", db, "--json", cwd=tmp_path)
    assert code == 0, out
    shown = json.loads(out)
    assert shown["decisions"] == decisions and "ladder budget spent" in shown["adaptive_stop"]["reason"]
    code, out = run_cli("sweep", "status", db, cwd=tmp_path)
    assert code == 0 and "stopped: after round" in out, out
    assert all(f"round {d['round']} why: " in out for d in decisions)
    html = _decisions(store_decisions(db))
    assert all(rid in html for d in decisions for rid in d["run_ids"])


@pytest.mark.parametrize("args, message", [
    (["--ladder-budget", "1e10"], "--ladder-budget: only for an adaptive ladder"),
    (["--adaptive", "--ladder-budget", "1e10"], "--adaptive needs --target-budget"),
    (["--adaptive", "--ladder-budget", "1e3", "--target-budget", "1e15"], "--ladder-budget 1e+03 FLOPs cannot pay"),
    (["--adaptive", "--ladder-budget", "1e11", "--target-budget", "1e15", "--law", "power_n"], "--law 'power_n'"),
])
def test_adaptive_options_are_checked_naming_the_option(tmp_path, args, message):
    code, out = run_cli("sweep", "plan", "--budgets", "3e9", "-o", tmp_path / "x.db", *args, cwd=tmp_path)
    assert code == 2 and message in " ".join(out.split()) and "Traceback" not in out, out
    assert not (tmp_path / "x.db").exists()


HAVE_DESIGN = importlib.util.find_spec("scalinglab.studies.design") is not None


@pytest.mark.skipif(not HAVE_DESIGN, reason="studies.design (issue 28 part 1) is not in this tree")
def test_the_real_design_drives_the_loop_within_the_ladder_budget(tmp_path, pool_plan):
    ladder = 4e10
    db = _adaptive_store(tmp_path, pool_plan, ladder_budget=ladder, target_budget=1e15, batch=3)
    summary = run_adaptive(db, fake_trainer(db, []), SweepSummary())
    with SweepStore(db, readonly=True) as store:
        decisions, runs = store.decisions(), store.runs()
    cost = {r.run_id: r.flops for r in pool_plan.runs}
    assert decisions and sum(cost[r.run_id] for r in runs) <= ladder
    assert summary.adaptive["stop"]
    assert all(d["actual"] is not None for d in decisions[1:])


@pytest.mark.skipif(importlib.util.find_spec("torch") is None or not HAVE_DESIGN,
                    reason="needs torch (the trainer) and studies.design")
def test_a_real_tiny_cpu_sweep_with_adaptive(tmp_path, corpus):  # noqa: F811
    db = tmp_path / "a.db"
    code, out = run_cli("sweep", "plan", "--adaptive", "--budgets", "1e9,3e9", "--sizes-per-budget", "2",
                        "--corpus", corpus, "--ladder-budget", "1e10", "--target-budget", "1e13", "--batch", "2",
                        "-o", db, cwd=tmp_path)
    assert code == 0, out
    code, out = run_cli("sweep", "run", db, "--no-progress", cwd=tmp_path, timeout=120)
    assert code == 0, out
    rounds = query(db, "SELECT round, run_ids FROM decisions ORDER BY round")
    done = {r[0] for r in query(db, "SELECT run_id FROM runs WHERE status = 'done'")}
    assert rounds and done and all(rid in done for _, ids in rounds for rid in json.loads(ids))
    code, out = run_cli("sweep", "status", db, cwd=tmp_path)
    assert code == 0 and "round" in out and "stopped" in out, out
