"""The sweep -> trainer contract is a typed, frozen ``arch.config.TrainConfig`` (issue 25, part 1).

The store keeps JSON; ``from_dict`` reads it back (old stores' dicts included) and refuses a key
that is not a setting, naming it.  The config fingerprint of existing configs is unchanged, so
old stores and checkpoints resume."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys

import pytest

from scalinglab.arch.config import TrainConfig
from scalinglab.arch.counting import ModelShape
from scalinglab.sweep.plan import plan_sweep
from scalinglab.train.fingerprint import RESUME_MAY_CHANGE, config_fingerprint

SHAPE = {"n_layers": 2, "d_model": 64, "n_heads": 2, "ffn_hidden": 256, "vocab_size": 256, "context_length": 64}
OLD_STORE_DICT = {"shape": SHAPE, "tokens": 65536, "batch_size": 8, "seq_len": 64, "lr": 3e-3, "schedule": "wsd",
                  "wsd_branch_tokens": [16384, 32768], "seed": 1, "eval_tokens": 4096, "eval_every": 8}


def _sha(config: dict) -> str:
    """The fingerprint's recipe written out (train/fingerprint.py before this change), to hold it fixed."""
    kept = {k: v for k, v in config.items() if k not in RESUME_MAY_CHANGE}
    return hashlib.sha256(("config " + json.dumps(kept, sort_keys=True, separators=(",", ":"),
                                                  default=str)).encode()).hexdigest()


def test_an_old_stores_dict_loads_and_round_trips():
    config = TrainConfig.from_dict(OLD_STORE_DICT)
    assert config.shape == ModelShape(**SHAPE) and config.wsd_branch_tokens == (16384, 32768)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert json.loads(json.dumps(config.to_dict())) == config.to_dict()       # plain JSON


def test_unknown_keys_are_refused_by_name():
    with pytest.raises(ValueError, match="'learning_rate'"):
        TrainConfig.from_dict({**OLD_STORE_DICT, "learning_rate": 1e-3})
    with pytest.raises(ValueError, match="'d_ff'"):
        TrainConfig.from_dict({**OLD_STORE_DICT, "shape": {**SHAPE, "d_ff": 256}})


def test_it_is_frozen_and_still_checks_its_values():
    config = TrainConfig.from_dict(OLD_STORE_DICT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0
    with pytest.raises(ValueError, match="seq_len"):
        TrainConfig.from_dict({**OLD_STORE_DICT, "seq_len": 128})


def test_the_fingerprints_of_existing_configs_are_unchanged():
    # the store hashes its JSON dict; a checkpoint hashes to_dict(): both as before
    assert config_fingerprint(OLD_STORE_DICT) == _sha(OLD_STORE_DICT)
    config = TrainConfig.from_dict(OLD_STORE_DICT)
    full = {**dataclasses.asdict(config), "wsd_branch_tokens": [16384, 32768]}   # the old to_dict()
    assert config.to_dict() == full and config_fingerprint(config.to_dict()) == _sha(full)


def test_every_planned_run_is_a_valid_config():
    plan = plan_sweep([1e13, 1e14], sizes_per_budget=3)
    assert plan.runs
    for run in plan.runs:
        stored = run.train_config()
        read = TrainConfig.from_dict(stored).to_dict()
        assert {k: read[k] for k in stored} == stored          # nothing the store holds is changed or lost


def test_arch_config_is_torch_free():
    code = "import sys, scalinglab.arch.config; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
