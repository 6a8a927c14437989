"""Train the two CPU curves the loss-curve law is validated on (issue 14, part 1).

One small model (2 layers, d_model 64, byte tokens), the same tokens, data order and seed,
trained twice: once with warmup-stable-decay (20% linear cooldown) and once with cosine (down to
10% of the peak).  Every step's learning rate and training loss are written to
``examples/schedule_curves.csv`` (columns run, step, lr, loss), which the README example, the
tests and ``benchmarks/bench_schedule.py`` read without training.  About 3 minutes on 2 CPU cores.

    python benchmarks/train_schedule_curves.py [--out examples/schedule_curves.csv]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

STEPS = 3000
SEQ_LEN, BATCH = 64, 16
PEAK_LR = 3e-3


def main() -> None:
    from scalinglab.train.corpus import prepare_corpus
    from scalinglab.arch.counting import ModelShape
    from scalinglab.train.trainer import TrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "examples" / "schedule_curves.csv"))
    args = ap.parse_args()
    shape = ModelShape(n_layers=2, d_model=64, n_heads=4, ffn_hidden=176, vocab_size=257, context_length=SEQ_LEN)
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.bin"
        prepare_corpus(None, corpus, max_bytes=5_000_000, seed=0)
        for schedule in ("wsd", "cosine"):
            cfg = TrainConfig(shape=shape, tokens=STEPS * SEQ_LEN * BATCH, batch_size=BATCH, seq_len=SEQ_LEN,
                              lr=PEAK_LR, schedule=schedule, cooldown_fraction=0.2, seed=0, device="cpu",
                              log_every=1, eval_every=STEPS, noise_every=0)
            t0 = time.time()
            res = train(cfg, corpus, workdir=Path(tmp) / schedule)
            print(f"{schedule}: {res.status}, {len(res.curve)} steps, {time.time() - t0:.0f} s, "
                  f"final train loss {res.curve[-1]['train_loss']:.4f}")
            frames.append(pd.DataFrame({"run": schedule, "step": [e["step"] for e in res.curve],
                                        "lr": [e["lr"] for e in res.curve],
                                        "loss": [round(e["train_loss"], 5) for e in res.curve]}))
    out = pd.concat(frames, ignore_index=True)
    out.to_csv(args.out, index=False, float_format="%.6g")
    print(f"wrote {args.out}: {len(out)} rows")


if __name__ == "__main__":
    main()
