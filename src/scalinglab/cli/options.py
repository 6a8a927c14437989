"""The one table from the API's parameter names to the CLI's options.

The library raises errors in its own words (``scalinglab.util.errors.ParamError`` names the
parameter, ``budget``); the CLI shows them with the option a user types (``--budget``). A name
spelt differently by one command has its entry in ``COMMAND_OPTIONS``; ``None`` marks an API
argument that the CLI has no option for."""
from __future__ import annotations

API_OPTIONS = {  # API argument -> CLI option
    "mapping": "--map", "where": "--where", "group": "--group", "flops_tolerance": "--flops-tolerance",
    "drop_top_loss": "--drop-top-loss", "drop_outliers": "--drop-outliers", "n_bootstrap": "--bootstrap",
    "n_boot": "--bootstrap", "keep_edge": "--keep-edge", "diverged_ratio": "--diverged-ratio", "procedure_band": "--procedure-band", "band": "--procedure-band", "weights": "--weights", "method": "--method",
    "unit": "--unit", "level": "--level", "delta": "--delta", "asymmetry": "--asymmetry", "loss": "--loss", "by": "--by", "prefer": "--prefer",
    "holdout": "--holdout", "threshold": "--threshold", "n_steps": "--steps", "workers": "--jobs",
    "seed": "--seed", "law": "--law", "variables": "--var", "fixed": "--fix", "budget": "--budget",
    "budgets": "--budget", "target_loss": "--target-loss", "target": "--target-loss", "mfu": "--mfu",
    "gpu": "--gpu", "n_gpus": "--gpus", "gpus": "--gpus", "peak_flops": "--peak-flops",
    "data_max_flops": "--data-max-flops", "aspect_ratio": "--aspect-ratio", "head_dim": "--head-dim",
    "vocab_size": "--vocab-size", "context_length": "--context", "unique_tokens": "--unique-tokens",
    "isoflop": "--runs", "constraints": None, "min_params": "--min-params", "max_params": "--max-params",
    "sizes_per_budget": "--sizes-per-budget", "allow_degenerate": "--force", "tensor_parallel": "--tensor-parallel",
    "budget_usd": "--budget-usd", "usd_per_gpu_hour": "--usd-per-gpu-hour", "inference_tokens": "--inference-tokens",
    "inference_gpu": "--inference-gpu", "inference_dtype": "--inference-dtype", "inference_mfu": "--inference-mfu",
    "inference_usd_per_gpu_hour": "--inference-usd-per-gpu-hour", "tokens_per_param": "--tokens-per-param",
    "source_format": "--from", "sep": "--sep", "bin_budgets": "--bin-budgets",
    "allow_edited": "--allow-edited", "drop_invalid": "--drop-invalid", "force": "--force",
    "bounds": "--bound", "targets": "--y", "outputs": "--y", "per_output": "--law",
    "fit": "--fit",
    "tracking_uri": "--tracking-uri", "history_point": "--history-point",
    "hparams_law": "--hparams-law", "critical_batch": "--critical-batch", "window": "--window",
    "calibrate": "--calibrate", "target_transform": "--target-transform", "positive_features": "--zero-features",
    "last_step": "--last-step", "batch_unit": "--batch-unit", "restart": "--restart", "corpus": "--corpus",
    "ladder_budget": "--ladder-budget", "target_budget": "--target-budget", "stop_width": "--stop-width",
    "batch": "--batch",
    "allow_unbent": "--allow-unbent", "min_x": "--min-x", "smooth_steps": "--smooth-steps",
    "speedup_at": "--speedup", "sparsity": "--sparsity", "vocab_params": "--vocab-params",
    "at_compute": None, "at_loss": None, "fit_a": None, "fit_b": None,   # studies/speedup.py (API only)
    # API functions that a command runs: a message naming one names the command
    "fit_groups": "--by-group", "isoflop_approach1": "`scalinglab isoflop --approach 1`",
    "isoflop_approach2": "`scalinglab isoflop --approach 2`",
    "init_grid": "--bound", "x0": "--fix",   # the CLI's start grid follows the bounds; --fix sets a value
}
# Names that are also columns or fields (params, tokens, batch_size, step) are options of some
# commands only: a row's "params=1e+06" is data, not an option.

# command (as typed after `scalinglab`) -> {API argument: its option in that command}
COMMAND_OPTIONS: dict[str, dict[str, str | None]] = {
    "sweep plan": {"budgets": "--budgets"},
    "data prepare": {"min_context": "--context"},
    "data fetch": {"name": "NAME"},
    "isoflop": {"method": "--valley"},      # the valley fit; fit's --method is the fit's starts
    "plot": {"method": "--valley"},
    "report": {"method": "--valley"},
    "loss-to-loss": {"x_loss": "--predict"},
    "plan": {"batch_size": "--batch-size", "student_params": "--student-params",
             "teacher_loss": "--teacher-loss", "teacher_params": "--teacher-params", "teacher_cost": "--teacher-cost"},
    "hparams fit": {"params": "--params", "tokens": "--tokens", "seq_len": "--seq-len"},
    "schedule predict": {"peak_lr": "--peak-lr", "warmup": "--warmup", "steps": "--steps"},
    "schedule cooldown": {"peak_lr": "--peak-lr", "warmup": "--warmup", "steps": "--steps"},
    "monitor": {"curve": "CURVE", "peak_lr": "--peak-lr", "warmup": "--warmup", "total_steps": "--total-steps",
                "spike_checkpoints": "--spike-checkpoints", "run": "--run", "loss_column": "--loss-column",
                "schedule": "--schedule", "cooldown": "--cooldown", "min_ratio": "--min-ratio"},
    "design suggest": {"target": "--target-budget", "budget_left": "--budget-left", "pool": "--pool", "k": "--batch",
                       "budgets": "--budgets", "n_draws": None, "drift": None},
    "design score": {"target": "--target-budget", "ladder": "LADDER", "reference": "--fit",
                     "n_sim": "--simulations", "noise": None},
}


def option_for(name: str, command: str | None = None) -> str:
    """The CLI's spelling of the API argument ``name`` in ``command`` (``"sweep plan"``): its option
    from the tables, else the name itself (an argument the CLI has no option for stays as it is)."""
    per_command = COMMAND_OPTIONS.get(command or "", {})
    option = per_command[name] if name in per_command else API_OPTIONS.get(name)
    return option or name
