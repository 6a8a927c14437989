"""What a fit records of its data, as the planners read it (planning/fit_data.py), and the label of
its residuals in the summary (named by the space the law fits its target in)."""
from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from scalinglab.fitting.engine import fit_arrays
from scalinglab.laws import get_law
from scalinglab.planning.fit_data import fit_data_max_flops, fit_data_range, plan_calibration


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _sigmoid_fit():
    law = get_law("benchmark_sigmoid", fixed={"floor": 0.25})        # four-way multiple choice
    rng = np.random.default_rng(2)
    L = np.sort(rng.uniform(2.0, 4.5, 40))
    y = (0.25 + 0.75 / (1 + np.exp(4.0 * (L - 2.8)))) * np.exp(rng.normal(0, 0.002, L.size))
    return fit_arrays(law, L[:, None], y, n_refine=4), L, y


def test_a_logit_fit_labels_and_measures_its_residuals_in_logit_space():
    fit, L, y = _sigmoid_fit()
    line = next(s for s in fit.summary().splitlines() if "RMSE(" in s)
    assert line.startswith("    RMSE(logit resid) = ")
    shown = float(re.search(r"= (\S+)", line).group(1))
    rms = np.sqrt(np.mean((_logit(y) - _logit(fit.predict(L[:, None]))) ** 2))   # by definition, in logit space
    assert shown == pytest.approx(rms, rel=1e-3)


def test_a_loss_fit_keeps_the_log_label_in_its_column():
    law = get_law("power_n")
    N = np.geomspace(1e6, 1e9, 12)
    fit = fit_arrays(law, N[:, None], 1.7 + 400.0 * N ** -0.34, n_refine=4)
    assert "\n    RMSE(log resid)   = " in fit.summary()


def test_fit_data_range_skips_non_finite_values_and_missing_columns():
    fit = SimpleNamespace(diagnostics={"data_range": {"flops": [1e18, float("nan"), 3e20], "loss": []}})
    assert fit_data_range(fit, "flops") == (1e18, 3e20)
    assert fit_data_range(fit, "loss") is None and fit_data_range(fit, "params") is None
    assert fit_data_max_flops(SimpleNamespace(diagnostics={"data_range": {"flops": [1e18, 3e20]}})) == 3e20
    assert fit_data_max_flops(SimpleNamespace(data_max_flops=2e21, diagnostics={})) == 2e21


def test_plan_calibration_states_the_fallback_from_the_data_reach():
    fit = SimpleNamespace(calibration=None, diagnostics={"data_range": {"flops": [1e18, 3e20]}})
    cal = plan_calibration(fit)
    assert (cal.level, cal.data_max, cal.data_min, cal.n_budgets) == (0.9, 3e20, 1e18, 0)
    assert plan_calibration(fit, data_max_flops=5e20).data_max == 5e20          # the caller's reach wins
    isoflop = SimpleNamespace(budgets={"flops": np.array([1e17, 1e19])})
    bare = SimpleNamespace(calibration=None, diagnostics={})
    assert plan_calibration(bare) is None
    assert plan_calibration(bare, isoflop=isoflop).data_max == 1e19
    own = object()
    assert plan_calibration(SimpleNamespace(calibration=own)) is own
