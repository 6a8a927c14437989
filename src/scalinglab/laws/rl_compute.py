"""RL post-training compute curves: a sigmoid in log compute between a start and an asymptote.

Khatri et al. 2025 ("The Art of Scaling Reinforcement Learning Compute for LLMs",
arXiv:2510.13786, eq. 1) fit the pass rate (or mean reward) R of an RL run against the compute C
spent on it (GPU-hours) as

    R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B),

R0 the performance before RL (C -> 0), A the asymptote (C -> inf), B the efficiency (the
steepness of the rise in log C) and C_mid the compute at which half of the gain A - R0 is made.
Since 1 / (1 + (C_mid/C)^B) = sigmoid(B (log C - log C_mid)), the curve is a logistic in log C.

The target is a rate in (0, 1) (a pass rate, a reward rescaled to [0, 1]), so residuals are
measured in logit space; a prediction the form would put outside (0, 1) is clipped to 1e-9
from the edge.  A is identified only once the curve has bent: data that stop below C_mid
constrain R0 and the early slope but not the ceiling (``studies/rl.py`` says so).

The registered law reads ``gpu_hours`` and fits ``pass_rate``; :meth:`RLSigmoidLaw.on` /
:meth:`RLSigmoidLaw.measuring` give the same law on other columns (FLOPs, mean reward).  There
is no budget to split between two inputs: no frontier.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d

_EDGE = 1e-9
_RATE = (1e-6, 1.0 - 1e-6)


def _sigmoid(s):
    return 0.5 * (1.0 + np.tanh(0.5 * s))


@dataclass(frozen=True, repr=False)
class RLSigmoidLaw(Law):
    """R = R0 + (A - R0) / (1 + (C_mid/C)^B), fitted in logit(R) (Khatri et al. 2025, eq. 1)."""

    name: str = "rl_sigmoid"
    formula: str = "R = R0 + (A - R0)/(1 + (C_mid/C)^B)"
    variables: tuple[str, ...] = ("gpu_hours",)
    params: tuple[Param, ...] = (
        Param("R0", bounds=_RATE, role="other", description="reward before RL (C -> 0)"),
        Param("A", bounds=_RATE, role="irreducible", description="asymptote: the reward as C grows without bound"),
        Param("B", bounds=(0.05, 10.0), role="exponent",
              description="efficiency: the steepness of the rise in log compute"),
        Param("C_mid", "log_C_mid", "log", bounds=(-70.0, 140.0), role="shape",
              description="compute at which half of the gain A - R0 is made"),
    )
    target: str = "pass_rate"
    target_transform: str = "logit"
    budget: str | None = None
    description: str = "RL post-training pass rate vs compute, a sigmoid in log C (Khatri et al. 2025, eq. 1)"
    # The form (R0 the initial reward, A the asymptotic pass rate, B > 0, C_mid the compute of half
    # the gain) is the paper's eq. 1 as its arXiv HTML page states it; its fitted constants could
    # not be read offline, so none is claimed here.
    # These are of its magnitude: a pass rate rising from 0.2 before RL towards 0.6, half-way at
    # 2,000 GPU-hours, over the 1e2-1e5 GPU-hours its runs span (Fig. 1: up to 100k GPU-hours).
    reference: tuple = (("R0", 0.2), ("A", 0.6), ("B", 1.5), ("C_mid", 2000.0))
    reference_source: str = ("Khatri et al. 2025 (arXiv:2510.13786), eq. 1; illustrative constants of the "
                             "magnitude of its Fig. 1, not its fitted values")
    capabilities = frozenset({"on"})                                    # laws/base.py: CAPABILITIES

    # ---------------------------------------------------------------- columns
    def on(self, column: str) -> "RLSigmoidLaw":
        """The same law reading compute from ``column`` (e.g. ``"flops"``, ``"gpu_hours"``)."""
        if not isinstance(column, str) or not column:
            raise ValueError(f"law {self.name!r}: on() needs a column name such as 'gpu_hours'; got {column!r}")
        return replace(self, variables=(column,))

    def measuring(self, column: str) -> "RLSigmoidLaw":
        """The same law fitting the target in ``column`` (e.g. ``"mean_reward"``), a rate in (0, 1)."""
        if not isinstance(column, str) or not column:
            raise ValueError(f"law {self.name!r}: measuring() needs a column name such as 'pass_rate'; "
                             f"got {column!r}")
        return replace(self, target=column)

    def spec(self) -> dict:
        spec = {"name": self.name}
        if self.variables != ("gpu_hours",):
            spec["variable"] = self.variables[0]        # laws.law_from_spec applies on()
        if self.target != "pass_rate":
            spec["target"] = self.target                # ... and measuring()
        return spec

    def check_features(self, X):
        Law.check_features(self, X)
        p = len(self.params)
        if X.shape[0] <= p:
            raise ValueError(f"law {self.name!r} has {p} free parameters ({', '.join(self.public_names)}) but the "
                             f"curve has {X.shape[0]} point(s): it needs at least {p + 1}; give more points of "
                             f"the curve or fix a parameter (e.g. R0, the pass rate before RL)")

    # ---------------------------------------------------------------- prediction
    def precompute(self, X):
        return np.log(np.asarray(X, dtype=float)).reshape(-1)

    def _parts(self, t, logc):
        r0, a, b, logm = (t[:, j:j + 1] for j in range(4))
        u = b * (logc - logm)
        sig = _sigmoid(u)
        return r0, a, b, logm, u, sig

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        logc = self.precompute(X)
        r0, a, _, _, _, sig = self._parts(t, logc)
        raw = r0 + (a - r0) * sig
        p = np.clip(raw, _EDGE, 1.0 - _EDGE)
        z = np.log(p) - np.log1p(-p)
        return z[0] if single else z

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        logc = self.precompute(X) if cache is None else cache
        r0, a, b, logm, u, sig = self._parts(t, logc)
        raw = r0 + (a - r0) * sig
        p = np.clip(raw, _EDGE, 1.0 - _EDGE)
        z = np.log(p) - np.log1p(-p)
        inside = (raw > _EDGE) & (raw < 1.0 - _EDGE)
        dz = np.where(inside, 1.0 / (p * (1.0 - p)), 0.0)
        dsig = sig * (1.0 - sig)
        gain = a - r0
        jac = np.empty(z.shape + (4,))
        jac[..., 0] = dz * (1.0 - sig)
        jac[..., 1] = dz * sig
        jac[..., 2] = dz * gain * dsig * (logc - logm)
        jac[..., 3] = -dz * gain * dsig * b
        return z, jac

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float)[None, :], X, cache)
        return z[0], jac[0]

    def initial_grid(self, X=None):
        """R0 over {0.02, ..., 0.6}, A over {0.1, ..., 0.95} (either side of R0: a falling curve,
        an error rate, fits too), B over {0.5, ..., 4}, C_mid at quantiles of the data's log C
        and one and two e-folds beyond its largest value (a curve that has not bent yet)."""
        logc = (np.linspace(np.log(1e2), np.log(1e5), 12) if X is None
                else np.log(np.asarray(X, dtype=float).reshape(-1)))
        mids = list(np.quantile(logc, [0.1, 0.35, 0.65, 0.9])) + [logc.max() + 1.0, logc.max() + 2.3]
        rows = [[r0, a, b, m] for r0 in (0.02, 0.1, 0.25, 0.45, 0.6) for a in (0.1, 0.3, 0.5, 0.7, 0.85, 0.95)
                for b in (0.5, 1.0, 2.0, 4.0) for m in mids if abs(a - r0) > 0.04]
        return np.array(rows)


RL_SIGMOID = RLSigmoidLaw()
