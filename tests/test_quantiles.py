"""util/quantiles: the normal, Student's t and chi-square quantiles in plain math agree with
scipy.stats' ppf (the reference implementation, imported here only) across levels and degrees of
freedom, and the CDFs they invert with scipy's cdf."""
from __future__ import annotations

import math

import pytest
from scipy import stats

from scalinglab.util.intervals import chi2_quantile, normal_quantile, t_quantile
from scalinglab.util.quantiles import chi2_cdf, normal_ppf, t_cdf, t_ppf

PS = (1e-4, 0.005, 0.025, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.975, 0.995, 0.9999)
DOFS = (1, 2, 3, 4, 5, 7, 8, 9, 30, 31, 200, 1001)


@pytest.mark.parametrize("p", PS)
def test_normal_quantile_matches_scipy(p):
    assert normal_quantile(p) == pytest.approx(stats.norm.ppf(p), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("dof", DOFS)
def test_t_quantile_and_cdf_match_scipy(dof):
    for p in PS:
        assert t_quantile(p, dof) == pytest.approx(stats.t.ppf(p, dof), rel=1e-10, abs=1e-12), p
    for x in (-40.0, -3.0, -0.5, 0.0, 0.7, 2.2, 12.0):
        assert t_cdf(x, dof) == pytest.approx(stats.t.cdf(x, dof), rel=1e-11, abs=1e-15), x


@pytest.mark.parametrize("dof", DOFS)
def test_chi2_quantile_and_cdf_match_scipy(dof):
    for p in PS:
        assert chi2_quantile(p, dof) == pytest.approx(stats.chi2.ppf(p, dof), rel=1e-10), p
    for x in (0.01, 0.5, dof / 2, dof, 2 * dof + 5):
        assert chi2_cdf(x, dof) == pytest.approx(stats.chi2.cdf(x, dof), rel=1e-11, abs=1e-15), x


def test_known_values_and_edges():
    # t with 1 dof is the Cauchy distribution: its 97.5% quantile is tan(0.475 π)
    assert t_ppf(0.975, 1) == pytest.approx(math.tan(0.475 * math.pi), rel=1e-12)
    assert normal_ppf(0.5) == pytest.approx(0.0, abs=1e-15)
    assert normal_ppf(1.0) == math.inf and normal_ppf(0.0) == -math.inf and chi2_quantile(0.0, 3) == 0.0
    with pytest.raises(ValueError, match="whole number"):
        t_quantile(0.9, 2.5)


def test_a_calibrated_fit_imports_neither_scipy_stats_nor_scipy_special():
    # scipy.stats came back into the fit path once through a Student-t bound (0.3-0.7 s of every
    # `scalinglab fit` process: benchmarks/RESULTS.md, issue 25 part 8); this pins the path clean
    import subprocess
    import sys

    code = ("import sys, scalinglab as sl\n"
            "fit = sl.fit(sl.synthetic_ladder())\n"
            "assert fit.calibration is not None, 'the fit was not calibrated'\n"
            "print(sorted(m for m in sys.modules if m in ('scipy.stats', 'scipy.special')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
