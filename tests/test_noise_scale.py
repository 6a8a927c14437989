"""The gradient noise scale (McCandlish et al. 2018, App. A.1): the two-batch-size estimator on a
toy problem whose |G|² and tr(Σ) are known in closed form, the trainer's measurement (which must
not change the training step), and the store's curve columns with the version-1 migration."""
import json
import math
import sqlite3

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scalinglab.train.noise_scale import (HalfBatchProbe, NoiseScaleEstimator, b_simple,  # noqa: E402
                                          grad_sq_norm, unbiased_estimates)


def test_the_two_batch_estimates_invert_the_expected_norms_exactly():
    # E|G_B|² = |G|² + tr(Σ)/B (McCandlish et al. eq. A.1); feed the expectations, get the terms back
    g2, trace = 3.0, 480.0
    small, big = 16.0, 64.0
    est = unbiased_estimates(g2 + trace / small, g2 + trace / big, small, big)
    assert est == pytest.approx((g2, trace), rel=1e-12)
    assert b_simple(trace, g2) == pytest.approx(160.0)
    assert math.isnan(b_simple(1.0, -0.5))             # the gradient lost in noise: no noise scale
    with pytest.raises(ValueError, match="b_small < b_big"):
        unbiased_estimates(1.0, 1.0, 8, 8)


class Quadratic(torch.nn.Module):
    """Per-example loss ½|w − x_i|² with x_i ~ N(μ, s² I_d): per-example gradient w − x_i, so the
    true gradient is G = w − μ and the per-example covariance is Σ = s² I, tr(Σ) = d·s²."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(torch.as_tensor(w, dtype=torch.float64))

    def forward(self, x, y=None):
        return 0.5 * ((self.w - x) ** 2).sum(dim=1).mean()


def test_the_probe_recovers_the_known_gradient_and_noise_on_a_toy_problem():
    d, s, batch = 10, 2.0, 32
    mu = torch.linspace(-1.0, 1.0, d, dtype=torch.float64)
    w = torch.zeros(d, dtype=torch.float64) + 0.5
    model = Quadratic(w)
    true_g2 = float(((w - mu) ** 2).sum())             # |G|² = |w − μ|² = 3.6667 for these numbers
    true_trace = d * s * s                               # tr Σ = d·s² = 40
    gen = torch.Generator().manual_seed(0)
    probe = HalfBatchProbe(model.parameters())
    est = NoiseScaleEstimator()
    for _ in range(3000):
        x = mu + s * torch.randn(batch, d, generator=gen, dtype=torch.float64)
        assert probe.before(model, x, None)
        model(x).backward()                              # the training step's own full-batch gradient
        full = model.w.grad.clone()
        for measured in probe.after():                   # the two halves, 16 sequences each
            est.add(*measured)
        model.w.grad = None
        # the probe left the step's gradient alone: it is the full batch's mean gradient
        torch.testing.assert_close(full, w - x.mean(dim=0))
    g2_mean, trace_mean = est.g2_sum / est.count, est.trace_sum / est.count
    # standard errors over 3000 draws are ~1.5% of these values; 5% is > 3 standard errors
    assert g2_mean == pytest.approx(true_g2, rel=0.05)
    assert trace_mean == pytest.approx(true_trace, rel=0.05)
    assert est.value == pytest.approx(true_trace / true_g2, rel=0.08)


def test_an_odd_batch_is_split_unevenly_and_a_single_sequence_skipped():
    model = Quadratic(torch.zeros(3))
    probe = HalfBatchProbe(model.parameters())
    assert not probe.before(model, torch.zeros(1, 3, dtype=torch.float64), None)
    assert probe.after() is None
    # 5 sequences: halves of 2 and 3; each half's gradient is w − mean(its x), recovered exactly
    x = torch.arange(15, dtype=torch.float64).reshape(5, 3)
    assert probe.before(model, x, None)
    model(x).backward()
    (a_sq, big_sq, a_b, b_b), (c_sq, _, c_b, _) = probe.after()
    assert (a_b, c_b, b_b) == (2.0, 3.0, 5.0)
    assert a_sq == pytest.approx(float((x[:2].mean(0) ** 2).sum()))
    assert c_sq == pytest.approx(float((x[2:].mean(0) ** 2).sum()))
    assert big_sq == pytest.approx(float((x.mean(0) ** 2).sum()))
    assert grad_sq_norm([torch.ones(2), None, 2 * torch.ones(1)]) == pytest.approx(6.0)


# ------------------------------------------------------------------ the trainer and the store

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from scalinglab.train.corpus import synthetic_corpus
    path = tmp_path_factory.mktemp("corpus") / "markov.bin"
    synthetic_corpus(path, 60_000, vocab_size=32, n_documents=16, val_fraction=0.1, seed=0)
    return path


def _cfg(**kw):
    from scalinglab.arch.counting import ModelShape
    from scalinglab.train.trainer import TrainConfig
    shape = ModelShape(n_layers=1, d_model=32, n_heads=2, ffn_hidden=64, vocab_size=32, context_length=32)
    base = dict(shape=shape, tokens=60 * 8 * 32, batch_size=8, seq_len=32, lr=1e-2, eval_every=30,
                eval_tokens=2048, log_every=5, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def test_the_trainer_measures_the_noise_scale_without_changing_the_run(corpus, tmp_path):
    from scalinglab.train.trainer import train
    torch.set_num_threads(1)
    on = train(_cfg(noise_every=1), corpus, workdir=tmp_path / "on")
    off = train(_cfg(noise_every=0), corpus, workdir=tmp_path / "off")
    # the probe sets its gradient aside: the training losses are bitwise those of the unprobed run
    assert [c["train_loss"] for c in on.curve] == [c["train_loss"] for c in off.curve]
    assert on.points[-1]["val_loss"] == off.points[-1]["val_loss"]
    assert all(c["noise_g2"] is not None and c["noise_trace"] is not None for c in on.curve)
    assert all(c["noise_g2"] is None for c in off.curve)
    noise = on.extra["noise_scale"]
    assert noise["measurements"] == 60
    # B_simple is a ratio of positive mean estimates: tr Σ > 0 always; |G|² > 0 early in training
    assert noise["trace_mean"] > 0 and noise["g2_mean"] > 0
    assert noise["b_simple_sequences"] == pytest.approx(noise["trace_mean"] / noise["g2_mean"])
    assert off.extra["noise_scale"]["measurements"] == 0 and off.extra["noise_scale"]["b_simple_sequences"] is None


_V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, budget REAL NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, error TEXT, created REAL NOT NULL,
    started REAL, finished REAL, wall_seconds REAL, hardware TEXT, workdir TEXT, position INTEGER NOT NULL);
CREATE TABLE points (run_id TEXT NOT NULL REFERENCES runs(run_id), branch INTEGER NOT NULL, tokens REAL NOT NULL,
    loss REAL NOT NULL, flops REAL NOT NULL, flops_6nd REAL NOT NULL, params REAL NOT NULL,
    params_total REAL, step INTEGER, UNIQUE (run_id, branch));
CREATE TABLE curves (run_id TEXT NOT NULL REFERENCES runs(run_id), step INTEGER NOT NULL, branch INTEGER NOT NULL,
    tokens REAL NOT NULL, train_loss REAL, val_loss REAL, lr REAL, UNIQUE (run_id, branch, step));
"""


def test_a_version_1_store_is_migrated_and_keeps_its_curves(tmp_path):
    from scalinglab.data.store import SCHEMA_VERSION, SweepStore, curves_frame, runs_frame
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(_V1_SCHEMA)
    config = {"train": {"lr": 1e-3, "batch_size": 4, "seq_len": 16, "seed": 0}}
    con.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('sweep', '{}')")
    con.execute("INSERT INTO runs(run_id, budget, config, status, created, position) VALUES "
                "('r0', 1e12, ?, 'done', 0, 0)", (json.dumps(config),))
    con.execute("INSERT INTO points VALUES ('r0', -1, 6400, 3.1, 1e12, 1e12, 1e4, 2e4, 100)")
    con.execute("INSERT INTO curves VALUES ('r0', 50, -1, 3200, 3.5, NULL, 1e-3)")
    con.commit()
    con.close()

    with SweepStore(path) as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION) == "2"
        cols = [r[1] for r in store.con.execute("PRAGMA table_info(curves)")]
        assert cols[-2:] == ["noise_g2", "noise_trace"]
        # a run finished after the migration writes its noise columns; the old row keeps NULLs
        store.record_done("r0", [{"tokens": 6400, "val_loss": 3.1, "flops": 1e12, "flops_6nd": 1e12,
                                  "params": 1e4, "branch": None, "step": 100}],
                          [{"step": 100, "tokens": 6400, "train_loss": 3.2, "lr": 1e-4, "branch": None,
                            "noise_g2": 0.5, "noise_trace": 40.0}], wall_seconds=1.0, hardware={})
    curves = curves_frame(path)
    assert curves["train_loss"].tolist() == [3.5, 3.2]
    assert np.isnan(curves["noise_g2"].iloc[0]) and curves["noise_trace"].iloc[1] == 40.0
    # the run's noise scale: tr Σ / |G|² over the late half of its curve (step 100 only) × 16 tokens
    assert runs_frame(path)["noise_scale"].iloc[0] == pytest.approx(40.0 / 0.5 * 16)
    with SweepStore(path) as store:                      # opening again is a no-op
        assert store.get_meta("schema_version") == "2"
