"""Loss curves under any learning-rate schedule (Tissue et al. 2024, "Scaling Law with Learning
Rate Annealing", arXiv:2408.11029)::

    L(s) = L0 + A * S1(s)^(-alpha) - C * S2(s)

* ``S1`` (forward area): the sum of the learning rates of steps 1..s, S1(s) = sum_i eta_i;
* ``S2`` (annealing area): S2(s) = sum_i m_i with the momentum-style accumulation
  m_i = lambda * m_(i-1) + (eta_(i-1) - eta_i), lambda = 0.999 by default (the paper's decay
  factor): a drop of the learning rate keeps lowering the loss for ~1/(1 - lambda) steps.

Conventions (the paper leaves them to the user; stated here so that fits are comparable):

* learning rates are absolute (as logged), not relative to the peak; rescaling every lr by k
  rescales A by k^alpha and C by 1/k and leaves the predicted curves unchanged;
* the warmup (the steps up to the first step at the schedule's peak lr) adds to S1 but not to
  S2: a rising lr is not an anneal.  After the peak every change counts, so a re-warming lowers S2;
* a curve logged every few steps is filled in step by step by linear interpolation of its
  logged lr (before the first logged step it ramps up from 0, as a linear warmup does); the
  areas are then read at the logged steps.  Log every step (``log_every=1``) for exact areas.

The features are per curve (rows = (run_id, step, lr, loss)); a frame that already carries the
areas as columns ``lr_area`` (S1) and ``anneal_area`` (S2) is read as is (that is how a single
point, or the conformance ladder, is given).  A curve set whose lr never decreases after its
peak has S2 = 0 everywhere: C is not identified and the fit is refused (add a curve with a
cooldown, WSD or cosine).  No budget to split: no frontier.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d

DEFAULT_DECAY = 0.999                     # lambda, the decay factor Tissue et al. 2024 use
AREA_COLUMNS = ("lr_area", "anneal_area")
CURVE_COLUMNS = ("step", "lr")


def schedule_areas(lr, decay: float = DEFAULT_DECAY) -> tuple[np.ndarray, np.ndarray]:
    """(S1, S2) after each step of a per-step learning-rate sequence ``lr`` (step 1 first).

    S1[s] = lr[0] + ... + lr[s]; S2[s] = m[0] + ... + m[s] with m[i] = decay * m[i-1] +
    (lr[i-1] - lr[i]) after the first step at the peak lr, and 0 before it (the warmup)."""
    eta = np.asarray(lr, dtype=float).reshape(-1)
    if eta.size == 0:
        raise ValueError("the learning-rate sequence is empty; give one lr per step")
    if not np.all(np.isfinite(eta)) or np.any(eta < 0):
        bad = eta[~(np.isfinite(eta) & (eta >= 0))][:3]
        raise ValueError(f"learning rates must be finite and >= 0; got {', '.join(f'{v:g}' for v in bad)}")
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay (lambda) must be in [0, 1), e.g. {DEFAULT_DECAY}; got {decay!r}")
    drop = np.zeros_like(eta)
    drop[1:] = eta[:-1] - eta[1:]
    drop[: int(np.argmax(eta)) + 1] = 0.0          # warmup: a rising lr is not an anneal
    from scipy.signal import lfilter     # lazily: importing scipy.signal costs every CLI process ~0.5 s

    momentum = lfilter([1.0], [1.0, -decay], drop)
    return np.cumsum(eta), np.cumsum(momentum)


def curve_areas(steps, lr, decay: float = DEFAULT_DECAY, what: str = "curve") -> np.ndarray:
    """(n, 2) areas (S1, S2) at the logged ``steps`` (whole numbers >= 1, strictly increasing) of
    one curve whose lr at those steps is ``lr``; the steps in between are interpolated."""
    steps = np.asarray(steps, dtype=float).reshape(-1)
    lr = np.asarray(lr, dtype=float).reshape(-1)
    if steps.size == 0:
        raise ValueError(f"{what} has no rows")
    if not np.all(np.isfinite(steps)) or np.any(steps < 1) or np.any(steps != np.round(steps)):
        raise ValueError(f"{what}: column 'step' must hold whole numbers >= 1 (the optimizer step after which "
                         f"the loss was measured); got e.g. {steps[~(np.isfinite(steps) & (steps >= 1))][:1]}")
    if np.any(np.diff(steps) <= 0):
        i = int(np.argmax(np.diff(steps) <= 0))
        raise ValueError(f"{what}: step {steps[i + 1]:g} appears twice or out of order; each step once, increasing")
    dense_steps = np.arange(1, int(steps[-1]) + 1, dtype=float)
    # before the first logged step the lr ramps up from 0, as a linear warmup does
    dense = np.interp(dense_steps, np.r_[0.0, steps], np.r_[0.0, lr])
    s1, s2 = schedule_areas(dense, decay)
    idx = steps.astype(int) - 1
    return np.column_stack([s1[idx], s2[idx]])


_PARAMS = (
    Param("L0", "log_L0", "log", role="irreducible", description="loss after infinite training (L0)"),
    Param("A", "log_A", "log", role="scale", description="coefficient of the forward-area power law"),
    Param("alpha", bounds=(0.0, 3.0), role="exponent", description="exponent of the forward area S1"),
    Param("C", "log_C", "log", role="scale", description="loss lowered per unit of annealing area S2"),
)


@dataclass(frozen=True, repr=False)
class LRScheduleLaw(Law):
    """L = L0 + A*S1^-alpha - C*S2 (Tissue et al. 2024, eq. 1), features from each curve's lr."""

    name: str = "lr_schedule"
    formula: str = "L = L0 + A*S1^-alpha - C*S2"
    variables: tuple[str, ...] = AREA_COLUMNS
    params: tuple[Param, ...] = _PARAMS
    decay: float = DEFAULT_DECAY
    positive_features: bool = False
    row_features: bool = False       # the areas sum the learning rate over each curve up to a step
    description: str = ("loss curve under any learning-rate schedule (Tissue et al. 2024): S1 = summed lr, "
                        "S2 = annealing area with momentum decay lambda; fit curves of (step, lr, loss) with "
                        "`scalinglab schedule fit`")
    reference: tuple = ()
    reference_source: str = ""

    # ---------------------------------------------------------------- features
    def features(self, df) -> np.ndarray:
        """(n, 2) areas: the ``lr_area`` / ``anneal_area`` columns where the frame has them, else
        computed per curve (``run_id``; one curve without it) from ``step`` and ``lr``."""
        cols = list(df.columns) if hasattr(df, "columns") else list(df)
        if all(c in cols for c in AREA_COLUMNS):
            return np.column_stack([np.asarray(df[c], dtype=float) for c in AREA_COLUMNS])
        if not all(c in cols for c in CURVE_COLUMNS):
            raise ValueError(f"law {self.name!r} needs each curve's rows with columns 'step' and 'lr' (one row per "
                             f"logged step; 'run_id' names the curve when there are several), or the areas "
                             f"{list(AREA_COLUMNS)}; the rows have {cols}")
        steps = np.asarray(df["step"], dtype=float)
        lr = np.asarray(df["lr"], dtype=float)
        keys = np.asarray(df["run_id"]).astype(str) if "run_id" in cols else np.zeros(len(steps), dtype=str)
        X = np.empty((len(steps), 2))
        for key in dict.fromkeys(keys):
            rows = np.flatnonzero(keys == key)
            order = rows[np.argsort(steps[rows], kind="stable")]
            what = f"curve {key!r}" if "run_id" in cols else "the curve"
            X[order] = curve_areas(steps[order], lr[order], self.decay, what)
        return X

    def check_features(self, X) -> None:
        X = np.asarray(X, dtype=float)
        for j, name in enumerate(self.variables):
            ok = np.isfinite(X[:, j]) & ((X[:, j] > 0) if j == 0 else True)
            if not ok.all():
                i = int(np.argmax(~ok))
                need = "a positive finite number" if j == 0 else "a finite number"
                raise ValueError(f"row {i + 1}, column {name!r}: {X[i, j]!r} is not {need}; law {self.name!r} needs "
                                 f"{name} to be {need} (a curve's lr must be positive before it anneals)")
        s2 = X[:, 1]
        if not np.any(np.abs(s2) > 1e-12 * max(1.0, float(np.max(np.abs(X[:, 0]))))):
            raise ValueError(f"law {self.name!r}: the curve(s) never anneal (the learning rate never decreases after "
                             f"its peak, so the annealing area S2 is 0 at every step): C, the loss drop per unit of "
                             f"annealing, cannot be identified. Fit on a curve with a cooldown (WSD or cosine), or "
                             f"add one to the constant-lr curve")

    # ---------------------------------------------------------------- prediction
    def precompute(self, X):
        X = np.asarray(X, dtype=float)
        return np.log(X[:, 0]), X[:, 1]

    def _terms(self, t, logs1, s2):
        l0, a, alpha, c = (np.exp(t[:, 0:1]), np.exp(t[:, 1:2]), t[:, 2:3], np.exp(t[:, 3:4]))
        power = a * np.exp(-alpha * logs1)
        anneal = c * s2
        return l0, power, anneal, l0 + power - anneal

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        logs1, s2 = self.precompute(X)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            *_, loss = self._terms(t, logs1, s2)
            z = np.where(loss > 0, np.log(np.where(loss > 0, loss, 1.0)), np.nan)
        return z[0] if single else z

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        logs1, s2 = self.precompute(X) if cache is None else cache
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            l0, power, anneal, loss = self._terms(t, logs1, s2)
            ok = loss > 0
            safe = np.where(ok, loss, 1.0)
            z = np.where(ok, np.log(safe), np.nan)
            jac = np.stack([l0 / safe, power / safe, -power * logs1 / safe, -anneal / safe], axis=-1)
        jac = np.where(ok[..., None], jac, np.nan)
        return z, jac

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float)[None, :], X, cache)
        return z[0], jac[0]

    def initial_grid(self, X=None):
        """alpha over 0.1 ... 1.2; L0 over 0.5 ... 6 nats; A centred so that the power term is 0.1 ... 3
        nats at the median S1; C so that the largest anneal lowers the loss by 0.01 ... 0.5 nats."""
        if X is None:
            med_s1, max_s2 = 1.0, 0.3
        else:
            X = np.asarray(X, dtype=float)
            med_s1 = float(np.median(X[:, 0]))
            max_s2 = float(np.max(np.abs(X[:, 1]))) or 0.3
        rows = []
        for alpha in (0.1, 0.3, 0.5, 0.8, 1.2):
            for l0 in (0.5, 1.0, 2.0, 3.5, 6.0):
                for power in (0.1, 0.5, 3.0):
                    for drop in (0.01, 0.1, 0.5):
                        rows.append([np.log(l0), np.log(power * med_s1 ** alpha), alpha, np.log(drop / max_s2)])
        return np.array(rows)


# Tissue et al. fit their constants on their own models' curves and lr scales; they publish no
# single set for a reader's curves, so the conformance reference is illustrative: L0 = 1.69 as in
# Hoffmann et al. 2022 eq. 10, alpha = 0.5, A and C chosen so that the forward-area term and the
# anneal both matter inside the conformance ladder's areas (S1 ~ 2e-3 ... 90, S2 up to 0.3).
LR_SCHEDULE = LRScheduleLaw(
    reference=(("L0", 1.69), ("A", 0.5), ("alpha", 0.5), ("C", 0.2)),
    reference_source=("illustrative: L0 = 1.69 (Hoffmann et al. 2022 eq. 10), alpha = 0.5, A = 0.5, C = 0.2; "
                      "chosen, not published (Tissue et al. 2024 fit per model and lr scale), so that the "
                      "conformance ladder exercises every parameter"))


def hold_curve_shape(law, params: dict):
    """``law`` with the shape a ladder's curves fixed (the exponent alpha and the anneal's gain C,
    taken from a schedule fit's ``params``), leaving the level L0 and scale A to one run's curve:
    how a run too short to anneal yet is forecast from its ladder."""
    return law.fix(alpha=params["alpha"], C=params["C"])


def anneal_is_fitted(law) -> bool:
    """Whether ``law`` still fits the anneal's gain C: a curve that has not annealed cannot pin it."""
    return "C" in law.public_names
