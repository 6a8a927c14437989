"""Train one small model on a prepared corpus: one clear loop, resumable, with WSD branches.

``train(config, corpus, workdir=...)`` trains ``config.shape`` for ``config.tokens`` tokens and
returns the (N, D, validation loss) points it measured. Everything needed to continue lives in
``workdir/ckpt.pt`` (written atomically); calling ``train`` again with the same workdir resumes
and reproduces the uninterrupted run's losses exactly (bitwise on CPU), because the data a step
sees depends only on (seed, step) and the checkpoint holds model, optimizer and RNG states.

A checkpoint is data, never code: it holds tensors, numbers, strings, lists and dicts only and
loads with ``torch.load(weights_only=True)``; it also holds the run's fingerprints (its config's
and its corpus's, ``train/fingerprint.py``). One that does not load that way, does not fit the
model and optimizers (names, shapes), or belongs to another config or corpus is refused: it is
set aside as ``ckpt.pt.refused``, the run starts again from scratch, and a warning (a line in a
sweep run's log, ``worker.log``) says why.

WSD branches (Hägele et al. 2024): with ``schedule="wsd"`` the run keeps a constant learning
rate and, for every extra token count D_b in ``wsd_branch_tokens``, saves the stable-phase state
at step S_b·(1 - cooldown_fraction), runs the cooldown of a D_b-token WSD run, records its point,
then restores the saved state and carries on. One run yields one point per branch plus the
final one, each equal to what a separate WSD run of that length would have measured.
"""
from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from scalinglab.train.corpus import TokenData
from scalinglab.arch.config import TrainConfig
from scalinglab.arch.counting import ParamCount, count_params, training_flops_per_token
from scalinglab.train.fingerprint import RESUME_MAY_CHANGE, config_fingerprint, corpus_fingerprint, short
from scalinglab.train.model import Transformer
from scalinglab.train.noise_scale import HalfBatchProbe, b_simple, unbiased_estimates

__all__ = ["TrainConfig", "TrainResult", "train", "CheckpointRefused", "REFUSED_SUFFIX"]

CHECKPOINT_FORMAT = 2              # 1: before fingerprints (no "format" key); 2: with them
REFUSED_SUFFIX = ".refused"        # a refused checkpoint is kept beside the run as ckpt.pt.refused
_STATUSES = ("running", "done", "diverged")


class CheckpointRefused(ValueError):
    """A checkpoint that is not this run's or not plain data; the message says why."""


@dataclass
class TrainResult:
    points: list[dict]        # one per WSD branch, then the final point
    curve: list[dict]         # the curve events, in training order
    params: ParamCount
    flops_per_token: float    # training_flops_per_token at the trained seq_len
    wall_seconds: float
    hardware: dict
    status: str               # "done" | "diverged"
    message: str = ""
    extra: dict = field(default_factory=dict)


def train(config: TrainConfig, corpus: str | Path, *, workdir: str | Path,
          on_event: Callable[[dict], None] | None = None) -> TrainResult:
    """Train ``config`` on the token file ``corpus``; resume from ``workdir/ckpt.pt`` if present.

    Events (``on_event``): {"type": "curve", "step", "tokens", "train_loss", "val_loss" (or None),
    "lr", "branch"} and {"type": "point", "tokens", "val_loss", "branch", ...} (branch: the WSD
    branch index, None for the main run); {"type": "progress", "steps_done", "steps_total",
    "train_loss"} when training starts or resumes and after every curve event (steps of the main
    run and its branches together: ``steps_done``). A NaN/inf loss ends the run with status "diverged".
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ckpt_path, base_path = workdir / "ckpt.pt", workdir / "branch_base.pt"
    emit = on_event or (lambda event: None)

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if config.device == "auto" else config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"TrainConfig.device={config.device!r} but CUDA is not available; use 'cpu' or 'auto'")
    data = TokenData(corpus, seed=config.seed)
    if data.info.vocab_size > config.shape.vocab_size:
        raise ValueError(f"corpus {corpus} has vocab {data.info.vocab_size}, larger than the model's "
                         f"shape.vocab_size {config.shape.vocab_size}")
    data._split("train", config.seq_len), data._split("val", config.seq_len)   # early, clear errors
    fingerprint = {"config": config_fingerprint(config.to_dict()), "corpus": corpus_fingerprint(corpus)}

    S, tps = config.total_steps, config.tokens_per_step
    branches = config.branches()
    eval_every = config.eval_every or max(1, S // 10)
    log_every = config.log_every or max(1, S // 500)
    ckpt_every = config.checkpoint_every or eval_every
    noise_every = max(1, S // 50) if config.noise_every is None else int(config.noise_every)
    loss_chunk = config.loss_chunk if config.loss_chunk is not None else (
        8192 if config.shape.vocab_size > 16384 else None)
    params = count_params(config.shape)
    fpt = training_flops_per_token(replace(config.shape, context_length=config.seq_len))
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
           else contextlib.nullcontext())
    hardware = {"device": str(device), "name": torch.cuda.get_device_name(device)
                if device.type == "cuda" else platform.processor() or platform.machine(),
                "precision": "bf16" if device.type == "cuda" else "fp32", "compile": config.compile,
                "torch": torch.__version__, "threads": torch.get_num_threads()}

    # no torch.use_deterministic_algorithms: the CPU kernels used here are deterministic already
    # (tested: a resumed run matches bitwise) and the switch costs seconds of torch._inductor import
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        model = Transformer(config.shape).to(device)
        optimizers = _make_optimizers(model, config, device)
        fwd = torch.compile(model) if config.compile else model
        probe = HalfBatchProbe(model.parameters()) if noise_every > 0 else None

        def probe_loss(a, b):
            with amp:
                return fwd(a, b, loss_chunk=loss_chunk)

        # the run's bookkeeping; everything here goes into the checkpoint
        st = {"step": 0, "branch": None, "branches_done": 0, "points": [], "curve": [],
              "wall": 0.0, "status": "running", "message": ""}
        if ckpt_path.exists():
            blob = _resume_blob(ckpt_path, base_path, model, optimizers, config, fingerprint, device,
                                n_branches=len(branches))
            if blob is not None:
                st = _apply(blob, model, optimizers)
                if st["status"] != "running":
                    return _result(st, params, fpt, hardware)
        noise = st.setdefault("noise", _noise_sums())   # (checkpoints older than the noise scale lack it)

        def checkpoint(path=ckpt_path):
            _save(path, model, optimizers, config, st, fingerprint)

        def evaluate() -> float:
            model.eval()
            total, n = 0.0, 0
            with torch.no_grad(), amp:
                for x, y in data.val_batches(config.batch_size, config.seq_len, config.eval_tokens):
                    x, y = _to(x, device), _to(y, device)
                    total += fwd(x, y, loss_chunk=loss_chunk).item() * y.numel()
                    n += y.numel()
            model.train()
            return total / n

        def record_point(tokens: int, branch):
            val = evaluate()
            point = {"tokens": tokens, "val_loss": val, "branch": branch, "step": tokens // tps,
                     "params": params.non_embedding, "params_total": params.total,
                     "flops": fpt * tokens, "flops_6nd": 6.0 * params.non_embedding * tokens}
            st["points"].append(point)
            emit({"type": "point", **point})
            return val

        def report(train_loss=None):
            emit({"type": "progress", "steps_done": steps_done(st["step"], st["branches_done"], branches),
                  "steps_total": total_work, "train_loss": train_loss})

        total_work = steps_done(S, len(branches), branches)
        report()                                            # where it starts (resumed: where it stopped)
        t0 = time.perf_counter() - st["wall"]
        while True:
            step, b = st["step"], st["branch"]
            if b is None and st["branches_done"] < len(branches) and step == branches[st["branches_done"]][0]:
                st["branch"] = b = st["branches_done"]          # enter a cooldown branch
                checkpoint(base_path)
            if b is not None and step == branches[b][1]:        # branch finished: point, restore
                record_point(step * tps, b)
                base = _apply(_read(base_path, model, optimizers, config, fingerprint, device,
                                    n_branches=len(branches)), model, optimizers)
                st.update(step=base["step"], branch=None, branches_done=b + 1)
                st["wall"] = time.perf_counter() - t0
                checkpoint()
                continue
            if b is None and step == S:
                val = record_point(S * tps, None)
                st["status"] = "done" if math.isfinite(val) else "diverged"
                break

            lr = config.lr_at(step, None if b is None else branches[b][1])
            for opt in optimizers:
                for group in opt.param_groups:
                    group["lr"] = lr
            x, y = (_to(a, device) for a in data.batch(step, config.batch_size, config.seq_len))
            # the noise-scale probe sets its half-batch gradient aside before the step: the step is unchanged
            probing = probe is not None and (step + 1) % noise_every == 0 and probe.before(probe_loss, x, y)
            with amp:
                loss = fwd(x, y, loss_chunk=loss_chunk)
            loss.backward()
            if probing:
                _add_noise(noise, probe.after())
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            for opt in optimizers:
                opt.step()
                opt.zero_grad(set_to_none=True)
            st["step"] = step = step + 1

            last_of_phase = step == (S if b is None else branches[b][1])
            is_eval = step % eval_every == 0 and not last_of_phase
            if step % log_every == 0 or is_eval or last_of_phase:
                train_loss = loss.item()
                val_loss = evaluate() if is_eval else None
                event = {"type": "curve", "step": step, "tokens": step * tps, "train_loss": train_loss,
                         "val_loss": val_loss, "lr": lr, "branch": b, **_take_noise(noise)}
                st["curve"].append(event)
                emit(event)
                report(train_loss)
                if not (math.isfinite(train_loss) and (val_loss is None or math.isfinite(val_loss))):
                    st["status"], st["message"] = "diverged", (
                        f"loss became {train_loss if not math.isfinite(train_loss) else val_loss} "
                        f"at step {step} (lr {lr:.3g}); lower the learning rate")
                    break
            if step % ckpt_every == 0:
                st["wall"] = time.perf_counter() - t0
                checkpoint()
        st["wall"] = time.perf_counter() - t0
        checkpoint()
        if base_path.exists():
            base_path.unlink()
    return _result(st, params, fpt, hardware)


# ---------------------------------------------------------------- helpers

def steps_done(step: int, branches_done: int, branches: list[tuple[int, int]]) -> int:
    """Optimizer steps taken by a run at ``step`` with ``branches_done`` WSD branches behind it
    (inside a branch, ``step`` counts on from the branch's start, so the branch's own steps are in
    it already); with ``step`` = the main run's last and every branch done: the run's total."""
    return step + sum(end - start for start, end in branches[:branches_done])


def _to(a, device):
    t = torch.from_numpy(a)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


def _make_optimizers(model: Transformer, config: TrainConfig, device) -> list[torch.optim.Optimizer]:
    """AdamW (decay on matrices, none on norm gains); with "muon", Muon takes the block matrices."""
    kw = {"fused": True} if device.type == "cuda" else {"foreach": True}
    hidden = [p for n, p in model.named_parameters() if p.ndim == 2 and n.startswith("blocks.")]
    if config.optimizer == "muon":
        if not hasattr(torch.optim, "Muon"):
            raise ValueError("optimizer='muon' needs torch.optim.Muon (torch >= 2.9); use 'adamw'")
        # match_rms_adamw (Liu et al. 2025, "Muon is Scalable"): the AdamW lr and decay carry over
        muon = torch.optim.Muon(hidden, lr=config.lr, weight_decay=config.weight_decay,
                                adjust_lr_fn="match_rms_adamw")
        ids = {id(p) for p in hidden}
        rest = [p for p in model.parameters() if id(p) not in ids]
    else:
        muon, rest = None, list(model.parameters())
    groups = [{"params": [p for p in rest if p.ndim >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in rest if p.ndim < 2], "weight_decay": 0.0}]
    adamw = torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), eps=1e-8, **kw)
    return [adamw] + ([muon] if muon is not None else [])


def _save(path: Path, model, optimizers, config: TrainConfig, st: dict, fingerprint: dict) -> None:
    """Tensors, numbers, strings, lists and dicts only: what ``torch.load(weights_only=True)`` reads."""
    blob = {"format": CHECKPOINT_FORMAT, "fingerprint": dict(fingerprint),
            "model": model.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "config": config.to_dict(), "state": st}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def _resume_blob(ckpt_path: Path, base_path: Path, model, optimizers, config: TrainConfig,
                 fingerprint: dict, device, *, n_branches: int) -> dict | None:
    """The checkpoint to resume from, or None (start from scratch) when it is refused: then it is
    set aside as ``ckpt.pt.refused``, the branch base with it, and a warning says why. A run
    stopped inside a WSD branch also needs that branch's saved base: it is checked too."""
    try:
        blob = _read(ckpt_path, model, optimizers, config, fingerprint, device, n_branches=n_branches)
        if blob["state"]["branch"] is not None:
            _read(base_path, model, optimizers, config, fingerprint, device, n_branches=n_branches)
        return blob
    except CheckpointRefused as exc:
        refused = ckpt_path.with_name(ckpt_path.name + REFUSED_SUFFIX)
        os.replace(ckpt_path, refused)
        base_path.unlink(missing_ok=True)
        warnings.warn(f"{exc}; the run starts again from scratch (the refused checkpoint is kept as "
                      f"{refused})", UserWarning, stacklevel=3)
        return None


def _read(path: Path, model, optimizers, config: TrainConfig, fingerprint: dict, device, *,
          n_branches: int) -> dict:
    """Load a checkpoint as plain data and check it is this run's; raise CheckpointRefused if not.
    Nothing of the model, optimizers or RNG changes here (``_apply`` does that)."""
    def refuse(why: str):
        raise CheckpointRefused(f"checkpoint {path} refused: {why}")

    try:
        with warnings.catch_warnings():     # torch's own notes on odd pickle protocols: the refusal says it
            warnings.simplefilter("ignore")
            blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:    # pickle, zip, torch and OS errors: any file that does not load as data
        text = str(exc)
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if found:
            refuse(f"it holds a pickled Python object ({found.group(1)}), and loading that would run its "
                   "code; a checkpoint holds tensors and numbers only")
        unpickler = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
        if unpickler:
            refuse(f"it is a pickle that is not plain data (the safe loader stopped at: {unpickler.group(1)[:200]}); "
                   "loading it as Python objects could run code, so it is not loaded")
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        refuse(f"it does not load as tensors and numbers ({type(exc).__name__}: {first[:300]})")
    if not isinstance(blob, dict) or not {"model", "optimizers", "rng_cpu", "config", "state"} <= set(blob):
        refuse("it is not a scalinglab checkpoint (it lacks the model, optimizer, RNG, config or state entries)")
    theirs = blob.get("fingerprint")
    if isinstance(theirs, dict):
        if theirs.get("config") != fingerprint["config"]:
            diff = _config_diff(config, blob["config"])
            refuse(f"it belongs to another config (fingerprint {short(theirs.get('config'))}, this run's "
                   f"{short(fingerprint['config'])}" + (f"; differs in {', '.join(diff)}" if diff else "") + ")")
        if theirs.get("corpus") != fingerprint["corpus"]:
            refuse(f"it was trained on another corpus (fingerprint {short(theirs.get('corpus'))}, this run's "
                   f"corpus {short(fingerprint['corpus'])})")
    else:                       # written before fingerprints: compare the stored config itself
        diff = _config_diff(config, blob["config"])
        if diff:
            refuse(f"it belongs to a different run (differs in {', '.join(diff)})")
    problem = (_tensors_problem("model", blob["model"], model.state_dict())
               or _optimizers_problem(blob["optimizers"], optimizers)
               or _rng_problem(blob["rng_cpu"], blob.get("rng_cuda"))
               or _state_problem(blob["state"], config.total_steps, n_branches))
    if problem:
        refuse(f"it does not fit this run: {problem}")
    return blob


def _config_diff(config: TrainConfig, theirs) -> list[str]:
    """The settings (other than RESUME_MAY_CHANGE) in which a checkpoint's config differs."""
    mine, theirs = config.to_dict(), theirs if isinstance(theirs, dict) else {}
    return [k for k in mine if k not in RESUME_MAY_CHANGE and mine[k] != theirs.get(k)]


def _tensors_problem(what: str, theirs, mine: dict) -> str | None:
    if not isinstance(theirs, dict):
        return f"its {what} state is not a table of tensors"
    if set(theirs) != set(mine):
        odd = sorted(set(theirs) ^ set(mine))
        return f"its {what} state has other entries ({', '.join(map(str, odd[:3]))}{', ...' if len(odd) > 3 else ''})"
    for name, t in mine.items():
        got = theirs[name]
        if not isinstance(got, torch.Tensor) or got.shape != t.shape or got.dtype != t.dtype:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return f"{what} entry {name} is {shape}, this run's is {tuple(t.shape)} {t.dtype}"
    return None


def _optimizers_problem(theirs, optimizers) -> str | None:
    if not isinstance(theirs, list) or len(theirs) != len(optimizers):
        return "its optimizer states do not match this run's optimizers"
    for opt, sd in zip(optimizers, theirs):
        groups = sd.get("param_groups") if isinstance(sd, dict) else None
        state = sd.get("state") if isinstance(sd, dict) else None
        if not isinstance(groups, list) or not isinstance(state, dict) or len(groups) != len(opt.param_groups) \
                or any(not isinstance(g, dict) or len(g.get("params", ())) != len(mine["params"])
                       for g, mine in zip(groups, opt.param_groups)):
            return f"its {type(opt).__name__} state has other parameter groups"
        params = [p for g in opt.param_groups for p in g["params"]]
        for index, entry in state.items():
            if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(entry, dict):
                return f"its {type(opt).__name__} state names parameter {index!r}, which this run lacks"
            for key, value in entry.items():
                if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape != params[index].shape:
                    return (f"its {type(opt).__name__} {key} of parameter {index} is {tuple(value.shape)}, "
                            f"the parameter is {tuple(params[index].shape)}")
    return None


def _rng_problem(cpu, cuda) -> str | None:
    def is_state(t):
        return isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.ndim == 1
    if not is_state(cpu) or not (cuda is None or (isinstance(cuda, list) and all(map(is_state, cuda)))):
        return "its random-number-generator states are not byte tensors"
    return None


def _state_problem(st, total_steps: int, n_branches: int) -> str | None:
    def whole(v, low, high):
        return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
    if not isinstance(st, dict):
        return "its bookkeeping is not a table"
    if not whole(st.get("step"), 0, total_steps):
        return f"its step {st.get('step')!r} is not in 0..{total_steps}"
    if not (st.get("branch") is None or whole(st.get("branch"), 0, n_branches - 1)) \
            or not whole(st.get("branches_done"), 0, n_branches):
        return f"its WSD branch counters do not fit the run's {n_branches} branch(es)"
    if not (isinstance(st.get("points"), list) and isinstance(st.get("curve"), list)
            and isinstance(st.get("wall"), (int, float)) and st.get("status") in _STATUSES
            and isinstance(st.get("message"), str) and isinstance(st.get("noise", {}), dict)):
        return "its bookkeeping (points, curve, wall time, status) is malformed"
    return None


def _apply(blob: dict, model, optimizers) -> dict:
    """Restore a checked checkpoint (``_read``) into the model, optimizers and RNGs; its state."""
    model.load_state_dict(blob["model"])
    for opt, sd in zip(optimizers, blob["optimizers"]):
        opt.load_state_dict(sd)
    torch.set_rng_state(blob["rng_cpu"])
    if blob.get("rng_cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["rng_cuda"])
    return blob["state"]


def _noise_sums() -> dict:
    # since the last curve event (g2, trace, n) and over the whole run (run_*)
    return {"g2": 0.0, "trace": 0.0, "n": 0, "run_g2": 0.0, "run_trace": 0.0, "run_n": 0}


def _add_noise(noise: dict, measured) -> None:
    """One probe's measurement: the mean of its halves' unbiased estimates (train/noise_scale.py)."""
    if not measured:
        return
    pairs = [unbiased_estimates(*m) for m in measured]
    g2 = sum(p[0] for p in pairs) / len(pairs)
    trace = sum(p[1] for p in pairs) / len(pairs)
    for prefix in ("", "run_"):
        noise[prefix + "g2"] += g2
        noise[prefix + "trace"] += trace
        noise[prefix + "n"] += 1


def _take_noise(noise: dict) -> dict:
    """The curve event's noise columns: the mean estimates since the last event (None without one)."""
    if not noise["n"]:
        return {"noise_g2": None, "noise_trace": None}
    out = {"noise_g2": noise["g2"] / noise["n"], "noise_trace": noise["trace"] / noise["n"]}
    noise.update(g2=0.0, trace=0.0, n=0)
    return out


def _result(st: dict, params: ParamCount, fpt: float, hardware: dict) -> TrainResult:
    noise = st.get("noise") or _noise_sums()
    extra = {"noise_scale": {"b_simple_sequences": b_simple(noise["run_trace"], noise["run_g2"])
                             if noise["run_n"] else None, "measurements": noise["run_n"],
                             "g2_mean": noise["run_g2"] / noise["run_n"] if noise["run_n"] else None,
                             "trace_mean": noise["run_trace"] / noise["run_n"] if noise["run_n"] else None}}
    return TrainResult(points=list(st["points"]), curve=list(st["curve"]), params=params,
                       flops_per_token=fpt, wall_seconds=st["wall"], hardware=hardware,
                       status=st["status"], message=st["message"], extra=extra)
