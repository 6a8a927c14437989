"""The critical batch size: the steps/examples trade-off, and what it costs to exceed it.

McCandlish et al. 2018, "An Empirical Model of Large-Batch Training" (arXiv:1812.06162), eq. 2.11:
training to a given loss at batch size B takes S steps and E = B·S examples with

    (S/S_min − 1)(E/E_min − 1) = 1,   i.e.  S(B) = S_min·(1 + B_crit/B),  E(B) = E_min·(1 + B/B_crit)

where S_min is the fewest steps (infinite batch), E_min the fewest examples (tiny batch) and
B_crit = E_min/S_min the batch at which a run pays 2× the minimum in both. Equivalently S is
linear in 1/B, S = S_min + E_min/B (``tradeoff_steps``, ``tradeoff_examples``).

B_crit grows as the loss falls. Kaplan et al. 2020, "Scaling Laws for Neural Language Models"
(arXiv:2001.08361), eq. 5.3 / 1.4: B_crit(L) = B*/L^(1/α_B) with B* ≈ 2·10^8 tokens and
α_B ≈ 0.21 — the preset (``KAPLAN_CRITICAL_BATCH``); a :class:`CriticalBatchLaw` fitted across
several target losses, or from the gradient noise scale the trainer measures (B_simple ≈ B_crit,
McCandlish §2.2), replaces it. This module holds the science only: the fits live in
``studies/critical_batch.py``, a law file is read by ``data/law_files.py``.

``tradeoff_table`` turns B_crit into the plan's question: a run planned at batch B0 for D tokens
(E = D at B0) trained instead at k·B_crit on proportionally more GPUs takes S(k·B_crit) steps
(wall-clock ∝ steps when the per-GPU batch is held) and E(k·B_crit) tokens (compute ∝ tokens).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

import scalinglab.laws.allocation as _allocation

# the derived quantity through which a fitted loss law reports its own critical batch (tokens); a plan
# from such a fit takes B_crit from it instead of a B_crit(L) law
OWN_CRITICAL_BATCH = "critical_batch_tokens"
from scalinglab.laws.base import Law, Param, as_theta_2d
from scalinglab.util.intervals import percentile_interval
from scalinglab.util.jsonio import checked_dumps, loaded_level, loaded_nonnegative, loaded_number

__all__ = ["BatchSizeLaw", "BATCH_SIZE_LAW", "OWN_CRITICAL_BATCH", "CriticalBatchLaw", "KAPLAN_CRITICAL_BATCH",
           "find_critical_batch_law", "tradeoff_steps", "tradeoff_examples", "tradeoff_table"]


def tradeoff_steps(batch, s_min: float, b_crit: float) -> np.ndarray:
    """S(B) = S_min·(1 + B_crit/B): the steps to a loss at batch size B (McCandlish et al. eq. 2.11)."""
    return s_min * (1.0 + b_crit / np.asarray(batch, dtype=float))


def tradeoff_examples(batch, e_min: float, b_crit: float) -> np.ndarray:
    """E(B) = E_min·(1 + B/B_crit): the examples (tokens) to a loss at batch size B (eq. 2.11)."""
    return e_min * (1.0 + np.asarray(batch, dtype=float) / b_crit)


# ----------------------------------------------------------------------------------------------
# B_crit as a function of the loss
# ----------------------------------------------------------------------------------------------

@dataclass
class CriticalBatchLaw:
    """B_crit(L) = b_star · L^(−1/alpha_b), in ``unit`` (tokens, or sequences)."""

    name: str
    b_star: float
    alpha_b: float
    citation: str
    unit: str = "tokens"
    samples: list[list[float]] = field(default_factory=list)     # (log b_star, 1/alpha_b) per resample
    level: float = 0.9
    loss_range: tuple[float, float] | None = None
    source: str = ""
    loss_range_source: str = ""          # where loss_range comes from (a preset's paper); a fit: its data
    file_notes: list = field(default_factory=list, repr=False, compare=False)  # read from a file: what to tell

    def b_crit(self, loss) -> np.ndarray:
        return self.b_star * np.asarray(loss, dtype=float) ** (-1.0 / self.alpha_b)

    def interval(self, loss: float) -> tuple[float, float] | None:
        if not self.samples:
            return None
        s = np.asarray(self.samples, dtype=float)
        return percentile_interval(np.exp(s[:, 0] - s[:, 1] * math.log(loss)), self.level)

    def describe(self) -> str:
        return f"{self.name}: B_crit = {self.b_star:.3g} · L^-{1 / self.alpha_b:.3g} {self.unit} ({self.citation})"

    def to_dict(self) -> dict:
        return {"kind": "critical_batch_law", "name": self.name, "b_star": self.b_star, "alpha_b": self.alpha_b,
                "citation": self.citation, "unit": self.unit, "samples": self.samples, "level": self.level,
                "loss_range": self.loss_range, "loss_range_source": self.loss_range_source}

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "") -> "CriticalBatchLaw":
        if d.get("kind") == "critical_batch_fit":
            d = d["law"]
        if d.get("kind") != "critical_batch_law":
            raise ValueError(f"{source or 'critical batch law'}: not a critical-batch law (written by "
                             "`scalinglab hparams critical-batch ... -o cb.json`)")
        where = f"{source or 'critical batch law'}: "
        try:
            b_star, alpha_b = loaded_nonnegative(d["b_star"], "b_star"), loaded_nonnegative(d["alpha_b"], "alpha_b")
            if not (b_star > 0 and alpha_b > 0):
                raise ValueError(f"b_star {b_star:g} and alpha_b {alpha_b:g} must both be > 0")
            level = loaded_level(d.get("level", 0.9), "level")
            samples = _loaded_samples(d.get("samples") or [])
        except ValueError as exc:
            raise ValueError(where + str(exc)) from None
        return cls(name=str(d["name"]), b_star=b_star, alpha_b=alpha_b,
                   citation=str(d.get("citation", "")), unit=str(d.get("unit", "tokens")),
                   samples=samples, level=level,
                   loss_range=tuple(d["loss_range"]) if d.get("loss_range") else None, source=source,
                   loss_range_source=str(d.get("loss_range_source") or ""))

    def to_json(self) -> str:
        """JSON text with its schema version and checksum (``util/jsonio.checked_dumps``); written to a
        file by ``data/law_files.write_law_file``."""
        return checked_dumps(self.to_dict(), indent=1)


def _loaded_samples(rows) -> list[list[float]]:
    """A law file's resamples: pairs (log b_star, 1/alpha_b) of finite numbers."""
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 2 for r in rows):
        raise ValueError("samples is not a list of pairs (log b_star, 1/alpha_b), one per resample")
    out = [[loaded_number(v, "samples") for v in r] for r in rows]
    if not all(math.isfinite(v) for r in out for v in r):
        raise ValueError(f"samples holds non-finite values in {sum(not all(map(math.isfinite, r)) for r in out)} "
                         f"of {len(out)} resamples")
    return out


KAPLAN_CRITICAL_BATCH = CriticalBatchLaw(
    name="kaplan", b_star=2e8, alpha_b=0.21,
    citation="Kaplan et al. 2020, Scaling Laws for Neural Language Models, arXiv:2001.08361, eq. 5.3 "
             "(B* ~ 2e8 tokens, alpha_B ~ 0.21; WebText2 loss in nats/token)",
    # Kaplan et al. Figure 10 measured B_crit for N = 3M and 85M along their training, at WebText2 train losses
    # the figure spans from about 10 down to 3 nats/token (read off its axis; the paper gives no table)
    loss_range=(3.0, 10.0),
    loss_range_source="WebText2 train losses of Kaplan et al. 2020 Fig. 10, read off its axis")


def find_critical_batch_law(name_or_law) -> CriticalBatchLaw | None:
    """A CriticalBatchLaw as given, the preset named ``kaplan`` (any case), or None: anything else may
    be a law file, which ``data/law_files.get_critical_batch_law`` reads."""
    if isinstance(name_or_law, CriticalBatchLaw):
        return name_or_law
    if str(name_or_law).lower() == KAPLAN_CRITICAL_BATCH.name:
        return KAPLAN_CRITICAL_BATCH
    return None


# ----------------------------------------------------------------------------------------------
# the plan's trade
# ----------------------------------------------------------------------------------------------

def tradeoff_table(b_crit: float, tokens: float, batch: float, *, multiples=(0.5, 1.0, 2.0, 4.0, 8.0),
                   seconds: float | None = None, gpus: int | None = None) -> list[dict]:
    """Rows for training at k·B_crit instead of the planned batch ``batch`` (tokens) for ``tokens``.

    With E(B0) = tokens: E_min = tokens/(1 + B0/B_crit), S_min = E_min/B_crit. At B = k·B_crit the
    run takes S_min(1 + 1/k) steps and E_min(1 + k) tokens. Holding the per-GPU batch, GPUs scale
    with B, so the wall-clock scales with the steps and the compute with the tokens."""
    if not (b_crit > 0 and tokens > 0 and batch > 0):
        raise ValueError(f"b_crit, tokens and batch must be positive; got {b_crit}, {tokens}, {batch}")
    e_min = tokens / (1.0 + batch / b_crit)
    s_min = e_min / b_crit
    s0 = tokens / batch
    rows = []
    for k in multiples:
        B = k * b_crit
        S = float(tradeoff_steps(B, s_min, b_crit))
        E = float(tradeoff_examples(B, e_min, b_crit))
        row = {"multiple": float(k), "batch": B, "steps": S, "tokens": E, "time_ratio": S / s0,
               "compute_ratio": E / tokens, "gpu_ratio": B / batch}
        if seconds is not None:
            row["seconds"] = seconds * S / s0
        if gpus is not None:
            row["gpus"] = gpus * B / batch
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# the registered loss law: Chinchilla in the tokens a run's batch size makes effective
# ----------------------------------------------------------------------------------------------

BATCH_LAW_PARAMS = (
    Param("E", "e", "log", role="irreducible", description="irreducible loss (nats/token)"),
    Param("A", "a", "log", role="scale", description="parameter-term coefficient"),
    Param("B", "b", "log", role="scale", description="data-term coefficient"),
    Param("alpha", bounds=(0.0, 5.0), role="exponent", description="parameter exponent"),
    Param("beta", bounds=(0.0, 5.0), role="exponent", description="data exponent"),
    Param("Bcrit", "lbc", "log", role="shape", description="critical batch size (tokens per step)"),
)


@dataclass(frozen=True, repr=False)
class BatchSizeLaw(Law):
    """L(N, D, batch) = E + A/N^alpha + B/D_eff^beta with D_eff = D/(1 + batch/Bcrit).

    McCandlish et al. 2018, eq. 2.11: reaching a loss at batch size b takes E = E_min(1 + b/B_crit)
    examples, so a run of D tokens at batch b gets as far as a small-batch run of
    D/(1 + b/B_crit) tokens; the Chinchilla law (Hoffmann et al. 2022) gives the loss of those.
    Bcrit is one constant over the ladder (Kaplan et al. 2020 find it grows as the loss falls:
    over a ladder's loss range this is its typical value). At a fixed batch size the frontier is
    Chinchilla's with B·(1 + batch/Bcrit)^beta, closed form. Needs runs at 2 or more batch sizes."""

    name: str = "critical_batch"
    formula: str = "L = E + A/N^alpha + B/D_eff^beta, D_eff = D/(1 + batch/Bcrit)"
    variables: tuple[str, ...] = ("params", "tokens", "batch_size")
    params: tuple[Param, ...] = BATCH_LAW_PARAMS
    budget: str | None = "6ND"
    description: str = "McCandlish et al. 2018 eq. 2.11 on Chinchilla's law (tokens made effective by the batch)"
    reference: tuple = (("E", 1.8172), ("A", 482.01), ("B", 2085.43), ("alpha", 0.3478), ("beta", 0.3658),
                        ("Bcrit", 3.4e6))
    reference_source: str = ("Besiroglu et al. 2024, arXiv:2404.10102 (Chinchilla refit) with Bcrit from Kaplan et al. "
                             "2020, arXiv:2001.08361, eq. 5.3: 2e8·L^(-1/0.21) tokens at L = 2.35 nats = 3.4e6")

    def features(self, df) -> np.ndarray:
        if "batch_size" not in df:
            have = list(df.columns) if hasattr(df, "columns") else list(df)
            raise ValueError(f"law {self.name!r} needs column 'batch_size' (tokens per optimizer step of each run); "
                             f"the runs have {have}")
        return super().features(df)

    def check_features(self, X: np.ndarray) -> None:
        super().check_features(X)
        sizes = np.unique(X[:, 2])
        if sizes.size < 2:
            raise ValueError(f"law {self.name!r} needs runs at two or more batch sizes to fit Bcrit; every run has "
                             f"batch_size = {sizes[0]:g} tokens. Add runs at other batch sizes (`scalinglab sweep plan "
                             f"--hparams batch`), or fit 'chinchilla' (at one batch size this law is Chinchilla with "
                             f"B' = B (1 + batch/Bcrit)^beta)")

    def frontier_constraints(self) -> tuple[str, ...]:
        return ("batch_size",)

    def precompute(self, X):
        X = np.asarray(X, dtype=float)
        return np.log(X[:, 0]), np.log(X[:, 1]), X[:, 2]

    def _terms(self, t, cache):
        log_n, log_d, batch = cache
        e, a, b, al, be, lbc = (t[:, j:j + 1] for j in range(6))
        r = batch[None, :] * np.exp(-lbc)                          # batch / Bcrit
        log_deff = log_d - np.log1p(r)
        u0 = a - al * log_n
        u1 = b - be * log_deff
        e = np.broadcast_to(e, u0.shape)
        m = np.maximum(np.maximum(u0, u1), e)
        w0, w1, w2 = np.exp(u0 - m), np.exp(u1 - m), np.exp(e - m)
        s = w0 + w1 + w2
        return m + np.log(s), w0 / s, w1 / s, w2 / s, log_n, log_deff, r, be

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            z = self._terms(t, self.precompute(X))[0]
        return z[0] if single else z

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        z, w0, w1, w2, log_n, log_deff, r, be = self._terms(t, self.precompute(X) if cache is None else cache)
        jac = np.empty((t.shape[0], z.shape[1], 6))
        jac[..., 0] = w2
        jac[..., 1] = w0
        jac[..., 2] = w1
        jac[..., 3] = -w0 * log_n
        jac[..., 4] = -w1 * log_deff
        jac[..., 5] = -w1 * be * r / (1.0 + r)                     # d log D_eff / d log Bcrit = r/(1+r)
        return z, jac

    def predict_z_and_jac(self, theta, X, cache=None):
        z, jac = self.predict_z_and_jac_batch(np.asarray(theta, dtype=float).reshape(1, -1), X, cache)
        return z[0], jac[0]

    def initial_grid(self, X=None):
        """Epoch AI's Chinchilla grid thinned (as laws/precision.py) times Bcrit at 0.1, 1 and 10 times
        the data's geometric-mean batch size: 3*6*6*4*4*3 = 5,184 points."""
        centre = float(np.exp(np.mean(np.log(np.asarray(X, dtype=float)[:, 2])))) if X is not None else 1e6
        es = np.array([-1.0, 0.0, 1.0])
        ls = np.arange(0.0, 25.0 + 1e-9, 5.0)
        ex = np.array([0.25, 0.5, 1.0, 2.0])
        bc = np.log(centre * np.array([0.1, 1.0, 10.0]))
        e, a, b, al, be, g = np.meshgrid(es, ls, ls, ex, ex, bc, indexing="ij")
        return np.column_stack([v.ravel() for v in (e, a, b, al, be, g)])

    @staticmethod
    def _scaled_b(public, constraints):
        batch = float((constraints or {})["batch_size"])
        k = 1.0 + batch / np.asarray(public["Bcrit"], dtype=float)
        return np.asarray(public["B"], dtype=float) * k ** np.asarray(public["beta"], dtype=float)

    def closed_form_allocation(self, public, C, constraints=None):
        return _allocation.compute_optimal_allocation(public["E"], public["A"], self._scaled_b(public, constraints),
                                                      public["alpha"], public["beta"], C)

    def closed_form_compute_for_target(self, public, target, constraints=None):
        return _allocation.compute_for_loss(public["E"], public["A"], self._scaled_b(public, constraints),
                                            public["alpha"], public["beta"], target, on_unreachable="inf")

    def derived(self, public):
        a, b = _allocation.allocation_exponents(public["alpha"], public["beta"])
        return {"a": np.asarray(a, dtype=float), "b": np.asarray(b, dtype=float),
                OWN_CRITICAL_BATCH: np.asarray(public["Bcrit"], dtype=float)}


BATCH_SIZE_LAW = BatchSizeLaw()
