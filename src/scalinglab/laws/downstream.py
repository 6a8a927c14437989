"""Downstream metrics from loss: bounded targets fitted through the ``logit`` transform.

``downstream_error`` -- Gadre et al. 2024 ("Language models scale reliably with over-training
and on downstream tasks", arXiv:2403.08540), eq. 5: the average top-1 error over downstream
tasks as a function of the validation loss L,

    Err(L) = epsilon - k * exp(-gamma * L),

epsilon the error of a model that has learnt nothing (L -> inf), k and gamma how fast the error
falls as the loss does.  The target is a rate in (0, 1), so residuals are measured in logit
space; a prediction that the form would put outside (0, 1) is clipped to 1e-9 from the edge.

``benchmark_sigmoid`` -- one benchmark's accuracy as a sigmoid in loss with a chance floor,

    acc(L) = floor + (1 - floor) * sigmoid(-slope * (L - midpoint)),

the per-benchmark link of Ruan et al. 2024 (arXiv:2405.10938, §3: a sigmoid of a linear
function of the capability measures, lower bounded by the random-guess rate) with the loss as
the one capability measure.  ``floor`` is the random-guess accuracy (0.25 for four-way multiple
choice); fix it with ``law.fix(floor=...)`` when it is known.

Both take the loss from the ``loss`` column (``--var L=<column>`` maps another); their targets
are ``top1_error`` and ``accuracy``.  Neither has a budget to split: no frontier.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d

_EDGE = 1e-9


def _logit(p):
    p = np.clip(p, _EDGE, 1.0 - _EDGE)
    return np.log(p) - np.log1p(-p), p


@dataclass(frozen=True, repr=False)
class LossToErrorLaw(Law):
    """Gadre et al. 2024 eq. 5: Err = epsilon - k exp(-gamma L), fitted in logit(Err)."""

    name: str = "downstream_error"
    formula: str = "Err = epsilon - k*exp(-gamma*L)"
    variables: tuple[str, ...] = ("loss",)
    params: tuple[Param, ...] = (
        Param("epsilon", bounds=(1e-6, 1.0 - 1e-6), role="irreducible",
              description="error as the loss grows without bound (chance-level error)"),
        Param("k", "log_k", "log", bounds=(-20.0, 20.0), role="scale", description="coefficient"),
        Param("gamma", bounds=(1e-6, 20.0), role="exponent", description="rate of the exponential in loss"),
    )
    target: str = "top1_error"
    target_transform: str = "logit"
    budget: str | None = None
    description: str = "average downstream top-1 error from validation loss (Gadre et al. 2024, eq. 5)"
    # Constants of the magnitude of Gadre et al. 2024 Fig. 1 (right): average top-1 error over 17
    # tasks falls from about 0.75 at a validation loss of 4.5 to about 0.5 at 2.5 (epsilon 0.85,
    # k 1.48, gamma 0.6 give 0.75 and 0.52 there).  The paper's own fitted values are not
    # reproduced here.
    reference: tuple = (("epsilon", 0.85), ("k", 1.48), ("gamma", 0.6))
    reference_source: str = ("Gadre et al. 2024 (arXiv:2403.08540), eq. 5; constants of the magnitude of its "
                             "Fig. 1 (right), not its fitted values")

    def precompute(self, X):
        return np.asarray(X, dtype=float).reshape(-1)

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        L = np.asarray(X, dtype=float).reshape(-1)
        err = t[:, 0:1] - np.exp(t[:, 1:2] - t[:, 2:3] * L)
        z, _ = _logit(err)
        return z[0] if single else z

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        L = self.precompute(X) if cache is None else cache
        term = np.exp(t[:, 1:2] - t[:, 2:3] * L)                  # k exp(-gamma L), (k, n)
        raw = t[:, 0:1] - term
        z, p = _logit(raw)
        inside = (raw > _EDGE) & (raw < 1.0 - _EDGE)
        dz = np.where(inside, 1.0 / (p * (1.0 - p)), 0.0)
        jac = np.empty(z.shape + (3,))
        jac[..., 0] = dz
        jac[..., 1] = -dz * term
        jac[..., 2] = dz * term * L
        return z, jac

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float)[None, :], X, cache)
        return z[0], jac[0]

    def initial_grid(self, X=None):
        """epsilon over {0.6, ..., 0.95}, gamma over {0.1, ..., 3}; log k centred so that the
        exponential term is 0.05-0.5 at the median loss."""
        Lm = 3.0 if X is None else float(np.median(np.asarray(X, dtype=float)))
        rows = []
        for eps in (0.6, 0.7, 0.8, 0.9, 0.95):
            for g in (0.1, 0.3, 0.6, 1.0, 2.0, 3.0):
                for frac in (0.05, 0.15, 0.3, 0.5):
                    rows.append([eps, np.log(frac * eps) + g * Lm, g])
        return np.array(rows)


@dataclass(frozen=True, repr=False)
class BenchmarkSigmoidLaw(Law):
    """acc = floor + (1 - floor) sigmoid(-slope (L - midpoint)), fitted in logit(acc)."""

    name: str = "benchmark_sigmoid"
    formula: str = "acc = floor + (1-floor)*sigmoid(-slope*(L - midpoint))"
    variables: tuple[str, ...] = ("loss",)
    params: tuple[Param, ...] = (
        Param("floor", bounds=(0.0, 0.99), role="irreducible", description="random-guess accuracy"),
        Param("slope", "log_slope", "log", bounds=(-10.0, 5.0), role="scale",
              description="steepness of the sigmoid (per nat of loss)"),
        Param("midpoint", bounds=(0.0, 50.0), role="shape",
              description="loss at which the accuracy is half-way from the floor to 1"),
    )
    target: str = "accuracy"
    target_transform: str = "logit"
    budget: str | None = None
    description: str = "one benchmark's accuracy as a sigmoid in loss above a chance floor (Ruan et al. 2024, §3)"
    # floor 0.25: the random-guess accuracy of four-way multiple choice (MMLU, ARC, HellaSwag),
    # first principles; slope 3 per nat and midpoint 3.0 nats are illustrative, placing the
    # rise inside the conformance ladder's losses.
    reference: tuple = (("floor", 0.25), ("slope", 3.0), ("midpoint", 3.0))
    reference_source: str = ("Ruan et al. 2024 (arXiv:2405.10938), §3 sigmoid link; floor = four-way chance "
                             "(first principles), slope and midpoint illustrative")

    def precompute(self, X):
        return np.asarray(X, dtype=float).reshape(-1)

    def _parts(self, t, L):
        f = t[:, 0:1]
        s = np.exp(t[:, 1:2])
        u = -s * (L - t[:, 2:3])
        sig = 0.5 * (1.0 + np.tanh(0.5 * u))
        return f, s, u, sig

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        L = np.asarray(X, dtype=float).reshape(-1)
        f, _, _, sig = self._parts(t, L)
        z, _ = _logit(f + (1.0 - f) * sig)
        return z[0] if single else z

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        L = self.precompute(X) if cache is None else cache
        f, s, u, sig = self._parts(t, L)
        raw = f + (1.0 - f) * sig
        z, p = _logit(raw)
        inside = (raw > _EDGE) & (raw < 1.0 - _EDGE)
        dz = np.where(inside, 1.0 / (p * (1.0 - p)), 0.0)
        dsig = sig * (1.0 - sig)
        jac = np.empty(z.shape + (3,))
        jac[..., 0] = dz * (1.0 - sig)
        jac[..., 1] = dz * (1.0 - f) * dsig * u                   # d u / d log s = u
        jac[..., 2] = dz * (1.0 - f) * dsig * s
        return z, jac

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float)[None, :], X, cache)
        return z[0], jac[0]

    def initial_grid(self, X=None):
        """floor over {0, 0.1, 0.25, 0.5}, slope over {0.3, ..., 30}, midpoint over the data's
        loss quantiles (or 1.5-5 nats without X)."""
        if X is None:
            mids = np.linspace(1.5, 5.0, 6)
        else:
            mids = np.quantile(np.asarray(X, dtype=float).reshape(-1), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
        rows = [[f, np.log(s), m] for f in (0.0, 0.1, 0.25, 0.5) for s in (0.3, 1.0, 3.0, 10.0, 30.0) for m in mids]
        return np.array(rows)


DOWNSTREAM_ERROR = LossToErrorLaw()
BENCHMARK_SIGMOID = BenchmarkSigmoidLaw()
