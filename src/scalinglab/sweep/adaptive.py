"""The adaptive sweep: a ladder that designs itself (issue 28, part 3).

A store planned with ``sweep plan --adaptive`` starts with no runs. The IsoFLOP grid that
``plan_sweep`` makes for its corpus and budgets is kept in the store as a *candidate pool*
(``sweep.adaptive.pool``: every candidate's run id, budget and trainable config). Its runner
alternates, round by round:

1. refit on the store's finished runs and ask ``studies.design.suggest`` for the next ``batch``
   candidates that most shrink the target's interval per FLOP, among the untried candidates the
   ladder budget still affords (cost: the exact training FLOPs of the run);
2. record the decision (round, runs, why, the target interval before and expected after) together
   with its runs in ONE transaction (``SweepStore.add_round``), before any of them starts;
3. train them with the sweep's executors (``run_sweep``) and record the interval measured after
   them (the next refit's) as the round's ``actual``;

until the ladder budget is spent (no untried candidate costs what is left) or the target interval
is at most ``stop_width`` wide; the reason is kept in the meta key ``adaptive_stop``.

A degenerate refit (the fit fails, e.g. every start non-finite, or its target interval is not
finite or absurd: a loss at or below 0, or above the worst loss of the ladder although the target
budget is more compute than any run) never drives a suggestion.  Early in the ladder (under
``LATE_SHARE`` of its budget committed) it is expected: a handful of cheap runs can leave the law
unidentified, and spreading runs out is what cures it, so the round falls back to ``suggest``'s
start rule (the pilot or space-filling design, which needs no fit) and its ``why`` says so.  Past
that share, more runs chosen by a broken fit would waste the rest of the budget on a law that does
not describe these runs: the loop stops, the reason ("degenerate refit: ...") in ``adaptive_stop``.

Each round's ``why`` names, for every run, the rule ``suggest`` picked it by (the ``RULE`` of its
"RULE: detail" reason: pilot, space-filling start, variance per cost in the N* bracket, ...). Killed
anywhere, the next ``sweep run`` first trains the runs of a round already decided (a decided round
is never suggested again), then goes on.

The decision is pure (``next_step``: finished runs, pool, what was decided, settings -> a round or
a reason to stop); ``run_adaptive`` does the I/O: it reads the store, calls it, writes, trains.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from scalinglab.util.errors import ParamError

__all__ = ["AdaptiveSettings", "Step", "check_settings", "pool_frame", "next_step", "run_adaptive",
           "adaptive_settings", "STOP_KEY", "ADAPTIVE_RULE", "LATE_SHARE", "DEGENERATE", "degenerate_refit",
           "round_why"]

STOP_KEY = "adaptive_stop"          # meta key: why the loop stopped (JSON {"reason", "round"})
LATE_SHARE = 0.5                    # share of the ladder budget committed past which a degenerate refit stops it
DEGENERATE = "degenerate refit"     # how a decision's why and the stop reason name one
ADAPTIVE_RULE = ("adaptive: the runs are not planned up front; each round refits on the finished runs and "
                 "trains the `batch` candidates of this grid (the pool) that studies.design.suggest expects to "
                 "shrink the target's interval most per FLOP, until the ladder budget is spent or the interval "
                 "is at most the stop width")


@dataclass(frozen=True)
class AdaptiveSettings:
    ladder_budget: float                 # FLOPs (exact count) the ladder may spend in all
    target_budget: float                 # the big run's compute C the interval is for
    stop_width: float | None = None      # stop once the target interval is at most this wide
    batch: int = 4                       # runs suggested (and trained) per round
    law: str = "chinchilla"
    level: float = 0.9
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AdaptiveSettings":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def _positive(name: str, value, *, integer: bool = False) -> None:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
          and value > 0 and (not integer or float(value).is_integer()))
    if not ok:
        kind = "a positive integer" if integer else "a positive, finite number"
        raise ParamError(name, f"{{{name}}} must be {kind}; got {value!r}")


def check_settings(settings: AdaptiveSettings, cheapest: float) -> None:
    """Refuse settings no adaptive sweep can run, naming the parameter; ``cheapest``: the
    exact FLOPs of the pool's cheapest candidate."""
    _positive("ladder_budget", settings.ladder_budget)
    _positive("target_budget", settings.target_budget)
    _positive("batch", settings.batch, integer=True)
    if settings.stop_width is not None:
        _positive("stop_width", settings.stop_width)
    if not (isinstance(settings.level, float | int) and 0 < settings.level < 1):
        raise ParamError("level", f"{{level}} must lie strictly between 0 and 1, e.g. 0.9; got {settings.level!r}")
    from scalinglab.laws import LAWS
    from scalinglab.laws.frontier import check_frontier
    if settings.law not in LAWS:
        raise ParamError("law", f"{{law}} {settings.law!r}: an adaptive ladder refits a registered law by name; "
                         f"choose one of {', '.join(sorted(LAWS))}")
    try:
        check_frontier(LAWS[settings.law], None)
    except ValueError as err:
        raise ParamError("law", f"{{law}} {settings.law!r} cannot plan a target budget: {err}") from None
    if settings.ladder_budget < cheapest:
        raise ParamError("ladder_budget", f"{{ladder_budget}} {settings.ladder_budget:.3g} FLOPs cannot pay for "
                         f"even the cheapest candidate of the pool ({cheapest:.3g} FLOPs); give at least "
                         f"{cheapest:.2g}, or smaller {{budgets}}", also=("budgets",))


def pool_frame(pool: list[dict]):
    """The candidate pool as ``suggest`` reads it: one row per candidate with run_id, budget,
    params (non-embedding N), tokens, flops (6ND, the canonical column) and cost (exact FLOPs)."""
    import pandas as pd
    rows = [{"run_id": c["run_id"], "budget": float(c["budget"]), "params": float(c["config"]["plan"]["params"]),
             "tokens": float(c["config"]["plan"]["tokens"]), "flops": float(c["config"]["plan"]["flops_6nd"]),
             "cost": float(c["config"]["plan"]["flops"])} for c in pool]
    return pd.DataFrame(rows, columns=["run_id", "budget", "params", "tokens", "flops", "cost"])


@dataclass
class Step:
    """What the loop does next: train ``decision``'s runs, or stop for ``stop``. ``interval_now``:
    the target interval on the finished runs (None before any), the last round's ``actual``."""
    decision: dict | None
    stop: str | None
    interval_now: dict | None


def _interval(value) -> dict | None:
    """An interval as the store keeps it, {"low", "high", "width"}, from a (low, high) pair, a
    mapping with low/high, or None (no interval yet: no finished runs)."""
    if value is None:
        return None
    if isinstance(value, dict):
        low, high = value.get("low", value.get("lo")), value.get("high", value.get("hi"))
    else:
        low, high = value
    if low is None or high is None or not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return None
    return {"low": float(low), "high": float(high), "width": float(high) - float(low)}


def _suggestion_intervals(suggestion) -> tuple[dict | None, dict | None]:
    """(the target interval now, the one expected after the chosen runs) of a design Suggestion:
    its first quantity's, the planned loss at the target budget (None before a fit: NaN bounds)."""
    q = suggestion.quantities[0]
    return _interval(suggestion.current[q]), _interval(suggestion.after[q])


def next_step(finished, pool, decided: set[str], committed: float, settings: AdaptiveSettings,
              round_: int, *, suggest: Callable | None = None, interval: Callable | None = None) -> Step:
    """The next round, or why to stop; pure (seeded by ``settings.seed`` and the round).

    finished: the finished runs (canonical columns; None or empty before any), pool: ``pool_frame``,
    decided: run ids already in a round, committed: exact FLOPs of every decided run. The target
    interval is that of the planned loss at ``settings.target_budget`` (``suggest``'s first quantity;
    ``interval``, default ``studies.design.target_interval``, gives it once no candidate is left).
    """
    if suggest is None:
        from scalinglab.studies.design import suggest
    if interval is None:
        from scalinglab.studies.design import target_interval as interval
    left = settings.ladder_budget - committed
    untried = pool[~pool["run_id"].isin(sorted(decided))].reset_index(drop=True)
    affordable = untried[untried["cost"] <= left].reset_index(drop=True)
    runs = finished if finished is not None and len(finished) else None

    def ask(fitted, candidates, budget_left):
        return suggest(fitted, settings.law, candidates, settings.target_budget, budget_left=budget_left,
                       k=int(settings.batch), seed=int(settings.seed) + int(round_), level=settings.level)

    # the refit on the runs so far, and what is wrong with it (None: a sound fit, or too few runs for one)
    now, problem = _refit(runs, settings, interval)
    if not len(affordable):
        # nothing the budget affords: the interval now (the last round's actual), without suggesting
        return Step(None, f"ladder budget spent: {committed:.3g} of {settings.ladder_budget:.3g} FLOPs committed; "
                          f"no untried candidate costs at most the {max(left, 0):.3g} left"
                          + (f"; the last refit is a {DEGENERATE}: {problem}" if problem else ""), now)
    suggestion = None if problem else ask(runs, affordable, left)
    if suggestion is not None:
        now, expected = _suggestion_intervals(suggestion)
        problem = degenerate_refit(now, runs, settings)          # suggest's own refit (its seed), checked alike
    if problem:
        if committed >= LATE_SHARE * settings.ladder_budget:
            return Step(None, f"{DEGENERATE}: {problem}; with {committed / settings.ladder_budget:.0%} of the "
                              f"ladder budget committed (at least {LATE_SHARE:.0%}), more runs chosen from this fit "
                              f"would not mend it: the law does not describe these runs, or they need checking", now)
        suggestion, expected = ask(None, affordable, left), None   # the start rule: pilot / space-filling, no fit
    if runs is not None and not problem and settings.stop_width is not None and now is not None \
            and now["width"] <= settings.stop_width:
        return Step(None, f"target interval {now['width']:.4g} wide, at most the stop width "
                          f"{settings.stop_width:g}", now)
    chosen, spend = [], 0.0
    for row in suggestion.chosen.itertuples(index=False):
        if row.run_id in decided or row.run_id in {c.run_id for c in chosen} or spend + row.cost > left:
            continue
        chosen.append(row)
        spend += float(row.cost)
    if not chosen:
        return Step(None, f"ladder budget spent: no suggested run costs at most the {left:.3g} FLOPs left", now)
    why = round_why(chosen)
    if problem:
        why = (f"{DEGENERATE} on {len(runs)} run(s): {problem}; with {committed / settings.ladder_budget:.0%} of "
               f"the ladder budget committed (under {LATE_SHARE:.0%}) more spread-out runs may identify the law, so "
               f"this round falls back to the start rule, which needs no fit. " + why)
    detail = json.loads(json.dumps(suggestion.to_dict(), default=_plain, allow_nan=True))
    decision = {"round": int(round_), "run_ids": [r.run_id for r in chosen], "why": why, "before": now,
                "expected": expected, "committed_flops": committed + spend, "detail": detail}
    return Step(decision, None, now)


def round_why(chosen) -> str:
    """A round's why: its runs grouped by the rule that picked them (the RULE of each pick's
    "RULE: detail" reason from ``suggest``), each run with its detail; runs sharing a detail share it:
    "pilot - a, b (IsoFLOP grid ...) | variance per cost in the N* bracket - c (cuts ...)"."""
    rules: dict[str, dict[str, list[str]]] = {}
    for r in chosen:
        rule, _, detail = str(r.reason).partition(": ")
        rules.setdefault(rule, {}).setdefault(detail, []).append(str(r.run_id))
    return " | ".join(f"{rule} - " + ", ".join(f"{', '.join(ids)} ({detail})" if detail else ", ".join(ids)
                                              for detail, ids in details.items())
                     for rule, details in rules.items())


def _refit(runs, settings: AdaptiveSettings, interval: Callable) -> tuple[dict | None, str | None]:
    """(the target interval on ``runs``, why the refit is degenerate or None); (None, None) with no runs."""
    if runs is None:
        return None, None
    try:
        now = _interval(next(iter(interval(runs, settings.law, settings.target_budget,
                                           level=settings.level).values())))
    except (ValueError, RuntimeError, ArithmeticError) as err:    # ParamError is a ValueError
        return None, f"the fit of the {len(runs)} run(s) failed: {err}"
    return now, degenerate_refit(now, runs, settings)


def degenerate_refit(now: dict | None, runs, settings: AdaptiveSettings) -> str | None:
    """Why the target interval ``now`` (the planned loss at the target budget, refitted on ``runs``)
    cannot guide a design, or None.  No interval is fine before the law can be fitted (fewer runs
    than it has parameters), degenerate after; an interval is absurd when it reaches a loss <= 0, or
    above the ladder's worst loss although the target budget exceeds every run's compute (along the
    compute-optimal frontier, loss falls as compute grows)."""
    if runs is None:
        return None
    from scalinglab.laws import LAWS
    if now is None:
        if len(runs) < len(LAWS[settings.law].params):
            return None
        return f"the target interval on {len(runs)} run(s) is not finite"
    span = f"the planned loss's interval [{now['low']:.4g}, {now['high']:.4g}] at the target budget"
    if now["low"] <= 0:
        return f"{span} reaches a loss <= 0"
    loss = runs["loss"].to_numpy(dtype=float) if "loss" in runs else None
    flops = runs["flops"].to_numpy(dtype=float) if "flops" in runs else None
    if loss is not None and flops is not None and len(loss) and settings.target_budget >= max(flops) \
            and now["high"] > max(loss):
        return (f"{span} reaches above the worst loss of the ladder ({max(loss):.4g}), though the target budget "
                f"{settings.target_budget:.3g} is more compute than any run (at most {max(flops):.3g} FLOPs)")
    return None


def _plain(value):
    """JSON for the numpy and pandas values a Suggestion's dict may hold."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict(orient="records") if hasattr(value, "columns") else value.to_dict()
    return str(value)


# ---------------------------------------------------------------------- I/O

def adaptive_settings(store) -> dict | None:
    """The store's adaptive block ({"settings", "pool"}), None for a sweep planned up front."""
    block = store.sweep.get("adaptive")
    return block if isinstance(block, dict) else None


def _finished_runs(db: Path):
    from scalinglab.data.store import FINAL_BRANCH, runs_frame
    frame = runs_frame(db)
    return frame[frame["branch"] == FINAL_BRANCH].reset_index(drop=True)


def run_adaptive(db: str | Path, train: Callable[[], object], total, *, suggest: Callable | None = None,
                 interval: Callable | None = None):
    """Drive an adaptive store to its end (module docstring). ``train()`` trains the store's pending
    runs and returns a ``SweepSummary`` (``run_sweep`` passes its executors; tests a fake trainer);
    ``total``: an empty ``SweepSummary`` that gathers them, with ``adaptive``: {"rounds", "stop"}
    once the loop stops. Returns ``total``."""
    from scalinglab.data.store import SweepStore
    db = Path(db)
    while True:
        with SweepStore(db) as store:
            block = adaptive_settings(store)
            counts = store.counts()
        if counts["pending"] or counts["running"]:       # a decided round (maybe a killed one's): finish it
            if _merge(total, train()).interrupted or _left_undone(db):
                return total
        with SweepStore(db) as store:
            decisions = store.decisions()
            records = store.runs()
            done = store.counts()["done"]
        settings = AdaptiveSettings.from_dict(block["settings"])
        pool = pool_frame(block["pool"])
        decided = {r.run_id for r in records}
        committed = float(pool.loc[pool["run_id"].isin(sorted(decided)), "cost"].sum())
        round_ = decisions[-1]["round"] + 1 if decisions else 1
        step = next_step(_finished_runs(db) if done else None, pool, decided, committed, settings, round_,
                         suggest=suggest, interval=interval)
        with SweepStore(db) as store:
            if decisions and decisions[-1]["actual"] is None and step.interval_now is not None:
                store.set_round_actual(decisions[-1]["round"], step.interval_now)
            if step.stop is not None:
                store.set_meta(STOP_KEY, json.dumps({"reason": step.stop, "round": round_ - 1}))
                total.adaptive = {"rounds": round_ - 1, "stop": step.stop}
                total.counts = store.counts()
                return total
            by_id = {c["run_id"]: c for c in block["pool"]}
            store.add_round(step.decision, [by_id[r] for r in step.decision["run_ids"]])


def _left_undone(db: Path) -> bool:
    """Runs still pending after ``train()`` (``max_runs`` stopped it): the loop waits for them."""
    from scalinglab.data.store import SweepStore
    with SweepStore(db, readonly=True) as store:
        return store.counts()["pending"] > 0


def _merge(total, part):
    """Add one ``train()`` call's summary to the loop's."""
    total.done += part.done
    total.failed.update(part.failed)
    total.logs.update(part.logs)
    total.resumed += [r for r in part.resumed if r not in total.resumed]
    total.restarted += part.restarted
    total.warnings += [w for w in part.warnings if w not in total.warnings]
    total.notes += [n for n in part.notes if n not in total.notes]
    total.interrupted = total.interrupted or part.interrupted
    total.counts = part.counts
    total.corpus = part.corpus or total.corpus
    total.jobs, total.threads = part.jobs or total.jobs, part.threads or total.threads
    return part
