"""IsoFLOP sweep planner: budgets met with the exact FLOP counter, stated rules, clear errors."""
import math

import pytest

from scalinglab.sweep.plan import (MIN_STEPS, plan_sweep, smallest_workable_budget, write_plan)
from scalinglab.arch.counting import count_params, training_flops_per_token


def test_runs_hit_their_budget_with_the_exact_counter():
    plan = plan_sweep([1e11, 1e12, 1e15], sizes_per_budget=5)
    assert {r.budget for r in plan.runs} == {1e11, 1e12, 1e15}
    for run in plan.runs:
        exact = training_flops_per_token(run.shape) * run.tokens
        assert run.flops == pytest.approx(exact)
        assert abs(exact / run.budget - 1) < 0.01, run.run_id           # within 1% of C
        assert run.params == count_params(run.shape).non_embedding
        assert run.flops_6nd == pytest.approx(6 * run.params * run.tokens)
        assert run.tokens % (run.batch_size * run.seq_len) == 0
        assert run.tokens // (run.batch_size * run.seq_len) >= MIN_STEPS
        assert 3e-4 <= run.lr <= 1e-2
    # sizes straddle the stated optimum N0 = sqrt(C/120) and grow with the budget
    for budget in (1e12, 1e15):
        sizes = sorted(r.params for r in plan.runs if r.budget == budget)
        n0 = math.sqrt(budget / 120)
        assert sizes[0] < n0 < sizes[-1]
        assert len(sizes) == 5
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)
    assert len({r.seed for r in plan.runs}) == len(plan.runs)


def test_min_max_params_and_wsd_branches():
    plan = plan_sweep([1e13], sizes_per_budget=4, min_params=2e5, max_params=3e5, schedule="wsd")
    assert all(1.5e5 < r.params < 3.5e5 for r in plan.runs)   # shape rounding: ~10%
    assert all(r.wsd_branch_tokens and max(r.wsd_branch_tokens) < r.tokens for r in plan.runs)
    assert any("distinct sizes" in w for w in plan.warnings)   # clipped targets collapse onto one shape


def test_too_small_budget_names_the_smallest_workable_one():
    smallest = smallest_workable_budget()
    with pytest.raises(ValueError, match=r"Use budgets >= ") as info:
        plan_sweep([smallest / 3])
    assert f"{smallest:.2g}" in str(info.value)
    plan_sweep([smallest * 1.5], sizes_per_budget=1)            # just above it plans


@pytest.mark.parametrize("kwargs, match", [
    ({"sizes_per_budget": 0}, "--sizes-per-budget"),
    ({"schedule": "linear"}, "--schedule"),
    ({"min_params": 1e6, "max_params": 1e5}, "--min-params"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_sweep([1e12], **kwargs)


def test_corpus_sidecar_sets_vocab_and_epochs(tmp_path):
    from scalinglab.train.corpus import synthetic_corpus
    info = synthetic_corpus(tmp_path / "c.bin", n_tokens=20_000, vocab_size=64)
    plan = plan_sweep([1e11], sizes_per_budget=3, corpus=tmp_path / "c.bin")
    assert all(r.shape.vocab_size == 64 for r in plan.runs)
    assert all(r.epochs == pytest.approx(r.tokens / info.n_train) for r in plan.runs)
    assert any("repeat the corpus" in w for w in plan.warnings)


def test_write_plan_refuses_to_overwrite(tmp_path):
    plan = plan_sweep([1e11], sizes_per_budget=2)
    store = write_plan(plan, tmp_path / "s.db")
    assert [r.run_id for r in store.runs()] == [r.run_id for r in plan.runs]
    assert store.counts()["pending"] == len(plan.runs)
    store.close()
    with pytest.raises(ValueError, match="already exists"):
        write_plan(plan, tmp_path / "s.db")
    with pytest.raises(ValueError, match=r"\.db or \.sqlite"):
        write_plan(plan, tmp_path / "s.txt")


def test_rough_optimum_counts_the_budget_exactly():
    from scalinglab.arch.shape import shape_for_params
    from scalinglab.sweep.plan import head_dim_for, rough_optimal_size
    from scalinglab.arch.counting import training_flops_per_token

    # N0 solves C = F(N0) * 20 * N0 with F the exact FLOPs per token; F >= 6N, so N0 <= sqrt(C/120),
    # and at large N (head and attention negligible) it approaches sqrt(C/120).
    for budget, vocab in ((1e12, 257), (1e21, 32768)):
        n0 = rough_optimal_size(budget, vocab, 128 if budget < 1e15 else 2048)
        assert n0 <= (budget / 120) ** 0.5
        shape = shape_for_params(n0, vocab_size=vocab, context_length=128 if budget < 1e15 else 2048,
                                 head_dim=head_dim_for(n0), ffn_multiple=16)
        assert training_flops_per_token(shape) * 20 * n0 == pytest.approx(budget, rel=0.05)
    assert rough_optimal_size(1e21, 32768, 2048) > 0.8 * (1e21 / 120) ** 0.5


def test_corpus_too_small_for_the_context_is_refused_with_the_counts(tmp_path):
    from scalinglab.train.corpus import prepare_corpus
    (tmp_path / "a.txt").write_text("hello world\n")
    (tmp_path / "b.txt").write_text("hi there\n")
    prepare_corpus([tmp_path / "a.txt", tmp_path / "b.txt"], tmp_path / "tiny.bin", val_fraction=0.5)
    with pytest.raises(ValueError) as info:
        plan_sweep([3e9], corpus=tmp_path / "tiny.bin")
    msg = str(info.value)
    assert str(tmp_path / "tiny.bin") in msg and "23 tokens" in msg and "context 128" in msg
    assert "129 tokens" in msg


def test_runs_repeating_the_corpus_too_often_are_refused(tmp_path):
    from scalinglab.sweep.plan import MAX_EPOCHS
    from scalinglab.train.corpus import synthetic_corpus
    info = synthetic_corpus(tmp_path / "c.bin", n_tokens=20_000, vocab_size=64)
    with pytest.raises(ValueError) as err:
        plan_sweep([1e12], sizes_per_budget=3, corpus=tmp_path / "c.bin")
    msg = str(err.value)
    assert f"--max-epochs {MAX_EPOCHS:g}" in msg and f"{info.n_train:,} training tokens" in msg
    assert "204 epochs" in msg and "Muennighoff" in msg
    plan = plan_sweep([1e12], sizes_per_budget=3, corpus=tmp_path / "c.bin", max_epochs=math.inf)
    assert max(r.epochs for r in plan.runs) > MAX_EPOCHS                     # allowed on request ...
    assert any("repeat the corpus" in w for w in plan.warnings)               # ... and still warned
    plan_sweep([1e12], sizes_per_budget=3, corpus=tmp_path / "c.bin", max_epochs=300)
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="--max-epochs"):
            plan_sweep([1e11], max_epochs=bad)
