"""Where a sweep's runs are trained: local child processes, or one Ray task per run.

A *job* is a plain dict: run_id, config (a ``arch.config.TrainConfig`` as JSON: ``TrainConfig.from_dict``),
corpus, workdir, device, threads. Every executor turns jobs into *outcomes*, plain dicts:

    {"run_id", "status": "done" | "diverged" | "crashed" | "interrupted", "points", "curve",
     "wall_seconds", "hardware", "message"}

and hands them to the driver (``runner.run_sweep``), which alone writes the store. Training
resumes from ``workdir`` (the trainer's checkpoint), so a run cut short anywhere starts again
where it stopped. torch is imported only in the process that trains; ray only in ``RayExecutor``.

A crashed run's ``message`` is ONE line (the exception's type and message); its full traceback
travels in the outcome's ``traceback`` field, which the driver appends to the run's log
``workdir/worker.log``; nothing of it goes to the terminal.

Local: each run is a child process ``python -m scalinglab.sweep.executors`` reading its job as
JSON on stdin and writing events as JSON lines (prefixed ``@@scalinglab``) on stdout; its stderr
goes to ``workdir/worker.log``. On CPU, ``jobs`` children at a time (``sweep run --jobs K``,
default auto: as many as the cores hold, ``resolve_jobs``), each limited to ``threads`` threads
(``OMP_NUM_THREADS``, ``torch.set_num_threads`` and threadpoolctl for the BLAS and OpenMP pools;
see ``cpu_threads``) so K runs share the cores instead of
oversubscribing them; with several GPUs, one child per GPU (``CUDA_VISIBLE_DEVICES``). Children stay in
the sweep's process group, so a kill of the group stops them too, and a child whose parent died
exits at its next event instead of training on unobserved. The next run's child is started while
the current one trains (a warm spare), so its torch import is off the critical path.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Callable, Iterable

__all__ = ["train_job", "LocalExecutor", "RayExecutor", "gpu_count", "worker_main", "EVENT_PREFIX",
           "check_device", "DEVICES", "one_line", "cpu_count", "cpu_threads", "resolve_jobs", "AUTO",
           "worker_env", "MALLOC_TUNING"]

EVENT_PREFIX = "@@scalinglab "
_MAX_MESSAGE = 2000                 # characters of a one-line cause kept in the store
DEVICES = "auto (CUDA when available, else cpu), cpu, cuda or cuda:N"
# glibc malloc in a worker: keep freed memory for the next step. A small model's step allocates and
# frees the same few MB of activations and gradients; by default glibc hands them back to the OS
# (mmap/munmap, heap trimming) and page-faults them in again each step: ~80% of a tiny CPU run's
# page faults and most of its system time (benchmarks/RESULTS.md, "Trainer overhead on tiny
# models"). Where memory comes from changes no arithmetic: the losses are the same bits (measured
# there, with the curves and noise columns). 32 MiB is glibc's largest
# mmap threshold; other C libraries ignore these variables, and a value the user set is kept.
MALLOC_TUNING = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(128 << 20)}


def one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    """``text`` with every run of whitespace (newlines included) made one space, capped."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _cause(exc: BaseException) -> str:
    """An exception as the one-line cause of a failed run: ``Type: message``, after "disk full: ",
    "read-only: " or "permission denied: " when it is one of those."""
    from scalinglab.util.storage import storage_problem
    message = one_line(str(exc))
    cause = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    kind = storage_problem(exc) if isinstance(exc, OSError) else None
    return f"{kind}: {cause}" if kind else cause          # "disk full: OSError: [Errno 28] ..."


# ---------------------------------------------------------------------- devices

def check_device(device: str, *, executor: str = "local") -> str:
    """Refuse (ValueError naming --device) a device this machine cannot train on, before any run.

    Valid names: auto, cpu, cuda, cuda:N. For the local executor torch must be installed, and a
    CUDA device must be visible to it (torch is imported here only when CUDA is asked for). On
    Ray the workers' devices are the cluster's: only the name is checked.
    """
    name = str(device).strip().lower()
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if name not in ("auto", "cpu") and match is None:
        raise ValueError(f"--device {device!r}: not a device scalinglab trains on; valid: {DEVICES}")
    if executor != "local":
        return name
    if importlib.util.find_spec("torch") is None:
        raise ValueError("`scalinglab sweep run` trains with torch, which is not installed; "
                         "pip install 'scalinglab[train]'")
    if match is None:
        return name
    import torch
    if not torch.cuda.is_available():
        why = ("this torch build has no CUDA support" if torch.version.cuda is None
               else "no CUDA GPU is visible" + (f" (CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r})"
                                                if "CUDA_VISIBLE_DEVICES" in os.environ else ""))
        raise ValueError(f"--device {device}: CUDA is not available on this machine ({why}); available "
                         "here: cpu. Use --device cpu, or --device auto (CUDA when there is a GPU, else cpu)")
    n = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= n:
        raise ValueError(f"--device {device}: this machine has {n} CUDA device(s): "
                         + ", ".join(f"cuda:{i}" for i in range(n)) + " (or cuda, auto, cpu)")
    return name


# ---------------------------------------------------------------------- training one job

def train_job(job: dict, on_event: Callable[[dict], None] | None = None) -> dict:
    """Train one job in this process and return its outcome (exceptions become 'crashed')."""
    t0 = time.perf_counter()
    try:
        import torch
        from dataclasses import asdict
        from scalinglab.arch.config import TrainConfig
        from scalinglab.train.trainer import train

        on_cpu = job.get("threads") and not (job.get("device", "auto") != "cpu" and torch.cuda.is_available())
        if on_cpu:
            torch.set_num_threads(int(job["threads"]))
        # and every BLAS/OpenMP pool torch.set_num_threads does not reach (threadpoolctl)
        from scalinglab.util.threads import limit_threads
        limits = limit_threads(int(job["threads"])) if on_cpu else contextlib.nullcontext()
        config = TrainConfig.from_dict({**job["config"], "device": job.get("device", "auto")})
        with limits:
            result = train(config, job["corpus"], workdir=job["workdir"], on_event=on_event)
        return {"run_id": job["run_id"], "status": result.status, "points": result.points,
                "curve": result.curve, "wall_seconds": result.wall_seconds,
                "hardware": result.hardware, "message": result.message,
                "params": asdict(result.params)}
    except KeyboardInterrupt:
        return _outcome(job, "interrupted", "interrupted", t0)
    except Exception as exc:
        return _outcome(job, "crashed", _cause(exc), t0, traceback=traceback.format_exc())


def _outcome(job: dict, status: str, message: str, t0: float | None = None, *,
             traceback: str | None = None) -> dict:
    out = {"run_id": job["run_id"], "status": status, "points": [], "curve": [],
           "wall_seconds": None if t0 is None else time.perf_counter() - t0, "hardware": {},
           "message": message}
    if traceback:
        out["traceback"] = traceback
    return out


def worker_main() -> None:
    """Child-process entry: job JSON on stdin, events and the outcome as JSON lines on stdout.

    torch is imported BEFORE the job is read, so a spare child started while another run trains
    pays its import (seconds on a loaded CPU) in parallel; EOF without a job exits quietly.
    It leaves through ``_leave`` (no interpreter teardown).
    """
    parent = os.getppid()
    out = sys.stdout
    sys.stdout = sys.stderr              # stray prints must not corrupt the event stream
    try:
        import torch
        import scalinglab.train.trainer  # noqa: F401  (warm-up, see above)
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)])   # imports torch._dynamo (seconds)
        text = sys.stdin.read()
    except KeyboardInterrupt:
        sys.exit(130)
    if not text.strip():
        _leave(0)
    job = json.loads(text)

    def send(message: dict) -> None:
        out.write(EVENT_PREFIX + json.dumps(message, default=float) + "\n")
        out.flush()

    def on_event(event: dict) -> None:
        if os.getppid() != parent:      # the sweep died: stop instead of training unobserved
            os._exit(3)
        send({"kind": "event", **event})

    outcome = train_job(job, on_event)       # a crash's traceback travels in the outcome, to the log
    send({"kind": "outcome", **outcome})
    _leave(130 if outcome["status"] == "interrupted" else 0)


def _leave(code: int) -> None:
    """End a worker without the interpreter's teardown, which with torch and torch._dynamo loaded
    costs about a second of CPU per run (benchmarks/RESULTS.md, "Trainer overhead on tiny
    models"). Nothing is left to clean up: the events and outcome are flushed (here too, with the
    log on stderr), the checkpoint is closed and renamed into place, the driver writes the store."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


# ---------------------------------------------------------------------- local executor

def gpu_count() -> int:
    """GPUs this machine offers without importing torch: CUDA_VISIBLE_DEVICES, else nvidia-smi."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def cpu_count() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_threads(jobs: int, threads: int | None = None, cores: int | None = None) -> int:
    """torch threads for each of ``jobs`` concurrent CPU runs: the fair share of the cores,
    ``max(1, cores // jobs)``, or ``threads`` when asked for, never more than that share (K runs
    of T threads each on fewer than K*T cores would spend their time preempting each other)."""
    share = max(1, (cores or cpu_count()) // max(1, jobs))
    return share if threads is None else max(1, min(int(threads), share))


AUTO = "auto"


def resolve_jobs(jobs: int | str, threads: int | None = None, *, runs: int | None = None,
                 cores: int | None = None) -> tuple[int, int]:
    """(runs trained at once, torch threads each) on CPU, with jobs × threads ≤ cores.

    ``jobs="auto"`` fills the cores: ``cores // threads`` runs (``threads`` default 1: one thread is
    fastest for these small models, and a run's losses then do not depend on how many runs train
    beside it), never more than ``runs``, the runs there are to train. A number is kept as given,
    and each run's threads are its share of the cores (``cpu_threads``)."""
    cores = cores or cpu_count()
    if jobs == AUTO:
        jobs = max(1, cores // max(1, threads or 1))
        if runs is not None:
            jobs = max(1, min(jobs, runs))
    return jobs, cpu_threads(jobs, threads or 1, cores)


def worker_env(base: dict, slot: int | None, threads: int) -> dict:
    """The environment of a worker process: ``base`` with its GPU (``slot``), its share of the
    cores (``threads``, also for the OpenMP/MKL pools ``torch.set_num_threads`` misses) and
    ``MALLOC_TUNING`` (unless ``base`` sets those variables itself)."""
    env = {**MALLOC_TUNING, **base}
    if slot is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(slot)
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    return env


class _Child:
    """One worker process; started (and importing torch) before it is given its job."""

    def __init__(self, slot: int | None, threads: int):
        self.slot = slot
        self.proc = subprocess.Popen([sys.executable, "-m", "scalinglab.sweep.executors"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=worker_env(os.environ, slot, threads),
                                     text=True)
        self.stderr: deque[str] = deque(maxlen=200)
        self.err_thread = threading.Thread(target=self._read_err, daemon=True)
        self.err_thread.start()
        self.job: dict | None = None
        self.outcome: dict | None = None
        self.thread: threading.Thread | None = None

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))
        self.proc.stderr.close()

    def assign(self, job: dict, messages: queue.Queue) -> None:
        self.job = job
        Path(job["workdir"]).mkdir(parents=True, exist_ok=True)
        try:
            self.proc.stdin.write(json.dumps(job))
            self.proc.stdin.close()
        except BrokenPipeError:        # died while warming up; final_outcome reports it
            pass
        self.thread = threading.Thread(target=self._read, args=(messages,), daemon=True)
        self.thread.start()

    def _read(self, messages: queue.Queue) -> None:
        for line in self.proc.stdout:
            if not line.startswith(EVENT_PREFIX):
                continue
            try:
                message = json.loads(line[len(EVENT_PREFIX):])
            except json.JSONDecodeError:
                continue
            if message.pop("kind") == "outcome":
                self.outcome = message
            else:
                messages.put(("event", self.job["run_id"], message))
        self.proc.wait()
        self.proc.stdout.close()
        messages.put(("exit", self.job["run_id"], None))

    def final_outcome(self) -> dict:
        self.thread.join()
        self.err_thread.join(timeout=5)
        log_path = Path(self.job["workdir"]) / "worker.log"
        if self.stderr:
            with open(log_path, "a") as log:
                log.write("\n".join(self.stderr) + "\n")
        if self.outcome is not None:
            return self.outcome
        code = self.proc.returncode
        if code is not None and code < 0:
            try:
                how = f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
            if -code == signal.SIGKILL:
                how += ": out of memory, or kill -9"
        else:
            how = f"exit code {code}"
        last = next((line.strip() for line in reversed(self.stderr) if line.strip()), "")
        return _outcome(self.job, "crashed", f"worker process ended without a result ({how})"
                        + (f"; the last line it wrote: {one_line(last, 500)}" if last else ""))

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def dismiss(self) -> None:
        """A spare that got no job: close its stdin so it exits."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.err_thread.join(timeout=5)


class LocalExecutor:
    """Runs each job in its own child process: ``jobs`` at a time on CPU (with the next child
    already started as a warm spare), one per GPU when runs train on CUDA and there are several
    GPUs (``jobs`` is then not used: the GPUs set the concurrency, as before)."""

    name = "local"

    def __init__(self, slots: int | None = None, threads: int = 1, *, jobs: int = 1, cpu: bool = False):
        gpus = 0 if cpu else gpu_count()
        self.gpu_slots = list(range(gpus)) if gpus > 1 else None
        self.slots = slots or (gpus if gpus > 1 else 1 if gpus == 1 else max(1, int(jobs)))
        self.threads = threads

    def run(self, jobs: Iterable[dict], *, on_start: Callable[[dict], None],
            on_event: Callable[[str, dict], None], on_outcome: Callable[[dict], None]) -> None:
        """Train ``jobs``; callbacks run in the calling thread. KeyboardInterrupt stops every child
        (each reported with status 'interrupted' unless it had finished) and is re-raised."""
        pending = list(jobs)
        messages: queue.Queue = queue.Queue()
        active: dict[str, _Child] = {}
        free = list(self.gpu_slots) if self.gpu_slots else [None] * self.slots
        spares: list[_Child] = []
        try:
            while pending or active:
                while pending and free:
                    job, slot = pending.pop(0), free.pop(0)
                    spare = next((c for c in spares if c.slot == slot), None)
                    child = spare or _Child(slot, self.threads)
                    if spare is not None:
                        spares.remove(spare)
                    on_start(job)
                    child.assign(job, messages)
                    active[job["run_id"]] = child
                    if pending and not spares and self.gpu_slots is None:
                        spares.append(_Child(None, self.threads))
                kind, run_id, payload = messages.get()
                if kind == "event":
                    on_event(run_id, payload)
                    continue
                child = active.pop(run_id)
                free.append(child.slot)
                on_outcome(child.final_outcome())
        except BaseException:
            for child in active.values():
                child.stop()
            for child in active.values():
                child.thread.join(timeout=5)
                done = child.outcome is not None and child.outcome["status"] == "done"
                on_outcome(child.outcome if done else _outcome(child.job, "interrupted", "interrupted"))
            raise
        finally:
            for spare in spares:
                spare.dismiss()


# ---------------------------------------------------------------------- ray executor

def _ray_task(job: dict) -> dict:
    return train_job(job)


class RayExecutor:
    """One Ray task per run (``max_retries=2``: a dead worker is retried; the trainer resumes from
    the run's checkpoint). The driver alone writes the store. Uses a running Ray instance if one is
    initialised, else ``ray.init(address)`` (local when ``address`` is None)."""

    name = "ray"

    def __init__(self, address: str | None = None):
        self.address = address

    def run(self, jobs: Iterable[dict], *, on_start: Callable[[dict], None],
            on_event: Callable[[str, dict], None], on_outcome: Callable[[dict], None]) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("--executor ray needs the ray package (pip install 'scalinglab[ray]'); "
                             "or use --executor local") from None
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        gpus = ray.cluster_resources().get("GPU", 0)
        jobs = list(jobs)
        asked = next((j["device"] for j in jobs if str(j.get("device", "auto")).startswith("cuda")), None)
        if asked and not gpus:
            raise ValueError(f"--device {asked}: the Ray cluster has no GPUs (ray.cluster_resources() lists "
                             "none); available there: cpu. Use --device cpu or auto")
        remote = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=2)(_ray_task)
        refs = {}
        for job in jobs:
            job = dict(job, device="auto" if gpus else "cpu")
            on_start(job)
            refs[remote.remote(job)] = job
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    job = refs.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except Exception as exc:   # worker died more than max_retries times, or Ray error
                        lines = [x for x in str(exc).splitlines() if x.strip()]
                        outcome = _outcome(job, "crashed", f"{type(exc).__name__}: "
                                           + one_line(lines[-1] if lines else "", 500),
                                           traceback=f"{type(exc).__name__}: {exc}")
                    on_outcome(outcome)
        except BaseException:
            for ref, job in refs.items():
                ray.cancel(ref, force=True)
                on_outcome(_outcome(job, "interrupted", "interrupted"))
            raise


if __name__ == "__main__":
    worker_main()
