"""A synthetic dense + mixture-of-experts ladder for the README's MoE example (seeded, no download).

No public MoE run table is available offline, so the runs are generated from the joint MoE law with
the constants of Ludziejewski et al. 2025 (arXiv:2502.05172, Table 3): IsoFLOP ladders at 1e18-1e21
FLOPs, 7 active sizes each, for 1, 2, 4, 8, 16 and 32 experts, with 0.3% log-normal noise on the
loss.  ``params`` counts ACTIVE parameters; ``total_params`` follows the paper's appendix A.1.

    python examples/moe_ladder.py moe_ladder.csv
"""
from __future__ import annotations

import sys

from scalinglab.laws.moe import synthetic_moe_ladder


def main(path: str = "moe_ladder.csv") -> None:
    df = synthetic_moe_ladder(seed=0)
    df.to_csv(path, index=False)
    print(f"{len(df)} runs ({df['experts'].nunique()} expert counts x {df['flops'].nunique()} budgets) -> {path}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
