"""The CPU trainer's overhead on tiny models (issue 25, speed): a sweep worker's environment keeps
glibc from handing each step's freed memory back to the OS (``executors.MALLOC_TUNING``).
That the losses stay the same bits is measured in benchmarks/RESULTS.md ("Trainer overhead on
tiny models"): an extra pair of worker processes here would cost the suite seconds of torch import.
And a worker leaves without the interpreter's teardown (``executors._leave``), its output flushed."""
import io
import subprocess
import sys

from scalinglab.sweep import executors
from scalinglab.sweep.executors import MALLOC_TUNING, worker_env


def test_worker_env_sets_threads_gpu_and_malloc_tuning():
    env = worker_env({"PATH": "/bin"}, 1, 3)
    assert env["PATH"] == "/bin" and env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    for name, value in MALLOC_TUNING.items():
        assert env[name] == value
    # glibc ignores an mmap threshold above 32 MiB (HEAP_MAX_SIZE / 2 on 64-bit): no larger value
    assert int(MALLOC_TUNING["MALLOC_MMAP_THRESHOLD_"]) <= 32 << 20
    assert "CUDA_VISIBLE_DEVICES" not in worker_env({}, None, 1)


def test_worker_env_keeps_what_the_user_set():
    mine = {"MALLOC_TRIM_THRESHOLD_": "0", "CUDA_VISIBLE_DEVICES": "5"}
    env = worker_env(mine, None, 2)
    assert env["MALLOC_TRIM_THRESHOLD_"] == "0" and env["CUDA_VISIBLE_DEVICES"] == "5"
    assert env["MALLOC_MMAP_THRESHOLD_"] == MALLOC_TUNING["MALLOC_MMAP_THRESHOLD_"]
    assert mine == {"MALLOC_TRIM_THRESHOLD_": "0", "CUDA_VISIBLE_DEVICES": "5"}   # not modified


def test_a_local_worker_starts_with_that_environment(monkeypatch):
    seen = {}

    class FakePopen:
        stdin = stdout = None

        def __init__(self, args, **kwargs):
            self.stderr = io.StringIO("")
            seen["args"], seen["env"] = args, kwargs["env"]

    monkeypatch.setattr(executors.subprocess, "Popen", FakePopen)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    child = executors._Child(0, 2)
    child.err_thread.join(timeout=5)
    assert seen["args"][-2:] == ["-m", "scalinglab.sweep.executors"]
    assert seen["env"]["MALLOC_MMAP_THRESHOLD_"] == "65536"           # the user's value wins
    assert seen["env"]["MALLOC_TRIM_THRESHOLD_"] == MALLOC_TUNING["MALLOC_TRIM_THRESHOLD_"]
    assert seen["env"]["CUDA_VISIBLE_DEVICES"] == "0" and seen["env"]["OMP_NUM_THREADS"] == "2"


def test_a_worker_leaves_without_teardown_but_with_its_output_flushed():
    # piped stdout is block-buffered: without the flush in _leave, os._exit would lose "events"
    code = ("import sys; from scalinglab.sweep.executors import _leave; "
            "sys.__stdout__.write('events'); sys.stdout = sys.stderr; print('log line', end=''); _leave(7)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 7
    assert proc.stdout == "events" and proc.stderr == "log line"
