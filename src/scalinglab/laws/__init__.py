"""Law registry.  Adding a law is one module and one line in ``_BUILTIN``; users add theirs
with :func:`register_law`, :func:`load_law` (``"package.module:Class"``, what ``--law`` takes) or
the ``scalinglab.laws`` entry-point group, or as a formula string (``laws/formula.py``).
``docs/extending.md`` is the protocol; :func:`check_law` checks a law's plumbing."""
from __future__ import annotations

from typing import Mapping

from scalinglab.laws.base import FixedLaw, Law, Param, as_theta_2d, lse, lse_and_weights
from scalinglab.laws.check import LawCheckError, check_law
from scalinglab.laws.chinchilla import CHINCHILLA, ChinchillaLaw
from scalinglab.laws.critical_batch import BATCH_SIZE_LAW
from scalinglab.laws.data_constrained import DATA_CONSTRAINED
from scalinglab.laws.downstream import BENCHMARK_SIGMOID, DOWNSTREAM_ERROR
from scalinglab.laws.kaplan import KAPLAN, KaplanLaw
from scalinglab.laws.overtraining import OVERTRAINING
from scalinglab.laws.power import POWER_C, POWER_D, POWER_N, SaturatingPowerLaw
from scalinglab.laws.precision import PRECISION
from scalinglab.laws.learning_curves import BNSL1, BNSL2, M4
from scalinglab.laws.loss_to_loss import LOSS_TO_LOSS
from scalinglab.laws.distillation import DISTILLATION
from scalinglab.laws.test_time import COVERAGE_POWER
from scalinglab.laws.rl_compute import RL_SIGMOID
from scalinglab.laws.moe import MOE
from scalinglab.laws.lr_schedule import LR_SCHEDULE
from scalinglab.laws.asymptote import ASYMPTOTE
from scalinglab.laws.parallel import PARALLEL
from scalinglab.laws.sparsity import SPARSITY
from scalinglab.laws.vocabulary import VOCABULARY
from scalinglab.laws.mixture import MIXTURE
from scalinglab.util.errors import ParamText

_BUILTIN: tuple[Law, ...] = (POWER_N, POWER_D, POWER_C, KAPLAN, CHINCHILLA, DATA_CONSTRAINED, OVERTRAINING,
                          PRECISION, BATCH_SIZE_LAW, DOWNSTREAM_ERROR, BENCHMARK_SIGMOID,
                          BNSL1, BNSL2, M4, COVERAGE_POWER, RL_SIGMOID, DISTILLATION, LOSS_TO_LOSS, MOE,
                          LR_SCHEDULE, PARALLEL, SPARSITY, ASYMPTOTE, VOCABULARY, MIXTURE)
LAWS: dict[str, Law] = {law.name: law for law in _BUILTIN}
ENTRY_POINT_GROUP = "scalinglab.laws"
_entry_points_loaded = False


def register_law(law: Law | type, *, replace: bool = False) -> Law:
    """Add a law (an instance, or a Law subclass that needs no arguments) to the registry so
    that every command finds it by name.  Returns the instance."""
    if isinstance(law, type):
        if not issubclass(law, Law):
            raise TypeError(f"register_law needs a Law subclass or instance; got class {law.__name__}")
        law = law()
    if not isinstance(law, Law):
        raise TypeError(f"register_law needs a Law subclass or instance; got {type(law).__name__}")
    if not law.name or not isinstance(law.name, str):
        raise ValueError("a law needs a non-empty string name to be registered")
    if law.name in LAWS and LAWS[law.name] is not law and not replace:
        raise ValueError(f"a law named {law.name!r} is already registered; pass replace=True to replace it")
    LAWS[law.name] = law
    return law


def is_law_import_path(text: str) -> bool:
    """Whether ``text`` reads as ``package.module:Class`` (what :func:`load_law` imports)."""
    module, sep, attr = str(text).partition(":")
    return bool(sep) and all(part.isidentifier() for part in module.split(".")) \
        and all(part.isidentifier() for part in attr.split("."))


def load_law(target: str) -> Law:
    """Import a user's law named as ``package.module:Class`` (a Law subclass that needs no
    arguments, or a Law instance) and register it, so that it is found by name from then on
    (a fit file of it included).  This RUNS that module's code, deliberately, like a plugin:
    give it only code you trust.  The module is found on ``sys.path`` and then in the current
    directory.  A registry name or a formula never imports anything."""
    import importlib
    import os
    import sys

    from scalinglab.util.errors import ParamError

    if not is_law_import_path(target):
        raise ParamError("law", f"{{law}} {target!r}: expected package.module:Class, e.g. mylaws:MyLaw (a Law "
                         f"subclass in mylaws.py)", value=target)
    module_name, _, attr = target.partition(":")
    if os.getcwd() not in sys.path:          # `scalinglab` (a console script) does not search it
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ParamError("law", f"{{law}} {target}: cannot import module {module_name!r} ({exc}); it must be "
                         f"installed, on PYTHONPATH or in the current directory", value=target) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ParamError("law", f"{{law}} {target}: module {module_name!r} has no {attr!r}", value=target)
        obj = getattr(obj, part)
    if not (isinstance(obj, Law) or (isinstance(obj, type) and issubclass(obj, Law))):
        raise ParamError("law", f"{{law}} {target}: {attr} is a {type(obj).__name__}, not a scalinglab.laws.Law "
                         f"subclass or instance", value=target)
    cls = obj if isinstance(obj, type) else type(obj)
    known = LAWS.get(getattr(obj, "name", None))
    if known is not None and type(known) is cls:         # loaded before (the same class): keep that instance
        return known
    if known is not None:
        raise ParamError("law", f"{{law}} {target}: its name {known.name!r} is already taken by another law; "
                         f"give the law another name", value=target)
    return register_law(obj)


def _load_entry_points() -> None:
    """Laws other packages declare under the ``scalinglab.laws`` entry-point group."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        law = register_law(obj, replace=True)
        if law.name != ep.name:
            LAWS[ep.name] = law


def get_law(name_or_law, *, fixed: Mapping[str, float] | None = None) -> Law:
    """The law of that registry name, spec dict (``law_from_spec``) or Law object, with
    ``fixed`` public parameters held at their values.  An unknown name raises ValueError
    naming the valid laws."""
    if isinstance(name_or_law, Law):
        law = name_or_law
    elif isinstance(name_or_law, Mapping):
        law = law_from_spec(name_or_law)
    elif isinstance(name_or_law, str):
        if name_or_law not in LAWS:
            _load_entry_points()
        if name_or_law not in LAWS:
            raise ValueError(f"unknown law {name_or_law!r}; valid laws: {', '.join(LAWS)} "
                             + ParamText("(or a formula, e.g. {law} with {variables})", law="E + A/N**alpha",
                                         variables={"N": "params"}))
        law = LAWS[name_or_law]
    else:
        raise ParamError("law", f"{{law}} must be a registered name ({', '.join(LAWS)}), a Law or a spec dict; "
                         f"got {type(name_or_law).__name__}")
    return law.fix(fixed) if fixed else law


def law_from_spec(spec: Mapping) -> Law:
    """Rebuild a law from ``Law.spec()`` (as stored in fit JSON)."""
    spec = dict(spec)
    fixed = spec.pop("fixed", None)
    metric = spec.pop("metric", None)            # a law put on a metric target (laws/metric.py)
    if metric is not None:
        from scalinglab.laws.metric import law_with_metric

        return law_with_metric(law_from_spec({**spec, **({"fixed": fixed} if fixed else {})}), metric)
    if "outputs" in spec:                        # a multi-output law (laws/multi_output.py)
        from scalinglab.laws.multi_output import MultiOutputLaw

        # a registered one (the mixture law) is rebuilt over these outputs; else from its base law
        law = MultiOutputLaw(law_from_spec(spec["base"]), spec["outputs"], spec.get("per_output", ()),
                             name=spec.get("name"), description=spec.get("description", "")) if "base" in spec \
            else type(get_law(spec["name"]))(spec["outputs"])
    elif "formula" in spec:
        from scalinglab.laws.formula import FormulaLaw

        law = FormulaLaw.from_spec(spec)
    else:
        law = get_law(spec["name"])
        if "variable" in spec:                   # a one-variable law on another column (capability "on")
            if law.capability("on") is None:
                raise ValueError(f"law spec {spec!r}: law {law.name!r} cannot be put on another column")
            law = law.on(spec["variable"])
        if "target" in spec:                     # a one-curve law fitting another column (law.measuring)
            law = law.measuring(spec["target"])
        if "supervised" in spec:                 # a distillation law's student supervised law (laws/distillation.py)
            if law.capability("with_supervised") is None:
                raise ValueError(f"law spec {spec!r}: law {law.name!r} takes no supervised constants")
            law = law.with_supervised(spec["supervised"])
    return law.fix(fixed) if fixed else law


__all__ = ["LAWS", "Law", "Param", "FixedLaw", "get_law", "register_law", "load_law", "law_from_spec",
           "check_law", "LawCheckError", "lse", "lse_and_weights", "as_theta_2d", "ChinchillaLaw", "KaplanLaw",
           "SaturatingPowerLaw"]
