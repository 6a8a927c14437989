"""Published numbers the package is checked against, each with its source.

Kept in one place so that the tests and the reproduction scripts cite the same figures.
"""
from __future__ import annotations

# Porian, Wortsman, Jitsev, Schmidt, Carmon 2024, "Resolving Discrepancies in Compute-Optimal
# Scaling of Language Models": exponent a of N*(C) from their IsoFLOP analysis, per
# configuration of ../shared/data/porian_isoflops.csv (RefinedWeb = rw, OpenWebText2 = owt2).
# The config strings encode the step of their Kaplan -> Chinchilla progression: long warmup +
# Kaplan decay + Kaplan count; standard count; short warmup; Chinchilla (cosine) decay; tuned
# hyperparameters with constant LR.
PORIAN_N_OPT_EXPONENTS = {
    "rw/base/warmup=long/decay=kaplan/count=kaplan": 0.834,
    "rw/base/warmup=long/decay=kaplan/count=standard": 0.701,
    "rw/base/warmup=short/decay=kaplan/count=standard": 0.604,
    "rw/base/warmup=short/decay=chinchilla/count=standard": 0.571,
    "rw/tuned/warmup=short/decay=const/count=standard": 0.497,
    "owt2/base/warmup=long/decay=kaplan/count=kaplan": 0.870,
    "owt2/base/warmup=long/decay=kaplan/count=standard": 0.700,
    "owt2/base/warmup=short/decay=kaplan/count=standard": 0.602,
    "owt2/base/warmup=short/decay=chinchilla/count=standard": 0.569,
    "owt2/tuned/warmup=short/decay=const/count=standard": 0.518,
}
