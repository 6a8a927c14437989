"""Drive a stored sweep to completion: every pending run trained once, results written once.

``run_sweep(db)`` is safe to call again after anything — Ctrl-C, SIGKILL, a crashed worker:
runs a killed sweep left ``running`` go back to ``pending`` and resume from their checkpoint
(``<db>.d/runs/<run_id>/ckpt.pt``), and a run's points and ``status='done'`` are written in one
transaction, so no run is recorded twice or half. A diverged run is marked failed with the
trainer's reason, a crashing one with a one-line cause (its full traceback goes to the run's log,
``<workdir>/worker.log``); the sweep goes on either way. The device and the corpus are checked
before any run starts, so a sweep that cannot train fails once, clearly, instead of once per run.

Corpus: ``corpus`` if given, else the one the sweep was planned with, else the built-in default
(the Python sources installed with this interpreter, byte tokenizer, capped at
``DEFAULT_CORPUS_BYTES`` = 10 MB so it is prepared in seconds) written once to ``<db>.d/corpus.bin``.

A run is bound to its inputs: when it starts, the store records the fingerprints of its corpus and
config (``train/fingerprint.py``). A later ``run_sweep`` whose corpus (or a run's config) differs
from what any run of the store was started with is refused before anything trains, naming both
fingerprints and the ways out: the original corpus, ``restart=[run ids]`` (those runs forget what
they recorded and their checkpoints, and train again from scratch), or a new store.

An adaptive store (``sweep plan --adaptive``) is driven round by round by ``sweep/adaptive.py``:
each round's runs are trained by the same code, one ``_run`` per round.
"""
from __future__ import annotations

import os
import sqlite3
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from scalinglab.data.store import LOG_NAME, StoreError, SweepStore, pid_alive, store_error_message
from scalinglab.util.formatting import fmt_eta
from scalinglab.util.progress import RunProgress, SweepClock
from scalinglab.util.storage import storage_problem
from scalinglab.util.errors import ParamError, ParamText
from scalinglab.util.records import Record

__all__ = ["run_sweep", "SweepSummary", "sweep_dir", "default_corpus", "DEFAULT_CORPUS_BYTES"]

DEFAULT_CORPUS_BYTES = 10_000_000
PROGRESS_EVERY = 2.0          # seconds between the progress writes to the store (and always when a run ends)
_EXECUTORS = ("local", "ray")


@dataclass
class SweepSummary(Record):
    done: list[str] = field(default_factory=list)       # finished in this call
    failed: dict[str, str] = field(default_factory=dict)   # run_id -> reason, in this call
    logs: dict[str, str] = field(default_factory=dict)     # run_id -> its log file, for failed runs
    resumed: list[str] = field(default_factory=list)    # left running by a killed sweep
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)   # the store's totals afterwards
    corpus: str = ""
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)       # e.g. inputs recorded for runs of an older store
    restarted: list[str] = field(default_factory=list)   # discarded and pending again (``restart``)
    jobs: int | None = None              # runs trained at once (``jobs="auto"`` resolved)
    threads: int | None = None           # threads of each CPU run (None on CUDA)
    adaptive: dict | None = None         # an adaptive sweep's end: {"rounds", "stop"} (sweep/adaptive.py)


def sweep_dir(db_path: str | Path) -> Path:
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".d")


def default_corpus(db_path: str | Path) -> Path:
    """The built-in corpus for this sweep, prepared once into ``<db>.d/corpus.bin``."""
    from scalinglab.train.corpus import load_corpus_info, prepare_corpus
    out = sweep_dir(db_path) / "corpus.bin"
    try:
        load_corpus_info(out)
        return out
    except ValueError:                    # missing or half-written (killed mid-prepare): redo
        out.parent.mkdir(parents=True, exist_ok=True)
        prepare_corpus(None, out, max_bytes=DEFAULT_CORPUS_BYTES, val_fraction=0.02)
        return out


_pid_alive = pid_alive             # (moved to the store, which also needs it)


def run_sweep(db_path: str | Path, *, executor: str = "local", corpus: str | Path | None = None,
              workdir: str | Path | None = None, max_runs: int | None = None, progress: bool = True,
              address: str | None = None, retry_failed: bool = False, device: str = "auto",
              threads: int = 1, jobs: int | str = "auto", restart: Iterable[str] = ()) -> SweepSummary:
    """Train every pending run of the sweep store ``db_path``; see the module docstring.

    executor: "local" (child processes) or "ray" (one task per run; ``address`` of a cluster, else
    a local Ray). workdir: where run checkpoints go (default ``<db>.d/runs``). max_runs: stop after
    this many runs. retry_failed: put failed runs back to pending first. threads: torch CPU
    threads per run (1 is fastest for these small models), never more than the run's fair share
    of the cores, ``max(1, cores // jobs)`` (a warning says when it is lowered). jobs: CPU runs
    trained at once by the local executor, each in its own worker process; "auto" (the default):
    as many as the cores hold at ``threads`` each, at most one per pending run
    (``executors.resolve_jobs``); runs on CUDA go one per GPU whatever ``jobs`` says. While it
    trains, each run's step, loss and ETA and the sweep's ETA are shown (``progress``) and written
    to the store's progress table every ``PROGRESS_EVERY`` seconds (``sweep status`` shows them).
    KeyboardInterrupt stops cleanly: the runs in flight (all of
    them) go back to pending and ``summary.interrupted`` is True. restart: run ids to train again
    from scratch (what they recorded and their checkpoints are discarded first). A read-only store or
    a full disk is refused as such (StoreError).
    """
    if executor not in _EXECUTORS:
        raise ValueError(f"--executor must be one of {', '.join(_EXECUTORS)}; got {executor!r}")
    if max_runs is not None and max_runs < 1:
        raise ValueError(f"--max-runs must be a positive integer; got {max_runs}")
    if threads < 1:
        raise ValueError(f"--threads must be a positive integer; got {threads}")
    from scalinglab.sweep.executors import AUTO, check_device, cpu_count, gpu_count, resolve_jobs
    if jobs != AUTO and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"--jobs must be a positive integer (runs trained at once on CPU) or {AUTO} "
                         f"(as many as the cores hold); got {jobs}")
    if executor == "ray" and jobs != AUTO and jobs > 1:
        raise ValueError("--jobs is for --executor local; with --executor ray the cluster's CPUs and GPUs "
                         "decide how many runs train at once")
    device = check_device(device, executor=executor)    # before any run: not one failure per run
    on_cpu = device == "cpu" or (device == "auto" and gpu_count() == 0)
    run_warnings: list[str] = []
    if executor == "local" and on_cpu:
        cores, asked = cpu_count(), threads
        _, threads = resolve_jobs(jobs, threads, cores=cores)
        if threads < asked:
            run_warnings.append(f"--threads {asked} with --jobs {jobs} on {cores} core(s): each run gets "
                                f"{threads} thread(s), its share of the cores, so the runs do not "
                                "oversubscribe them")
    elif executor == "local" and jobs != AUTO and jobs > 1:
        run_warnings.append(f"--jobs {jobs} is for CPU runs; these runs train on CUDA, one per GPU")
    db_path = Path(db_path)
    restart = list(dict.fromkeys([restart] if isinstance(restart, str) else restart))
    try:
        def train() -> SweepSummary:
            return _run(db_path, executor=executor, corpus=corpus, workdir=workdir, max_runs=max_runs,
                        progress=progress, address=address, retry_failed=retry_failed, device=device,
                        threads=threads, parallel=jobs, on_cpu=on_cpu, run_warnings=run_warnings, restart=restart)

        if _is_adaptive(db_path):         # suggest, train, refit, ... (sweep/adaptive.py)
            from scalinglab.sweep.adaptive import run_adaptive
            return run_adaptive(db_path, train, SweepSummary())
        return train()
    except sqlite3.DatabaseError as exc:
        raise StoreError(store_error_message(db_path, exc)) from None
    except OSError as exc:
        kind = storage_problem(exc)
        if kind is None or exc.filename is None:
            raise
        raise StoreError(f"{exc.filename}: {kind} ({exc.strerror}); `scalinglab sweep run {db_path}` writes "
                         f"checkpoints and logs beside the store ({sweep_dir(db_path)}, or --workdir): "
                         + ("free space there and run it again; finished runs stay recorded" if kind == "disk full"
                            else "run it where that is writable")) from None


def _is_adaptive(db_path: Path) -> bool:
    from scalinglab.sweep.adaptive import adaptive_settings
    with SweepStore(db_path, readonly=True) as store:
        return adaptive_settings(store) is not None


def _run(db_path: Path, *, executor, corpus, workdir, max_runs, progress, address, retry_failed, device,
         threads, parallel, on_cpu, run_warnings, restart) -> SweepSummary:
    store = SweepStore(db_path)
    summary = SweepSummary()
    runs_dir = Path(workdir) if workdir is not None else sweep_dir(db_path) / "runs"
    try:
        _claim(store)
        unknown = [r for r in restart if r not in {run.run_id for run in store.runs()}]
        if unknown:
            raise ParamError("restart", ParamText(f"{{restart}}: sweep store {db_path} has no run {unknown[0]!r}; "
                                                  f"`scalinglab sweep status {db_path}` lists its runs",
                                                  restart=unknown[0]))
        summary.resumed = store.reset_running()
        if retry_failed:
            store.reset_failed()
        for run_id in restart:
            _discard_run(store, run_id, runs_dir)
        summary.restarted = restart
        runs = store.runs("pending")
        if max_runs is not None:
            runs = runs[:max_runs]
        if not runs:                      # nothing to train: do not prepare a corpus for it
            summary.counts = store.counts()
            return summary
        corpus_path = _resolve_corpus(db_path, store, corpus, runs)
        inputs, summary.notes = _bind_inputs(store, runs, corpus_path)
        summary.corpus = str(corpus_path)
        summary.warnings = run_warnings + _repetition_warnings(runs, corpus_path)
        for message in summary.warnings:
            warnings.warn(message, UserWarning, stacklevel=2)
        jobs = [{"run_id": r.run_id, "config": r.config["train"], "corpus": str(corpus_path.resolve()),
                 "workdir": str((runs_dir / r.run_id).resolve()), "device": device, "threads": threads}
                for r in runs]
        from scalinglab.sweep.executors import AUTO, resolve_jobs
        if executor == "local":
            summary.jobs = (resolve_jobs(parallel, threads, runs=len(runs))[0] if on_cpu
                            else 1 if parallel == AUTO else parallel)      # (on CUDA: one run per GPU)
            summary.threads = threads if on_cpu else None
        if executor == "ray":
            from scalinglab.sweep.executors import RayExecutor
            runner = RayExecutor(address)
        else:
            from scalinglab.sweep.executors import LocalExecutor
            runner = LocalExecutor(threads=threads, jobs=summary.jobs, cpu=on_cpu)
        # work: the planned FLOPs, in launch order; timed from the first progress report (Ray tasks send
        # none: from now, and the ETA is the work left at the sweep's throughput, its workers unknown)
        clock = SweepClock({r.run_id: r.budget for r in runs}, start=time.monotonic() if executor == "ray" else None,
                           workers=summary.jobs if executor == "local" else None)
        tracker = _Tracker(store, clock)
        how = (f"{summary.jobs} at a time, {threads} thread(s) each" if executor == "local" and on_cpu
               else "one per GPU" if executor == "local" else "on Ray")
        display = _Display(len(jobs), f"runs ({how})", enabled=progress,
                           per_run=executor == "local")    # Ray tasks report only when they finish

        workdirs = {j["run_id"]: Path(j["workdir"]) for j in jobs}

        def on_start(job):
            store.mark_running(job["run_id"], job["workdir"], inputs[job["run_id"]])
            display.start(job["run_id"])

        def on_event(run_id, event):
            if event.get("type") == "progress":
                display.update(run_id, tracker.observe(run_id, event), clock.eta(time.monotonic()))

        def log_failure(run_id: str, outcome: dict) -> None:
            log = workdirs[run_id] / LOG_NAME
            summary.logs[run_id] = str(log)
            text = outcome.get("traceback")
            if not text:
                return
            try:
                log.parent.mkdir(parents=True, exist_ok=True)
                with open(log, "a") as fh:
                    fh.write(f"--- run {run_id} {outcome['status']}: {outcome['message']}\n{text.rstrip()}\n")
            except OSError:               # a log we cannot write must not stop the sweep
                pass

        def on_outcome(outcome):
            run_id, status = outcome["run_id"], outcome["status"]
            if status == "done":
                store.record_done(run_id, outcome["points"], outcome["curve"],
                                  wall_seconds=outcome["wall_seconds"], hardware=outcome["hardware"])
                summary.done.append(run_id)
            elif status == "interrupted":
                store.mark_pending(run_id)
            else:
                message = " ".join(str(outcome["message"]).split())      # one line in the store
                reason = f"diverged: {message}" if status == "diverged" else f"crashed: {message}"
                log_failure(run_id, outcome)
                store.record_failed(run_id, reason, wall_seconds=outcome["wall_seconds"],
                                    hardware=outcome["hardware"] or None)
                summary.failed[run_id] = reason
            tracker.finish(run_id, status)
            display.finish(run_id, status, clock.eta(time.monotonic()))

        with display:
            try:
                runner.run(jobs, on_start=on_start, on_event=on_event, on_outcome=on_outcome)
            except KeyboardInterrupt:
                summary.interrupted = True
                store.reset_running()
        summary.counts = store.counts()
        return summary
    finally:
        _release(store)
        store.close()


def _discard_run(store: SweepStore, run_id: str, runs_dir: Path) -> None:
    """``restart``: the run forgets what it recorded and loses its checkpoints (its log stays,
    with a line saying so), so that it trains again from scratch."""
    recorded = store.restart_run(run_id)
    for folder in {Path(p).resolve() for p in (recorded, runs_dir / run_id) if p}:
        if not folder.is_dir():
            continue
        for item in folder.iterdir():
            if item.is_file() and item.name != LOG_NAME:
                item.unlink()
        with open(folder / LOG_NAME, "a") as log:
            log.write(f"--- run {run_id} restarted from scratch (restart): its checkpoints were discarded\n")


def _bind_inputs(store: SweepStore, pending, corpus_path: Path) -> tuple[dict[str, dict], list[str]]:
    """The input fingerprints to record for each run about to train, and notes; refuses (StoreError)
    when any run of the store was started with another corpus, or its config changed since."""
    from scalinglab.train.fingerprint import config_fingerprint, corpus_fingerprint, short
    corpus_fp = corpus_fingerprint(corpus_path)
    everything = store.runs()
    config_fp = {r.run_id: config_fingerprint(r.config["train"]) for r in everything}
    recorded = store.run_inputs()
    conflicts = []
    for r in everything:
        had = recorded.get(r.run_id)
        if had is None:
            continue
        if had.get("corpus") != corpus_fp:
            conflicts.append((r.run_id, "corpus", had.get("corpus"), had.get("corpus_path")))
        elif had.get("config") != config_fp[r.run_id]:
            conflicts.append((r.run_id, "config", had.get("config"), None))
    if conflicts:
        raise StoreError(_conflict_message(store.path, conflicts, corpus_path, corpus_fp, config_fp))
    inputs = {r.run_id: {"corpus": corpus_fp, "config": config_fp[r.run_id],
                         "corpus_path": str(corpus_path.resolve())} for r in pending}
    older = [r.run_id for r in pending if r.attempts > 0 and r.run_id not in recorded]
    notes = []
    if older:
        notes.append(f"{len(older)} run(s) ({_some(older)}) were started by a scalinglab that did not record a "
                     f"run's inputs: whether they began on this corpus cannot be checked; from now on they are "
                     f"bound to corpus {short(corpus_fp)} ({corpus_path}) and their configs")
    return inputs, notes


def _some(ids: list[str], n: int = 3) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def _conflict_message(path: Path, conflicts, corpus_path: Path, corpus_fp: str, config_fp: dict) -> str:
    from scalinglab.train.fingerprint import short
    ids = [c[0] for c in conflicts]
    run_id, kind, theirs, their_path = conflicts[0]
    if kind == "corpus":
        head = (f"run {run_id} was started with corpus {short(theirs)} ({their_path or 'path not recorded'}), but "
                f"this `sweep run` would train with corpus {short(corpus_fp)} ({corpus_path})")
    else:
        head = (f"run {run_id} was started with config {short(theirs)}, but the store now gives it config "
                f"{short(config_fp[run_id])} (its settings were changed after it started)")
    others = f"; so were {_some(ids[1:], 5)}" if len(ids) > 1 else ""
    back = (ParamText("give the corpus it was started with ({corpus}); or ", corpus=str(their_path))
            if kind == "corpus" and their_path else "")
    restart = ParamText.join(" ", [ParamText("{restart}", restart=i) for i in ids])
    return (f"sweep store {path}: {head}{others}. Going on would mix two {kind}s in one sweep, so nothing "
            f"was trained. The way out: " + back + restart + " "
            f"discards what {'that run' if len(ids) == 1 else 'those runs'} recorded and "
            f"{'its' if len(ids) == 1 else 'their'} checkpoints and trains {'it' if len(ids) == 1 else 'them'} "
            f"again from scratch; or plan a new store for the new {kind} (`scalinglab sweep plan ... -o NEW.db`)")


def _claim(store: SweepStore) -> None:
    """One driver per store: refuse while another live process is running this sweep."""
    owner = store.get_meta("runner_pid")
    if owner and int(owner) != os.getpid() and _pid_alive(int(owner)):
        raise ValueError(f"sweep store {store.path} is being run by process {owner}; wait for it or stop "
                         "it (Ctrl-C) before starting another `scalinglab sweep run`")
    store.set_meta("runner_pid", str(os.getpid()))


def _release(store: SweepStore) -> None:
    try:
        if store.get_meta("runner_pid") == str(os.getpid()):
            store.set_meta("runner_pid", "")
    except Exception:  # never mask the real error on the way out
        pass


def _resolve_corpus(db_path: Path, store: SweepStore, corpus, runs) -> Path:
    from scalinglab.train.corpus import check_trainable, load_corpus_info
    planned = store.sweep.get("settings", {}).get("corpus")
    label = "--corpus" if corpus is not None else "the sweep's corpus" if planned else "the built-in corpus"
    if corpus is None and planned:
        corpus = planned
    path = Path(corpus) if corpus is not None else default_corpus(db_path)
    info = load_corpus_info(path)          # a clear error naming the file when it is not a corpus
    # too small for one sequence: refused here, once, instead of crashing every run
    check_trainable(info, max(int(r.config["train"]["seq_len"]) for r in runs), option=label)
    too_big = [r.run_id for r in runs if r.config["train"]["shape"]["vocab_size"] < info.vocab_size]
    if too_big:
        raise ValueError(f"--corpus {path}: its vocabulary ({info.vocab_size}) is larger than the planned "
                         f"models' ({too_big[0]} and {len(too_big) - 1} more); plan the sweep with "
                         f"--corpus {path} so the models get its vocabulary")
    return path


def _repetition_warnings(runs, corpus: Path) -> list[str]:
    from scalinglab.train.corpus import load_corpus_info
    info = load_corpus_info(corpus)
    over = [(r.config["train"]["tokens"] / info.n_train, r.run_id) for r in runs
            if r.config["train"]["tokens"] > info.n_train]
    if not over:
        return []
    epochs, run_id = max(over)
    return [f"{len(over)} run(s) repeat the corpus {corpus} ({info.n_train:,} training tokens), up to "
            f"{epochs:.2f} epochs ({run_id}); repeated tokens are worth less than fresh ones "
            "(Muennighoff et al. 2023); give a larger --corpus for data-unconstrained points"]


class _Tracker:
    """The sweep's clock, fed by the runs' progress events, written to the store at most every
    ``PROGRESS_EVERY`` seconds and whenever a run ends (so ``sweep status`` shows where it is)."""

    def __init__(self, store: SweepStore, clock: SweepClock, now=time.monotonic):
        self.store, self.clock, self.now = store, clock, now
        self.unsaved: dict[str, RunProgress] = {}
        self.saved_at: float | None = None

    def observe(self, run_id: str, event: dict) -> RunProgress:
        now = self.now()
        loss = event.get("train_loss")
        progress = self.clock.observe(run_id, int(event["steps_done"]), int(event["steps_total"]), now,
                                      None if loss is None else float(loss))
        self.unsaved[run_id] = progress
        if self.saved_at is None or now - self.saved_at >= PROGRESS_EVERY:
            self.save(now)
        return progress

    def finish(self, run_id: str, status: str) -> None:
        if status != "interrupted":
            self.clock.finish(run_id, status == "done")
        self.save(self.now())

    def save(self, now: float) -> None:
        runs = {r: {"steps_done": p.done, "steps_total": p.total, "train_loss": p.loss,
                    "step_seconds": p.step_seconds, "eta_seconds": p.eta} for r, p in self.unsaved.items()}
        self.store.record_progress(runs, {"eta_seconds": self.clock.eta(now),
                                          "flops_per_second": self.clock.throughput(now)})
        self.unsaved.clear()
        self.saved_at = now


def run_info(progress: RunProgress) -> str:
    """A run's loss and ETA as the progress display shows them ("–" until measured)."""
    loss = "–" if progress.loss is None else f"{progress.loss:.4f}"
    return f"loss {loss}  ETA {fmt_eta(progress.eta)}"


class _Display:
    """Rich progress: the runs overall with the sweep's ETA, and each run in flight with its
    step (of its steps), its loss and its ETA."""

    def __init__(self, n_runs: int, description: str, enabled: bool, per_run: bool = True):
        self.enabled, self.tasks, self.per_run = enabled, {}, per_run
        if not enabled:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), transient=False)
        self.overall = self.progress.add_task(description, total=n_runs, info=f"ETA {fmt_eta(None)}")

    def __enter__(self):
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()

    def start(self, run_id: str) -> None:
        if self.enabled and self.per_run:
            self.tasks[run_id] = self.progress.add_task(f"  {run_id} step", total=None,
                                                        info=f"loss –  ETA {fmt_eta(None)}")

    def update(self, run_id: str, progress: RunProgress, sweep_eta: float | None) -> None:
        if not self.enabled:
            return
        if run_id in self.tasks:
            self.progress.update(self.tasks[run_id], completed=progress.done, total=progress.total,
                                 info=run_info(progress))
        self.progress.update(self.overall, info=f"ETA {fmt_eta(sweep_eta)}")

    def finish(self, run_id: str, status: str, sweep_eta: float | None) -> None:
        if not self.enabled:
            return
        task = self.tasks.pop(run_id, None)
        if task is not None:
            self.progress.remove_task(task)
        if status != "interrupted":
            self.progress.advance(self.overall)
            self.progress.update(self.overall, info=f"ETA {fmt_eta(sweep_eta)}")
            if status != "done":
                self.progress.console.print(f"[red]{run_id}: {status}[/red]")
