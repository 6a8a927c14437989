"""Model shapes that split over --tensor-parallel K (issue 18, part 5), and `plan -o`.

What is checked, and where each number comes from:
- the rules of arch/shape.py's docstring: n_heads a multiple of K and of its granularity
  (any count to 7, even to 14, by 4 to 28, then multiples of 8), ffn_hidden a multiple of
  64·K within 10% of 8/3·d_model, the exact count of train/counting (its formula is
  re-derived here, not imported);
- the count error against the rule this module replaced (d_model any multiple of head_dim,
  ffn_hidden 8/3·d_model rounded to a multiple of 64, per depth the closest width, 0.5% count
  tolerance, aspect band a factor 2 around 64-128), re-implemented here from its docstring:
  the new rules must hit N* at least as closely, range by range, from 1e6 to 1e12 parameters;
- the 107 heads the old rule gave at N* = 2.976e10 (the README's plan at 1e23 FLOPs);
- Epoch AI's refit of Chinchilla (Besiroglu et al. 2024: E = 1.8172, A = 482.01, B = 2085.43,
  alpha = 0.3478, beta = 0.3658) as the fit the CLI plans from.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from cli_helpers import squeezed
from scalinglab.cli import app
from scalinglab.arch.shape import (ShapeRules, TensorParallelError, allowed_head_counts, default_aspect_ratio,
                                       head_granularity, search_shape)

runner = CliRunner()
EPOCH = dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)
TARGETS = np.logspace(6, 12, 241)          # 40 per decade, 1e6 .. 1e12 non-embedding parameters


def is_prime(n: int) -> bool:
    return n > 1 and all(n % p for p in range(2, int(math.isqrt(n)) + 1))


def non_embedding(n_layers: int, d: int, f: int) -> int:
    # arch/counting.py's docstring: n_layers (4 d^2 + 3 d ffn + 2 d) + d (final norm)
    return n_layers * (4 * d * d + 3 * d * f + 2 * d) + d


def old_rule(n: float, head_dim: int = 64, max_layers: int = 512):
    """(relative count error, n_heads) of the rule before tensor parallelism, from its docstring:
    for every depth the width (any multiple of head_dim) whose count is closest; among shapes
    within 0.5% and a factor 2 of the target aspect, the closest aspect; else the closest count
    in the band; else the closest count."""
    a = default_aspect_ratio(n)
    heads = np.arange(1, int(math.sqrt(n / 12) / head_dim) + 3)
    d = heads * head_dim
    f = np.maximum(64, np.round(8 / 3 * d / 64) * 64)
    per_layer = 4 * d * d + 3 * d * f + 2 * d
    depth = np.arange(1, max_layers + 1)
    gaps = np.abs(depth[:, None] * per_layer[None, :] + d[None, :] - n)
    k = np.argmin(gaps, axis=1)
    over = np.flatnonzero((k == 0) & (depth * per_layer[0] + d[0] > n) & (depth > 1))
    keep = depth <= (depth[over[0]] if len(over) else max_layers)
    depth, k = depth[keep], k[keep]
    gap, aspect_gap = gaps[depth - 1, k], np.abs(np.log(d[k] / depth / a))
    in_band = aspect_gap <= math.log(2) + 1e-12
    close = in_band & (gap <= 0.005 * n)
    pool, keys = ((close, (gap, aspect_gap)) if close.any() else
                  (in_band, (aspect_gap, gap)) if in_band.any() else (np.ones_like(in_band), (aspect_gap, gap)))
    idx = np.flatnonzero(pool)
    best = idx[np.lexsort(tuple(key[idx] for key in keys))[0]]
    return gap[best] / n, int(heads[k[best]])


def test_granularity_rule_as_stated():
    assert allowed_head_counts(1, 64) == [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64]
    assert allowed_head_counts(2, 32) == [2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32]
    assert allowed_head_counts(8, 64) == [8, 16, 24, 32, 40, 48, 56, 64]
    assert allowed_head_counts(3, 100) == [3, 6, 12, 24, 48, 72, 96]
    assert [head_granularity(h) for h in (7, 8, 15, 16, 31, 32, 107, 1000)] == [1, 2, 2, 4, 4, 8, 8, 8]
    # no allowed count above 7 is prime, for any K
    assert not any(is_prime(h) and h > 7 for k in range(1, 17) for h in allowed_head_counts(k, 2048))


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_every_shape_splits_over_k(k):
    refused = 0
    for n in TARGETS[::3]:
        try:
            res = search_shape(n, tensor_parallel=k)
        except TensorParallelError as exc:
            # refused only when no K-way shape comes within 5%, and the message says so
            assert k > 1 and abs(exc.result.relative_error) > 0.05 and "tensor_parallel" in str(exc)
            refused += 1
            continue
        s = res.shape
        assert s.n_heads % k == 0 and s.n_heads % head_granularity(s.n_heads) == 0
        assert s.d_model == s.n_heads * 64 and s.d_model % k == 0
        assert s.ffn_hidden % (64 * k) == 0
        # the nearest multiple of 64·K to 8/3·d_model (half a step away at most), or another within 10%
        nominal = max(64 * k, round(8 / 3 * s.d_model / (64 * k)) * 64 * k)
        assert s.ffn_hidden == nominal or abs(s.ffn_hidden / (8 / 3 * s.d_model) - 1) <= 0.1
        assert not (is_prime(s.n_heads) and s.n_heads > 7)
        assert res.non_embedding == non_embedding(s.n_layers, s.d_model, s.ffn_hidden)
        assert abs(res.relative_error) <= 0.05 or k == 1
        assert res.to_dict()["tensor_parallel"] == k
    if k == 1:
        assert refused == 0                          # rule 5 refuses only K > 1


def test_the_old_rules_107_heads_are_gone():
    n_star = 2.976e10                                   # the README's plan at 1e23 FLOPs
    _, heads = old_rule(n_star)
    assert heads == 107 and is_prime(heads)             # what `scalinglab plan` printed before
    new = search_shape(n_star).shape
    assert new.n_heads % 8 == 0
    assert search_shape(n_star, tensor_parallel=8).shape.n_heads % 8 == 0


def test_count_error_no_worse_than_the_old_rule_range_by_range():
    new = np.array([abs(search_shape(n).relative_error) for n in TARGETS])
    old = np.array([old_rule(n)[0] for n in TARGETS])
    for lo, hi in [(1e6, 1e7), (1e7, 1e8), (1e8, 1e9), (1e9, 1e12)]:
        band = (TARGETS >= lo) & (TARGETS <= hi * (1 + 1e-9))
        assert new[band].max() <= old[band].max() + 1e-12, (lo, new[band].max(), old[band].max())
    # from 1e8 up every target is met within the 0.5% count tolerance
    assert new[TARGETS >= 1e8].max() <= 0.005


def test_with_the_nominal_mlp_the_old_rule_is_kept_wherever_its_head_count_is_allowed():
    # sweep ladders plan with ffn_tolerance=0 so that a ladder planned before keeps its shapes
    kept = 0
    for n in TARGETS[::4]:
        error, heads = old_rule(n)
        if heads % head_granularity(heads):
            continue
        res = search_shape(n, ffn_tolerance=0.0)
        assert res.shape.n_heads == heads and abs(res.relative_error) == pytest.approx(error, abs=1e-15), n
        kept += 1
    assert kept > 20


def test_a_count_within_tolerance_is_found_whenever_one_exists():
    # brute force over every shape the rules allow (K = 2): if any in-band shape is within 0.5%,
    # the search returns one within 0.5%
    rules = ShapeRules(tensor_parallel=2)
    for n in (3.3e8, 1.7e9, 6.1e9):
        a = default_aspect_ratio(n)
        found = False
        for h in allowed_head_counts(2, 400):
            d = h * 64
            for f in range(128, int(8 / 3 * d * 1.1) + 1, 128):
                if abs(f / (8 / 3 * d) - 1) > 0.1:
                    continue
                for layers in range(max(1, math.ceil(d / (2 * a))), math.floor(2 * d / a) + 1):
                    if abs(non_embedding(layers, d, f) / n - 1) <= 0.005:
                        found = True
        assert found and abs(search_shape(n, rules).relative_error) <= 0.005


def test_impossible_tensor_parallel_is_refused_naming_the_option():
    with pytest.raises(TensorParallelError, match=r"tensor_parallel=8: .*one layer of 8 heads .* already has") as exc:
        search_shape(1e6, tensor_parallel=8)
    assert exc.value.smallest_params == non_embedding(1, 512, 1536)
    with pytest.raises(TensorParallelError, match="tensor_parallel=4 is the largest that reaches it"):
        search_shape(5e6, tensor_parallel=8)
    with pytest.raises(ValueError, match="tensor_parallel must be a positive whole number"):
        search_shape(1e9, tensor_parallel=0)
    with pytest.raises(ValueError, match="tensor_parallel must be at most 1024"):
        search_shape(1e9, tensor_parallel=4096)


@pytest.fixture(scope="module")
def fit_json(tmp_path_factory):
    from scalinglab.fitting.result import FitResult
    from scalinglab.laws import get_law

    law = get_law("chinchilla")
    fit = FitResult(law="chinchilla", params=dict(EPOCH), theta=law.from_public(EPOCH), objective=0.0, loss="huber",
                    delta=1e-3, n_points=0, variables=tuple(law.variables), converged=True, n_starts=1,
                    n_starts_in_best_basin=1, message="", residuals=np.array([]))
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    fit.to_json(path)
    return path


def test_plan_cli_tensor_parallel_and_output_file(fit_json, tmp_path):
    out = tmp_path / "plan.json"
    both = runner.invoke(app, ["plan", str(fit_json), "--budget", "1e23", "--tensor-parallel", "8", "--json",
                               "-o", str(out)])
    assert both.exit_code == 0, both.output
    printed = json.loads(both.stdout)
    assert json.loads(out.read_text()) == printed            # -o writes the document --json prints
    shape = printed["shape"]["shape"]
    assert shape["n_heads"] % 8 == 0 and shape["ffn_hidden"] % 512 == 0
    assert printed["shape"]["tensor_parallel"] == 8 and printed["shape"]["rules"]["tensor_parallel"] == 8
    table = runner.invoke(app, ["plan", str(fit_json), "--budget", "1e23", "--tensor-parallel", "8", "-o",
                                str(tmp_path / "again.json")])
    assert table.exit_code == 0 and "Model shape" in table.stdout and "tensor parallel 8" in table.stdout
    assert squeezed(f"plan written to {tmp_path / 'again.json'}") in squeezed(table.stdout)
    assert json.loads((tmp_path / "again.json").read_text())["shape"] == printed["shape"]


@pytest.mark.parametrize("args, needles", [
    (["--budget", "1e16", "--tensor-parallel", "8"], ["--tensor-parallel 8:", "--head-dim"]),
    (["--budget", "1e23", "--tensor-parallel", "0"], ["--tensor-parallel 0", ">= 1"]),
    (["--budget", "1e23", "-o", "plan.csv"], ["-o plan.csv", ".json"]),
])
def test_plan_cli_refusals_are_one_line(fit_json, tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["plan", str(fit_json), *args])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert res.output.startswith("error: ") and all(n in res.output for n in needles), res.output
    assert not (tmp_path / "plan.csv").exists()


def test_sweep_plan_cli_tensor_parallel(tmp_path):
    res = runner.invoke(app, ["sweep", "plan", "--budgets", "1e14,1e15", "--sizes-per-budget", "3",
                              "--tensor-parallel", "2", "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["settings"]["tensor_parallel"] == 2
    for run in plan["runs"]:
        shape = run["shape"]
        assert shape["n_heads"] % 2 == 0 and shape["ffn_hidden"] % 32 == 0   # ffn multiple 16 · K
    bad = runner.invoke(app, ["sweep", "plan", "--budgets", "3e11", "--tensor-parallel", "4", "--dry-run"])
    text = " ".join(bad.output.split())
    assert bad.exit_code == 2 and "--tensor-parallel 4" in text and "--min-params" in text
    assert "Traceback" not in bad.output
