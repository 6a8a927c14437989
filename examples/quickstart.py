"""The Python API end to end on the built-in synthetic ladder (no files needed).

    python examples/quickstart.py
"""
import scalinglab as sl

runs = sl.load_runs(sl.synthetic_ladder(seed=0))          # or sl.load_runs("runs.csv", mapping={...})
fit = sl.fit(runs, "chinchilla")                            # summed Huber (delta=1e-3) on log-loss, valley weights
print(fit.summary())

fit = sl.bootstrap(runs, "chinchilla", n=200, unit="point", progress=False, budgets=(1e21,))
lo, hi = fit.bootstrap.ci["a"]
print(f"a = beta/(alpha+beta): 90% CI [{lo:.3f}, {hi:.3f}]")

fit.calibration = sl.calibrate_fit(fit, runs)              # prediction intervals from the ladder's rollout
pred, pi_lo, pi_hi = fit.prediction_interval({"params": [3e9], "tokens": [6e10]})
print(f"loss at N=3e9, D=6e10: {pred[0]:.3f}, 90% PI [{pi_lo[0]:.3f}, {pi_hi[0]:.3f}]")

iso = sl.isoflop_approach2(runs, n_bootstrap=200)            # Hoffmann approach 2
print(f"approach 2: N* ~ C^{iso.a:.3f}  CI [{iso.a_ci[0]:.3f}, {iso.a_ci[1]:.3f}]")

check = sl.validate_holdout(runs, "chinchilla", holdout="largest")
print(check.summary())

plan = sl.plan(fit, budget=1e21, isoflop=iso, gpu="h100", mfu=0.4, gpus=8)
print(plan.summary())
fit.to_json("fit.json")                                     # reload with sl.FitResult.from_json("fit.json")
sl.build_report(runs, n_bootstrap=100).write("report.html")   # the report of `scalinglab report`
