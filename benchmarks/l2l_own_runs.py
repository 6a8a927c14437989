"""Train a small CPU ladder and score every model on three datasets, for loss-to-loss (issue 14, part 2).

Brandfonbrener et al. 2024 ("Loss-to-Loss Prediction", arXiv:2411.12925) relate one model's
losses on different datasets through L_y = K (L_x - E_x)^kappa + E_y.  No shared data set scores
one model on two sets, so this script makes one on the project's own CPU models:

* three byte-level token files (``prepare_corpus``, tokenizer "byte"): the training corpus (the
  built-in one: Python sources installed with this interpreter, first 5 MB, 5% of the documents
  held out for validation) and two eval-only corpora of another kind, read from this machine:
  ``prose``, the English Perl documentation (``/usr/share/perl/*/**/*.pod``), and ``c``, the
  C headers directly under ``/usr/include`` (each the first 400 kB of UTF-8 files in sorted
  order; half the documents in the evaluated split);
* seven models, 2 layers, d_model 16 ... 128 (6k ... 396k non-embedding parameters, 66x), each
  trained on the same 1,024,000 tokens (1000 steps of 16 x 64, cosine, peak lr 3e-3 x min(1,
  48 / d_model), seed 0)
  with ``train/trainer.py``;
* every model scored at steps 250, 500, 750 and 1000 (a checkpoint each) on the first 32,768
  tokens of each corpus's evaluated split: ``loss_train_val`` (the training corpus's validation
  split, equal to the trainer's own validation loss), ``loss_prose`` and ``loss_c``.

The table (one row per model and checkpoint) goes to ``examples/l2l_own_runs.csv``, read by the
tests, the README example and ``benchmarks/bench_l2l_own.py`` without training.  About 4 minutes
on one CPU thread (212 s on the project's shared 2-core box).

    python benchmarks/l2l_own_runs.py [--out examples/l2l_own_runs.csv]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (16, 24, 32, 48, 64, 96, 128)
STEPS, CHECKPOINTS = 1000, 4
SEQ_LEN, BATCH, PEAK_LR, LR_WIDTH = 64, 16, 3e-3, 48
EVAL_TOKENS = 32_768
TRAIN_BYTES, EVAL_BYTES = 5_000_000, 400_000
COMMAND = "python benchmarks/l2l_own_runs.py"


def utf8_files(paths) -> list[Path]:
    """The files among ``paths`` that are UTF-8 text, in sorted order."""
    out = []
    for p in sorted(paths):
        try:
            p.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.append(p)
    return out


def eval_sources() -> dict[str, list[Path]]:
    pods = utf8_files(p for root in sorted(Path("/usr/share/perl").glob("5*")) for p in root.rglob("*.pod"))
    headers = utf8_files(Path("/usr/include").glob("*.h"))
    for name, files in (("prose", pods), ("c", headers)):
        if not files:
            raise SystemExit(f"no files for the {name!r} eval corpus on this machine "
                             f"(looked for /usr/share/perl/5*/**/*.pod and /usr/include/*.h)")
    return {"prose": pods, "c": headers}


def lr_of(width: int) -> float:
    """Peak learning rate: 3e-3 up to d_model 48, then 1/d_model (3e-3 made d_model 96 worse than
    64 on the same tokens, 1.98 vs 1.91 nats; 1.5e-3 gave it 1.85)."""
    return PEAK_LR * min(1.0, LR_WIDTH / width)


def shape_of(width: int):
    from scalinglab.arch.counting import ModelShape

    ffn = int(round(8 / 3 * width / 8)) * 8
    return ModelShape(n_layers=2, d_model=width, n_heads=4, ffn_hidden=ffn, vocab_size=257, context_length=SEQ_LEN)


def mean_loss(model, data, tokens: int = EVAL_TOKENS) -> float:
    """Mean next-token loss (nats) over the first ``tokens`` of a corpus's evaluated split, in
    the trainer's own windows and batches."""
    import torch

    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in data.val_batches(BATCH, SEQ_LEN, tokens):
            x, y = torch.from_numpy(x), torch.from_numpy(y)
            total += model(x, y).item() * y.numel()
            n += y.numel()
    return total / n


def score(ckpt: Path, shape, sets: dict) -> dict[str, float]:
    import torch

    from scalinglab.train.model import Transformer

    with torch.random.fork_rng():          # building the scoring model must not touch the run's RNG
        model = Transformer(shape)
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["model"])
    return {f"loss_{name}": mean_loss(model, data) for name, data in sets.items()}


def train_and_score(width: int, corpus: Path, sets: dict, workdir: Path) -> list[dict]:
    """Train one model; score it at each checkpoint (caught as the trainer writes them)."""
    from scalinglab.arch.counting import count_params, training_flops_per_token
    from scalinglab.train.trainer import TrainConfig, train

    shape = shape_of(width)
    every = STEPS // CHECKPOINTS
    cfg = TrainConfig(shape=shape, tokens=STEPS * SEQ_LEN * BATCH, batch_size=BATCH, seq_len=SEQ_LEN, lr=lr_of(width),
                      schedule="cosine", seed=0, device="cpu", eval_every=every, checkpoint_every=every,
                      eval_tokens=EVAL_TOKENS, noise_every=0)
    ckpt = workdir / "ckpt.pt"
    seen: dict[int, dict] = {}

    def catch(event):          # the checkpoint of step s is written just after its curve event
        if ckpt.exists():
            import torch

            step = int(torch.load(ckpt, map_location="cpu", weights_only=False)["state"]["step"])
            if step % every == 0 and step not in seen:
                seen[step] = score(ckpt, shape, sets)

    t0 = time.perf_counter()
    res = train(cfg, corpus, workdir=workdir, on_event=catch)
    if res.status != "done":
        raise SystemExit(f"d_model {width}: {res.status} ({res.message})")
    seen[STEPS] = score(ckpt, shape, sets)
    trainer_val = {e["step"]: e["val_loss"] for e in res.curve if e.get("val_loss") is not None}
    trainer_val[STEPS] = res.points[-1]["val_loss"]
    params = count_params(shape)
    fpt = training_flops_per_token(shape)
    rows = []
    for step in sorted(seen):
        losses = seen[step]
        if step in trainer_val and not np.isclose(losses["loss_train_val"], trainer_val[step], rtol=1e-5):
            raise SystemExit(f"d_model {width}, step {step}: scored {losses['loss_train_val']:.6f} but the trainer "
                             f"measured {trainer_val[step]:.6f} on the same validation tokens")
        tokens = step * SEQ_LEN * BATCH
        rows.append({"run": f"d{width}", "d_model": width, "lr": lr_of(width), "step": step, "params": params.non_embedding,
                     "params_total": params.total, "tokens": tokens, "flops": 6.0 * params.non_embedding * tokens,
                     "flops_exact": fpt * tokens, **losses})
    print(f"d_model {width:3d}: {params.non_embedding:7,d} params, {time.perf_counter() - t0:5.1f} s, final "
          + ", ".join(f"{k} {v:.4f}" for k, v in seen[STEPS].items()), flush=True)
    return rows


def main() -> None:
    import torch

    from scalinglab.train.corpus import TokenData, prepare_corpus

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "examples" / "l2l_own_runs.csv")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sources = eval_sources()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "train.bin"
        info = {"train_val": prepare_corpus(None, corpus, max_bytes=TRAIN_BYTES, val_fraction=0.05, seed=0)}
        for name, files in sources.items():
            info[name] = prepare_corpus(files, tmp / f"{name}.bin", max_bytes=EVAL_BYTES, val_fraction=0.5, seed=0)
        for name, i in info.items():
            print(f"{name}: {i.summary()}", flush=True)
        sets = {"train_val": TokenData(corpus), **{name: TokenData(tmp / f"{name}.bin") for name in sources}}
        rows = []
        for width in WIDTHS:
            rows += train_and_score(width, corpus, sets, tmp / f"d{width}")
    table = pd.DataFrame(rows)
    header = [f"# Made by `{COMMAND}` (scalinglab, torch {torch.__version__}, CPU, 1 thread): seven 2-layer byte-level",
              f"# models (d_model {', '.join(map(str, WIDTHS))}) trained on {STEPS * SEQ_LEN * BATCH:,} tokens of "
              f"the built-in Python corpus", "# (cosine, peak lr 3e-3 x min(1, 48/d_model), seed 0), scored at 4 checkpoints on 32,768 held-out "
              "tokens of: the training corpus's", "# validation split (loss_train_val), Perl's .pod documentation "
              "(loss_prose), C headers in /usr/include (loss_c).", "# params = non-embedding parameters, flops = "
              "6 x params x tokens, flops_exact = training FLOPs per token x tokens (arch/counting.py)."]
    args.out.write_text("\n".join(header) + "\n" + table.to_csv(index=False, float_format="%.6g"))
    print(f"wrote {args.out}: {len(table)} rows, {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
