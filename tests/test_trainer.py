"""The trainer: loss falls to the corpus's floor, WSD branches, exact resume, divergence."""
import shutil

import pytest

torch = pytest.importorskip("torch")

from scalinglab.train.corpus import synthetic_corpus  # noqa: E402
from scalinglab.arch.counting import ModelShape, count_params, training_flops_per_token  # noqa: E402
from scalinglab.train.trainer import TrainConfig, train  # noqa: E402

SHAPE = ModelShape(n_layers=2, d_model=32, n_heads=2, ffn_hidden=64, vocab_size=32, context_length=32)
TPS = 8 * 32   # tokens per step


pytestmark = pytest.mark.usefixtures("one_torch_thread")     # conftest.py


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "markov.bin"
    synthetic_corpus(path, 200_000, vocab_size=32, n_documents=32, val_fraction=0.1, seed=0)
    return path


def cfg(**kw):
    base = dict(shape=SHAPE, tokens=240 * TPS, batch_size=8, seq_len=32, lr=1e-2, schedule="wsd",
                warmup_tokens=10 * TPS, wsd_branch_tokens=(60 * TPS, 120 * TPS), eval_every=40,
                eval_tokens=4096, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def wsd_run(corpus, tmp_path_factory):
    events = []
    with _threads(1):
        result = train(cfg(), corpus, workdir=tmp_path_factory.mktemp("wsd"), on_event=events.append)
    return result, events


def test_loss_falls_to_the_entropy_floor(wsd_run, corpus):
    from scalinglab.train.corpus import load_corpus_info
    floor = load_corpus_info(corpus).entropy_floor
    result, _ = wsd_run
    assert result.status == "done"
    first = result.curve[0]["train_loss"]
    final = result.points[-1]["val_loss"]
    assert first == pytest.approx(torch.log(torch.tensor(32.0)).item(), abs=0.1)   # uniform start
    # no model beats the entropy rate (up to eval noise); a 2-layer one gets close to it
    assert floor - 0.03 < final < floor + 0.15


def test_wsd_gives_one_point_per_branch(wsd_run):
    result, events = wsd_run
    pts = result.points
    assert [p["branch"] for p in pts] == [0, 1, None]
    assert [p["tokens"] for p in pts] == [60 * TPS, 120 * TPS, 240 * TPS]
    assert pts[0]["val_loss"] > pts[1]["val_loss"] > pts[2]["val_loss"]
    n = count_params(SHAPE).non_embedding
    fpt = training_flops_per_token(SHAPE)     # seq_len == context_length here
    for p in pts:
        assert p["params"] == n
        assert p["flops"] == fpt * p["tokens"] and p["flops_6nd"] == 6 * n * p["tokens"]
    assert [e for e in events if e["type"] == "point"] == [{"type": "point", **p} for p in pts]
    # each branch decays the lr to ~0 at its own end
    for b, end in ((0, 60), (1, 120)):
        branch_curve = [c for c in result.curve if c["branch"] == b]
        assert branch_curve[-1]["step"] == end and branch_curve[-1]["lr"] < 1e-2 / 10


def test_branch_point_equals_a_separate_run_of_that_length(wsd_run, corpus, tmp_path):
    result, _ = wsd_run
    alone = train(cfg(tokens=60 * TPS, wsd_branch_tokens=()), corpus, workdir=tmp_path)
    assert alone.points[0]["val_loss"] == result.points[0]["val_loss"]   # bitwise


def test_resume_after_interruptions_is_exact(wsd_run, corpus, tmp_path):
    result, _ = wsd_run
    # (branch, step) at which to "crash", in training order: branch 0 cooldown (steps 48-60),
    # the stable phase, branch 1 cooldown (steps 96-120), the main run's own cooldown
    stops = iter([(0, 55), (None, 90), (1, 110), (None, 230)])
    stop = next(stops)

    def crash(event):
        if event["type"] == "curve" and (event["branch"], event["step"]) == stop:
            raise KeyboardInterrupt

    n_runs = 0
    while True:
        n_runs += 1
        try:
            resumed = train(cfg(), corpus, workdir=tmp_path, on_event=crash)
            break
        except KeyboardInterrupt:
            stop = next(stops, None)
    assert n_runs == 5
    assert resumed.points == result.points
    assert _losses(resumed.curve) == _losses(result.curve)
    # a finished workdir returns its result without training again
    assert train(cfg(), corpus, workdir=tmp_path, on_event=crash).points == result.points


def test_resume_refuses_a_different_config_and_restarts_from_scratch(corpus, tmp_path):
    short = dict(tokens=20 * TPS, wsd_branch_tokens=(), warmup_tokens=TPS)
    first = train(cfg(**short), corpus, workdir=tmp_path)
    with pytest.warns(UserWarning, match=r"refused: it belongs to another config .*differs in lr.*from scratch"):
        again = train(cfg(**short, lr=1e-3), corpus, workdir=tmp_path)
    fresh = train(cfg(**short, lr=1e-3), corpus, workdir=tmp_path / "fresh")
    assert again.points == fresh.points and again.points != first.points   # trained anew, not resumed
    assert (tmp_path / "ckpt.pt.refused").is_file()                         # the other run's state is kept


def test_divergence_returns_status_diverged(corpus, tmp_path):
    result = train(cfg(lr=1e6, schedule="cosine", wsd_branch_tokens=(), warmup_tokens=0),
                   corpus, workdir=tmp_path)
    assert result.status == "diverged"
    assert "lower the learning rate" in result.message
    assert result.points == [] and len(result.curve) < 240


def test_cosine_and_muon_train(corpus, tmp_path):
    for opt in ("adamw", "muon"):
        shutil.rmtree(tmp_path, ignore_errors=True)
        r = train(cfg(schedule="cosine", optimizer=opt, tokens=60 * TPS, wsd_branch_tokens=(),
                      lr=1e-2), corpus, workdir=tmp_path)
        assert r.status == "done" and len(r.points) == 1
        assert r.points[0]["val_loss"] < r.curve[0]["train_loss"] - 0.5, opt
        assert r.curve[-1]["lr"] == pytest.approx(1e-3, rel=0.05)     # cosine ends at 10% of peak


@pytest.mark.parametrize("bad, match", [
    (dict(seq_len=64), "context_length"),
    (dict(wsd_branch_tokens=(10**9,)), "strictly between"),
    (dict(schedule="linear"), "schedule"),
    (dict(wsd_branch_tokens=(2 * TPS,)), "inside the 10-step warmup"),
])
def test_bad_configs(bad, match, corpus, tmp_path):
    with pytest.raises(ValueError, match=match):
        train(cfg(**bad), corpus, workdir=tmp_path)


def test_model_vocab_must_cover_the_corpus(corpus, tmp_path):
    small = ModelShape(1, 16, 2, 32, 16, 32)
    with pytest.raises(ValueError, match="vocab 32"):
        train(cfg(shape=small), corpus, workdir=tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_bf16_compiled_run(corpus, tmp_path):
    shape = ModelShape(2, 64, 4, 128, 32, 64)
    r = train(TrainConfig(shape=shape, tokens=200 * 16 * 64, batch_size=16, seq_len=64, lr=1e-2,
                          device="cuda", compile=True, loss_chunk=256, eval_tokens=8192),
              corpus, workdir=tmp_path)
    assert r.status == "done" and r.hardware["precision"] == "bf16"
    assert r.points[0]["val_loss"] < 2.2


def _losses(curve):
    return [(c["step"], c["branch"], c["train_loss"], c["val_loss"]) for c in curve]


class _threads:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)
