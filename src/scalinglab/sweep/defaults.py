"""The sweep planner's default settings, in a module that imports nothing, so that the CLI can show
them in its help without loading the planner (and through it every law)."""
from __future__ import annotations

BYTE_VOCAB = 257                 # the byte tokenizer: 256 bytes + end-of-text
DEFAULT_CONTEXT = 128
MIN_STEPS = 50                   # a run shorter than this measures warmup, not a trained model
# FLOP/s for the time estimate: one CPU thread of a 2-core box trains 1e4-1.5e5-parameter models at
# 6e9-2.8e10 FLOP/s (measured, training only, quiet machine); evaluations and a loaded box cost more
DEFAULT_THROUGHPUT = 1e10
DEFAULT_CORPUS_TOKENS = 9_800_000  # the built-in sweep corpus: 10 MB of Python sources, byte tokens, 98% train
MAX_EPOCHS = 100.0               # passes over the corpus beyond which a plan is refused (see docstring)
