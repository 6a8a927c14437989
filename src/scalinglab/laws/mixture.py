"""The data mixing law of Ye et al. 2024, "Data Mixing Laws: Optimizing Data Mixtures by
Predicting Language Modeling Performance" (arXiv:2403.16952, eq. for M domains):

    L_i(r_1..M) = c_i + k_i exp(sum_j t_ij r_j)

the validation loss on domain i of a model (of a fixed size, trained for a fixed number of steps)
trained on the mixture with proportions r_j (summing to 1).  c_i is domain i's loss floor, t_ij
how training on domain j moves the loss on domain i (negative: it helps).

Built on the multi-output machinery (``laws/multi_output.py``): one output per domain, every
parameter per domain.  Columns: ``mix_<domain>`` (the proportion r_j of each domain in the
training mixture) and, after ``data.outputs.stack_outputs``, ``output`` (the domain a loss was
measured on) and ``loss``.  A wide table has one loss column per domain, ``loss_<domain>``.

Identifiability.  As the proportions sum to 1, adding a constant to every t_i. multiplies
exp(sum_j t_ij r_j) by a constant, which k_i absorbs: the paper's form has one flat direction per
domain.  This module fits t_iM = 0 (the last domain is the reference), which is the same family
of curves: t_ij here is the paper's t_ij - t_iM and k_i its k_i exp(t_iM).

Reference constants: the paper fits them on Pile subsets but prints no table of them that could
be read here, so ``example_constants`` are plausible values (NOT published) that the conformance
suite generates its ladder from.  The law has no budget: no frontier and no plan.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from scalinglab.laws.base import Law, Param, as_theta_2d, lse_and_weights
from scalinglab.laws.multi_output import MultiOutputLaw
from scalinglab.util.errors import ParamError

__all__ = ["MixtureLaw", "MIXTURE", "DEFAULT_DOMAINS", "mixture_column", "loss_column"]

DEFAULT_DOMAINS = ("web", "code", "books")


def mixture_column(domain: str) -> str:
    """The column holding a domain's proportion in the training mixture."""
    return f"mix_{domain}"


LOSS_PREFIX = "loss_"


def loss_column(domain: str) -> str:
    """The column of a wide table holding the loss measured on a domain."""
    return f"{LOSS_PREFIX}{domain}"


class DomainMixingLaw(Law):
    """One domain's L(r) = c + k exp(sum_{j<M} t_j r_j): the base of :class:`MixtureLaw`."""

    target = "loss"
    target_transform = "log"
    positive_features = False                 # a proportion may be 0

    def __init__(self, domains: Sequence[str]):
        self.domains = tuple(domains)
        self.name = "mixture_domain"
        self.variables = tuple(mixture_column(d) for d in self.domains)
        self.params = (Param("c", "log_c", "log", role="irreducible", description="loss floor of the domain"),
                       Param("k", "log_k", "log", role="scale", description="scale of the mixture term"),
                       *(Param(f"t_{d}", role="shape", limits=(-50.0, 50.0),
                               description=f"effect of the proportion of {d} (relative to {self.domains[-1]})")
                         for d in self.domains[:-1]))
        self.formula = "L = c + k*exp(" + " + ".join(f"t_{d}*r_{d}" for d in self.domains[:-1]) + ")"

    def check_features(self, X) -> None:
        super().check_features(X)
        X = np.asarray(X, dtype=float)
        total = X.sum(axis=1)
        bad = (X < 0).any(axis=1) | (np.abs(total - 1.0) > 1e-3)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"row {i + 1}: the mixture proportions {list(self.variables)} are "
                             f"{[float(v) for v in X[i]]} (sum {total[i]:.6g}); each must be >= 0 and they must sum "
                             f"to 1 ({int(bad.sum())} such rows)")

    def _terms(self, t, X):
        X = np.asarray(X, dtype=float)
        s = X[:, :-1] @ t[:, 2:].T                             # (n, k)
        return t[:, 0:1], t[:, 1:2] + s.T                     # log c, log k + sum_j t_j r_j

    def predict_z(self, theta, X):
        t, single = as_theta_2d(theta)
        z, _ = lse_and_weights(*self._terms(t, X))
        return z[0] if single else z

    def predict_z_and_jac_batch(self, theta, X, cache=None):
        t = np.atleast_2d(np.asarray(theta, dtype=float))
        z, (wc, wk) = lse_and_weights(*self._terms(t, X))
        r = np.asarray(X, dtype=float)[:, :-1]                 # (n, M-1)
        jac = np.concatenate([wc[..., None], wk[..., None], wk[..., None] * r[None, :, :]], axis=-1)
        return z, jac

    def initial_grid(self, X=None):
        m = len(self.domains) - 1
        rows = [[np.log(c), np.log(k)] + [t] * m for c in (0.5, 1.0, 2.0, 3.0) for k in (0.1, 0.3, 1.0, 3.0, 10.0)
                for t in (-2.0, -0.5, 0.0, 0.5, 2.0)]
        return np.array(rows)

    def spec(self) -> dict:
        return {"name": self.name, "domains": list(self.domains)}


class MixtureLaw(MultiOutputLaw):
    """Ye et al. 2024's data mixing law over ``domains``: one loss per domain, every parameter per
    domain (``c[code]``, ``t_web[code]``...); see the module docstring.  Its target columns are
    ``loss_<domain>``; ``over_targets`` (``fit --law mixture --y loss_web,loss_code``) reads the
    domains from them."""

    capabilities = frozenset({"over_targets"})                          # laws/base.py: CAPABILITIES

    def __init__(self, outputs: Sequence[str] = DEFAULT_DOMAINS):
        base = DomainMixingLaw(outputs)
        super().__init__(base, outputs, base.public_names, name="mixture",
                         description="Ye et al. 2024, data mixing laws, arXiv:2403.16952")
        # each domain helps itself (t = -1.5) and the others hurt it (the reference domain, whose
        # own t is 0, strongly: t = 1.5, so that its c and k are told apart)
        self.example_constants = tuple(
            (f"{p}[{d}]", v) for i, d in enumerate(self.outputs)
            for p, v in (("c", 1.5 + 0.3 * i), ("k", 0.6 + 0.2 * i),
                         *((f"t_{e}", -1.5 if e == d else 1.5 if d == self.outputs[-1] else 0.5)
                           for e in self.outputs[:-1])))

    @property
    def domains(self) -> tuple[str, ...]:
        return self.outputs

    @property
    def target_columns(self) -> tuple[str, ...]:
        return tuple(loss_column(d) for d in self.outputs)

    def over_targets(self, columns) -> "MixtureLaw":
        """The law over the domains whose losses are ``columns`` (each ``loss_<domain>``, beside its
        proportion ``mix_<domain>``)."""
        columns = [str(c) for c in columns]
        bad = [c for c in columns if not c.startswith(LOSS_PREFIX) or c == LOSS_PREFIX]
        if bad:
            raise ParamError("outputs", f"{{outputs}}: the mixture law reads one loss column per domain, named "
                                        f"{LOSS_PREFIX}<domain> beside the domain's proportion mix_<domain>; "
                                        f"{bad} are not so named (e.g. loss_web,loss_code; rename a column "
                                        f"with --map)", value=columns)
        return MixtureLaw(tuple(c[len(LOSS_PREFIX):] for c in columns))

    def spec(self) -> dict:
        return {"name": self.name, "outputs": list(self.outputs)}

    def __reduce__(self):
        return (MixtureLaw, (self.outputs,))


MIXTURE = MixtureLaw()
