"""One progress bar for every long loop (bootstrap resamples, rollout fits): rich, on stderr;
and the arithmetic of a training sweep's ETAs, as pure functions of reports and a clock.

A run reports (steps done, steps in all, its loss) as it trains. Its time per step is an
exponential moving average over the reports, each weighted by the steps it covers (half-life:
``EMA_HALFLIFE_FRACTION`` of the run's steps, so evaluations and a busy moment are smoothed out
but a lasting change of speed shows within a tenth of the run); its ETA is the steps left times
that average. The sweep's ETA, when its number of workers is known and a run's speed has been
measured (:func:`schedule_eta`), is the end of a schedule of the work left: each run in flight
ends at its own ETA, each run still to start takes its planned FLOPs over the FLOP/s measured on
runs of its size (interpolated in log size between the runs measured: a ladder's large runs
train at a higher FLOP rate than its small ones) and starts on the first worker free, so a
ladder whose last few runs are large gets the hours those runs take, not a share of the runs
count. Without that (Ray, whose tasks report only when they end), it is the work left (planned
FLOPs of the runs not finished, each scaled by the share of its steps still to do) over the
throughput measured in this sweep (work done since its first report over the time since then, so
concurrent runs count together, and the seconds a sweep spends starting its workers are not
taken for slow training). Both are ``None`` (shown "–") until they can be measured: before a
run's second report, before the sweep has done any work.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

EMA_HALFLIFE_FRACTION = 0.05   # of a run's steps: the half-life of its step-time average


class progress_bar:
    """A rich progress bar on stderr, or a no-op; used as ``with ... as advance``."""

    def __init__(self, enabled: bool, description: str, total: int):
        self.enabled, self.description, self.total = enabled, description, total

    def __enter__(self):
        if not self.enabled:
            return lambda k: None
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                                  console=Console(stderr=True), transient=False)
        self._progress.__enter__()
        task = self._progress.add_task(self.description, total=self.total)
        return lambda k: self._progress.advance(task, k)

    def __exit__(self, *exc):
        if self.enabled:
            self._progress.__exit__(*exc)
        return False


# ---------------------------------------------------------------------- ETA arithmetic

@dataclass(frozen=True)
class RunProgress:
    """Where one run is: ``done`` of ``total`` steps at clock time ``at``; ``step_seconds`` the
    moving average of its time per step (None before two reports), ``loss`` its last training loss."""
    done: int
    total: int
    at: float
    step_seconds: float | None = None
    loss: float | None = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def eta(self) -> float | None:
        return run_eta(self)


def observe(prev: RunProgress | None, done: int, total: int, now: float, loss: float | None = None,
            *, halflife_fraction: float = EMA_HALFLIFE_FRACTION) -> RunProgress:
    """``prev`` advanced by a report of ``done`` of ``total`` steps at time ``now``. A first report,
    or one whose steps went back (the run restarted), measures no speed yet; a report without new
    steps keeps the earlier time, so that the wait counts in the next step-time sample."""
    if prev is None or done < prev.done or total != prev.total:
        return RunProgress(done, total, now, None, loss)
    if done == prev.done or now <= prev.at:
        return replace(prev, loss=loss if loss is not None else prev.loss)
    steps = done - prev.done
    sample = (now - prev.at) / steps
    halflife = max(1.0, halflife_fraction * total)
    alpha = 1.0 - 0.5 ** (steps / halflife)
    average = sample if prev.step_seconds is None else prev.step_seconds + alpha * (sample - prev.step_seconds)
    return RunProgress(done, total, now, average, loss if loss is not None else prev.loss)


def run_eta(progress: RunProgress) -> float | None:
    """Seconds until the run's last step: steps left × the average step time (None until measured)."""
    if progress.step_seconds is None:
        return None
    return max(0, progress.total - progress.done) * progress.step_seconds


def sweep_eta(work_left: float, work_done: float, elapsed: float) -> float | None:
    """Seconds until the sweep ends: the work left at the throughput measured so far
    (``work_done`` in ``elapsed`` seconds); None before any work was measured."""
    if work_done <= 0 or elapsed <= 0:
        return None
    return max(0.0, work_left) * elapsed / work_done


def rate_for_size(work: float, measured: Sequence[tuple[float, float]]) -> float | None:
    """The FLOP/s expected of a run of ``work`` planned FLOPs, from ``measured`` (planned FLOPs,
    FLOP/s) of the runs timed so far: log rate linear in log size between the nearest measured sizes
    below and above, the nearest measured size's rate beyond them; None when none was measured."""
    points = sorted((math.log(w), math.log(r)) for w, r in measured if w > 0 and r > 0)
    if not points:
        return None
    x = math.log(work)
    if x <= points[0][0]:
        return math.exp(points[0][1])
    if x >= points[-1][0]:
        return math.exp(points[-1][1])
    (x0, y0), (x1, y1) = next((a, b) for a, b in zip(points, points[1:]) if a[0] <= x <= b[0])
    return math.exp(y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def schedule_eta(in_flight: Sequence[tuple[float | None, float, float]], pending: Sequence[float],
                 measured: Sequence[tuple[float, float]], workers: int) -> float | None:
    """Seconds until the sweep's last run ends, on ``workers`` workers.

    ``in_flight``: (seconds left as the run measured them or None, planned FLOPs, FLOPs left) of each
    run training now; ``pending``: the planned FLOPs of each run still to start, in launch order;
    ``measured``: (planned FLOPs, FLOP/s) of the runs timed so far. A run without its own ETA takes
    its FLOPs left at :func:`rate_for_size`; each pending run starts on the first worker free.
    None until a rate is known for every run that needs one."""
    slots = []
    for seconds, planned, left in in_flight:
        if seconds is None:
            rate = rate_for_size(planned, measured)
            if rate is None:
                return None
            seconds = max(0.0, left) / rate
        slots.append(max(0.0, seconds))
    slots += [0.0] * max(0, workers - len(slots))
    if not slots:
        return 0.0 if not pending else None
    for planned in pending:
        rate = rate_for_size(planned, measured)
        if rate is None:
            return None
        first_free = min(range(len(slots)), key=slots.__getitem__)
        slots[first_free] += planned / rate
    return max(slots)


@dataclass
class SweepClock:
    """The progress of a sweep's runs, for its ETA. ``work``: each run's planned work (its FLOPs),
    in launch order; ``start``: the clock time the sweep's measurement starts (None: at its first
    report); ``workers``: the runs trained at once (None: unknown, the ETA is the work left at the
    sweep's measured throughput). Every method takes the time ``now`` explicitly."""
    work: dict[str, float]
    start: float | None = None
    workers: int | None = None
    rates: dict[str, float] = field(default_factory=dict)    # FLOP/s each run measured (the last)
    runs: dict[str, RunProgress] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)    # share done when first seen (a resumed run's)
    finished: set[str] = field(default_factory=set)

    def observe(self, run_id: str, done: int, total: int, now: float, loss: float | None = None) -> RunProgress:
        progress = observe(self.runs.get(run_id), done, total, now, loss)
        if self.start is None:
            self.start = now
        self.runs[run_id] = progress
        self.first.setdefault(run_id, progress.fraction)
        if progress.step_seconds and run_id in self.work:
            self.rates[run_id] = self.work[run_id] / (progress.total * progress.step_seconds)
        return progress

    def finish(self, run_id: str, done: bool) -> None:
        """The run ended: ``done`` (all its work is done) or failed (it leaves the work to do)."""
        self.first.setdefault(run_id, 0.0)
        if done:
            prev = self.runs.get(run_id)
            self.runs[run_id] = RunProgress(1, 1, prev.at if prev else 0.0, None, prev.loss if prev else None)
        self.finished.add(run_id)

    def work_done(self) -> float:
        """Work done in this sweep (not before it: a resumed run counts from where it resumed)."""
        return sum(self.work.get(r, 0.0) * (p.fraction - self.first.get(r, 0.0)) for r, p in self.runs.items())

    def work_left(self) -> float:
        return sum(w * (1.0 - (self.runs[r].fraction if r in self.runs else 0.0))
                   for r, w in self.work.items() if r not in self.finished)

    def elapsed(self, now: float) -> float:
        return 0.0 if self.start is None else now - self.start

    def eta(self, now: float) -> float | None:
        if self.workers is None or not self.rates:
            return sweep_eta(self.work_left(), self.work_done(), self.elapsed(now))
        open_runs = [r for r in self.work if r not in self.finished]
        in_flight = [(eta_at(run_eta(self.runs[r]), self.runs[r].at, now), self.work[r],
                      self.work[r] * (1.0 - self.runs[r].fraction)) for r in open_runs if r in self.runs]
        pending = [self.work[r] for r in open_runs if r not in self.runs]
        measured = [(self.work[r], rate) for r, rate in self.rates.items()]
        return schedule_eta(in_flight, pending, measured, self.workers)

    def throughput(self, now: float) -> float | None:
        """Work per second measured so far (FLOP/s when the work is FLOPs); None before any."""
        done, elapsed = self.work_done(), self.elapsed(now)
        return done / elapsed if done > 0 and elapsed > 0 else None


def eta_at(eta_seconds: float | None, measured_at: float | None, now: float) -> float | None:
    """An ETA measured at ``measured_at``, as it stands at ``now`` (the time since counted off, not
    below 0); None when none was measured."""
    if eta_seconds is None or measured_at is None:
        return None
    return max(0.0, eta_seconds - max(0.0, now - measured_at))
