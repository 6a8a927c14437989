"""``scalinglab demo``: the whole job on the built-in ladder, no files needed.

Fits the Chinchilla law (with a bootstrap), calibrates its prediction intervals on the
ladder's rollout, runs Hoffmann approach 2 on the same ladder, and plans a budget, saying
which approach placed N* and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DemoReport:
    description: str
    fit: object
    isoflop: object
    plan: object
    extra: dict = field(default_factory=dict)

    def sections(self) -> list[tuple[str, str]]:
        return [
            ("Data", self.description),
            ("Approach 3: Chinchilla law L(N,D) = E + A/N^alpha + B/D^beta", self.fit.summary()),
            ("Approach 2: IsoFLOP minima", self.isoflop.summary()),
            ("Plan", self.plan.summary()),
        ]

    def to_dict(self) -> dict:
        return {"data": self.description, "fit": self.fit.to_dict(), "isoflop": self.isoflop.to_dict(),
                "plan": self.plan.to_dict()}


def run_demo(*, budget: float = 1e21, n_bootstrap: int = 200, progress: bool = True,
             seed: int = 0, gpu: str = "h100", gpus: int = 8) -> DemoReport:
    from scalinglab.data.builtin import DEMO_DESCRIPTION, synthetic_ladder
    from scalinglab.data.readers import load_runs
    from scalinglab.fitting.bootstrap import bootstrap
    from scalinglab.fitting.calibration import calibrate_fit
    from scalinglab.fitting.approach2 import isoflop_approach2
    from scalinglab.planning.plan import plan

    runs = load_runs(synthetic_ladder(seed=seed))
    fit = bootstrap(runs, "chinchilla", n=n_bootstrap, unit="point", seed=seed, progress=progress,
                    budgets=(budget,))
    fit.calibration = calibrate_fit(fit, runs, progress=progress)
    iso = isoflop_approach2(runs, n_bootstrap=max(n_bootstrap, 200), seed=seed)
    result = plan(fit, budget, isoflop=iso, gpu=gpu, gpus=gpus)
    return DemoReport(description=DEMO_DESCRIPTION, fit=fit, isoflop=iso, plan=result)
