"""A fit file is what was written (issue 24, part 5).

Every JSON file scalinglab writes and reads back (a fit, a hyperparameter law, a critical-batch
law, a schedule fit) carries a schema version and a checksum (``util/jsonio``).  An edited file
is refused naming its first changed key (exit 2), unless --allow-edited: then every panel says
WARNING.  Values no file can hold (a negative half-width, a 200% level, cut bootstrap samples)
are refused with --allow-edited too.  Files of the previous release load through a migration."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import scalinglab as sl
from cli_helpers import invoke
from scalinglab.studies.hparams import fit_hparams, synthetic_hparam_sweep
from scalinglab.fitting.result import FitResult
from scalinglab.data.law_files import get_critical_batch_law, get_hparam_law, write_law_file
from scalinglab.laws.critical_batch import CriticalBatchLaw
from scalinglab.laws.formula import FormulaLaw, parse_variable_map
from scalinglab.laws.lr_schedule import LR_SCHEDULE, schedule_areas
from scalinglab.planning.lr_schedule import schedule_lr
from scalinglab.util.jsonio import EditedFileError, canonical_text, checked_document, verify_document

BUDGET = "1e20"                    # 10x the ladder's largest budget: a checked extrapolation, no WARNING of its own


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def runs():
    return sl.load_runs(sl.synthetic_ladder(seed=3))


@pytest.fixture(scope="module")
def boot_fit(runs):
    """A Chinchilla fit with a bootstrap and a rollout calibration, as `fit --bootstrap 30` writes it."""
    fit = sl.bootstrap(runs, "chinchilla", n=30, seed=0, progress=False, workers=1)
    fit.calibration = sl.calibrate_fit(fit, runs, progress=False)
    return fit


@pytest.fixture(scope="module")
def fit_json(boot_fit, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    boot_fit.to_json(path)
    return path


def _edit(src: Path, tmp_path: Path, change, name: str = "edited.json") -> Path:
    d = json.loads(src.read_text())
    change(d)
    path = tmp_path / name
    path.write_text(json.dumps(d, indent=2))
    return path


def _text(result) -> str:
    return " ".join(result.output.split())


def _plan(path, *extra):
    return invoke("plan", path, "--budget", BUDGET, *extra)


def _refused(result) -> str:
    assert result.exit_code == 2, result.output
    text = _text(result)
    assert "Traceback" not in result.output and "this is a bug" not in text
    return text


def _warning_lines(output: str) -> int:
    return sum("WARNING:" in line for line in output.splitlines())


def _panels_opening_with_a_warning(output: str) -> tuple[int, int]:
    """(panels, panels whose first line is a WARNING): the file's warning heads every panel."""
    lines = output.splitlines()
    tops = [i for i, line in enumerate(lines) if line.startswith("╭")]
    return len(tops), sum("WARNING:" in lines[i + 1] for i in tops)


# ------------------------------------------------------------------------------ the format


def test_a_written_fit_round_trips_with_its_version_and_checksum(boot_fit, fit_json):
    d = json.loads(fit_json.read_text())
    assert d["schema_version"] == 1 and len(d["checksum"]["sha256"]) == 64
    assert "/calibration/loss/q" in d["checksum"]["keys"]           # per-key digests, three levels down
    back = FitResult.from_json(fit_json)
    assert back.file_notes == []
    assert back.params == boot_fit.params
    np.testing.assert_array_equal(back.bootstrap.samples, boot_fit.bootstrap.samples)
    assert back.calibration.loss.q == boot_fit.calibration.loss.q
    result = _plan(fit_json)
    assert result.exit_code == 0, result.output
    assert "WARNING" not in result.output and "earlier release" not in result.output


def test_the_checksum_is_of_the_content_not_of_its_layout(fit_json, tmp_path):
    # re-indented, keys re-ordered and 1.0 written as 1 by another JSON tool: the same content
    d = json.loads(fit_json.read_text())
    d["delta"] = 1e-3
    relaid = tmp_path / "relaid.json"
    relaid.write_text(json.dumps(dict(reversed(list(d.items()))), sort_keys=True))
    assert FitResult.from_json(relaid).file_notes == []
    assert canonical_text({"b": 1, "a": [1.0, None, True]}) == canonical_text({"a": [1, None, True], "b": 1.0})
    assert canonical_text(2 ** 60) != canonical_text(2 ** 60 + 1)        # big integers exactly


def test_the_first_changed_key_is_named_in_the_files_order():
    doc = checked_document({"a": 1, "b": {"c": 2, "d": {"e": 3}}, "f": [1, 2]})
    for change, key in ((lambda d: d["b"]["d"].__setitem__("e", 4), "b.d.e changed"),
                        (lambda d: d["f"].append(3), "f changed"),
                        (lambda d: d.pop("a"), "a removed"),
                        (lambda d: d["b"].__setitem__("x", 0), "b.x added")):
        edited = json.loads(json.dumps(doc))
        change(edited)
        with pytest.raises(EditedFileError, match=re.escape(f"key {key}")) as err:
            verify_document(edited, label="doc.json")
        assert "allow_edited" in str(err.value) and "doc.json" in str(err.value)
        payload, notes = verify_document(edited, label="doc.json", allow_edited=True)
        assert "schema_version" not in payload and "checksum" not in payload
        assert len(notes) == 1 and notes[0].startswith("WARNING: doc.json") and key in notes[0]


# ------------------------------------------------------------------------------ the edits of issue 24


def test_an_edited_formula_is_refused_and_with_allow_edited_warns_on_every_panel(runs, tmp_path):
    law = FormulaLaw("E + A/N**alpha + B/D**beta", parse_variable_map(["N=params", "D=tokens"]))
    path = tmp_path / "formula.json"
    sl.fit(runs, law).to_json(path)
    clean = _plan(path)
    assert clean.exit_code == 0, clean.output
    edited = _edit(path, tmp_path, lambda d: d["law_spec"].__setitem__("formula", d["law_spec"]["formula"] + " + 1000"))
    text = _refused(_plan(edited))
    assert str(edited) in text and "key law_spec.formula changed" in text and "--allow-edited" in text
    assert "allow_edited" not in text                                   # the option, not the API's name
    extras = ("--inference-tokens", "2e12", "--tokens-per-param", "100")      # more panels than the plan's
    clean = _plan(path, *extras)
    loaded = _plan(edited, "--allow-edited", *extras)
    assert loaded.exit_code == 0, loaded.output
    panels, warned = _panels_opening_with_a_warning(loaded.output)
    assert panels >= 3 and warned == panels and panels == clean.output.count("╭")
    assert _panels_opening_with_a_warning(clean.output)[1] == 0
    as_json = json.loads(invoke("plan", edited, "--budget", BUDGET, "--allow-edited", "--json").stdout)
    assert any("law_spec.formula changed" in n for n in as_json["file_notes"])


@pytest.mark.parametrize("change,key,why", [
    (lambda d: d["calibration"]["loss"].__setitem__("q", -1), "calibration.loss.q", "loss.q is -1"),
    (lambda d: d["calibration"].__setitem__("level", 2), "calibration.level", "level is 2"),
    (lambda d: d["bootstrap"].__setitem__("level", 2), "bootstrap.level", "level is 2"),
    (lambda d: d["bootstrap"].__setitem__("samples", d["bootstrap"]["samples"][:3]), "bootstrap.samples",
     "samples holds 3 resamples but n_requested - n_failed says 30"),
    (lambda d: d["bootstrap"].__setitem__("samples", [r[:-1] for r in d["bootstrap"]["samples"]]),
     "bootstrap.samples", "samples is not a table of one row of 5 numbers"),
])
def test_impossible_values_are_refused_even_with_allow_edited(fit_json, tmp_path, change, key, why):
    edited = _edit(fit_json, tmp_path, change)
    text = _refused(_plan(edited))
    assert f"key {key} changed" in text and str(edited) in text
    text = _refused(_plan(edited, "--allow-edited"))
    assert why in text and str(edited) in text
    assert "half-width -1" not in text and "200%" not in text


def test_an_all_nan_bootstrap_says_no_confidence_interval(boot_fit, fit_json, tmp_path):
    edited = _edit(fit_json, tmp_path, lambda d: d["bootstrap"].__setitem__(
        "samples", [[None] * len(r) for r in d["bootstrap"]["samples"]]))
    assert "key bootstrap.samples changed" in _refused(_plan(edited))
    result = _plan(edited, "--allow-edited")
    assert result.exit_code == 0, result.output
    text = _text(result)
    assert "all 30 resamples have non-finite parameters: no confidence interval" in text.replace("│ ", "")
    assert "CI" not in text.split("Parameters N*")[1].split("Tokens D*")[0]    # no N* CI printed
    assert FitResult.from_json(edited, allow_edited=True).bootstrap is None


def test_non_finite_resamples_are_dropped_counted_and_the_interval_recomputed(boot_fit, fit_json, tmp_path):
    edited = _edit(fit_json, tmp_path, lambda d: [r.__setitem__(0, None) for r in d["bootstrap"]["samples"][:4]])
    back = FitResult.from_json(edited, allow_edited=True)
    assert back.bootstrap.n_ok == 26 and back.bootstrap.n_failed == 4
    assert any("4 of 30 resamples have non-finite parameters and were dropped" in n for n in back.file_notes)
    kept = boot_fit.bootstrap.samples[4:, boot_fit.bootstrap.names.index("A")]
    assert back.bootstrap.ci["A"] == pytest.approx(back.bootstrap.interval(kept))


# ------------------------------------------------------------------------------ the previous release


def _as_previous_release(fit: FitResult) -> dict:
    """What commit efdde50 (the release before issue 24) wrote: ``json.dumps(fit.to_dict())``,
    today's fields without "schema_version" and "checksum"."""
    return json.loads(json.dumps(fit.to_dict()))


def _as_before_the_law_protocol(fit: FitResult) -> dict:
    """What the releases before commit c1e1bef (the law protocol; e.g. 83be709) wrote: no
    "law_spec", "weights" or "calibration", and Chinchilla's theta in that code's internal order
    (log A, log B, log E, alpha, beta), which the file names in "param_names"."""
    d = _as_previous_release(fit)
    for key in ("law_spec", "weights", "calibration"):
        d.pop(key)
    order = ["a", "b", "e", "alpha", "beta"]
    today = list(fit.law_object.param_names)
    assert sorted(order) == sorted(today) and order != today
    d["theta"] = [float(fit.theta[today.index(k)]) for k in order]
    d["param_names"] = order
    return d


@pytest.mark.parametrize("old", [_as_previous_release, _as_before_the_law_protocol])
def test_files_of_earlier_releases_load_through_the_migration(boot_fit, tmp_path, old):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old(boot_fit), indent=2))
    back = FitResult.from_json(path)
    np.testing.assert_allclose(back.theta, boot_fit.theta, rtol=0, atol=0)
    assert back.params == boot_fit.params
    assert len(back.file_notes) == 1 and "earlier release" in back.file_notes[0] and "not verified" in back.file_notes[0]
    result = invoke("plan", path, "--budget", BUDGET, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    new = tmp_path / "new.json"
    boot_fit.to_json(new)
    assert doc["n_opt"] == json.loads(invoke("plan", new, "--budget", BUDGET, "--json").stdout)["n_opt"]
    assert "earlier release" in " ".join(doc["file_notes"])
    text = _text(_plan(path))
    assert "written by an earlier release" in text and "was edited" not in text     # a note, not a refusal


def test_a_migrated_file_still_gets_its_values_checked(boot_fit, tmp_path):
    d = _as_previous_release(boot_fit)
    d["calibration"]["loss"]["q"] = -1
    path = tmp_path / "old.json"
    path.write_text(json.dumps(d))
    assert "loss.q is -1" in _refused(_plan(path))


# ------------------------------------------------------------------------------ the other files


def test_hyperparameter_law_files(fit_json, tmp_path):
    fit = fit_hparams(synthetic_hparam_sweep(seed=0), n_boot=10)
    path = tmp_path / "hp.json"
    fit.to_json(path)
    assert json.loads(path.read_text())["schema_version"] == 1
    law = get_hparam_law(str(path))
    assert law.file_notes == [] and law.predict(params=1e9, tokens=2e10) == fit.law.predict(params=1e9, tokens=2e10)
    edited = _edit(path, tmp_path, lambda d: d["law"]["lr"].__setitem__("coef", 100.0), "hp_edit.json")
    assert "lr" in json.loads(path.read_text())["law"]
    with pytest.raises(EditedFileError, match=re.escape("key law.lr.coef changed")):
        get_hparam_law(str(edited))
    assert "WARNING" in get_hparam_law(str(edited), allow_edited=True).file_notes[0]
    text = _refused(invoke("plan", fit_json, "--budget", BUDGET, "--hparams-law", edited))
    assert "key law.lr.coef changed" in text and str(edited) in text
    loaded = invoke("plan", fit_json, "--budget", BUDGET, "--hparams-law", edited, "--allow-edited")
    assert loaded.exit_code == 0, loaded.output
    panels, warned = _panels_opening_with_a_warning(loaded.output)
    assert warned == panels >= 1
    # the previous release wrote json.dumps(fit.to_dict(), indent=1)
    old = tmp_path / "hp_old.json"
    old.write_text(json.dumps(fit.to_dict(), indent=1, default=float))
    assert "earlier release" in get_hparam_law(str(old)).file_notes[0]


def test_critical_batch_law_files(fit_json, tmp_path):
    law = CriticalBatchLaw(name="noise scale", b_star=2e8, alpha_b=0.21, citation="test", samples=[[19.1, 4.7]] * 3)
    path = tmp_path / "cb.json"
    write_law_file(law, path)
    back = get_critical_batch_law(str(path))
    assert back.file_notes == [] and (back.b_star, back.alpha_b, back.samples) == (law.b_star, law.alpha_b, law.samples)
    edited = _edit(path, tmp_path, lambda d: d.__setitem__("b_star", 1.0), "cb_edit.json")
    text = _refused(invoke("plan", fit_json, "--budget", BUDGET, "--critical-batch", edited))
    assert "key b_star changed" in text and str(edited) in text
    assert get_critical_batch_law(str(edited), allow_edited=True).b_star == 1.0
    for change, why in ((lambda d: d.__setitem__("level", 2), "level is 2"),
                        (lambda d: d.__setitem__("samples", [[None, 1.0]]), "non-finite"),
                        (lambda d: d.__setitem__("alpha_b", -0.2), "alpha_b is -0.2")):
        bad = _edit(path, tmp_path, change, "cb_bad.json")
        with pytest.raises(ValueError, match=re.escape(why)):
            get_critical_batch_law(str(bad), allow_edited=True)
    old = tmp_path / "cb_old.json"                       # the previous release: json.dumps(law.to_dict(), indent=1)
    old.write_text(json.dumps(law.to_dict(), indent=1))
    assert "earlier release" in get_critical_batch_law(str(old)).file_notes[0]


def _schedule_curve(steps=300):
    truth = {"L0": 1.0, "A": 0.6, "alpha": 0.4, "C": 0.1}      # tests/test_lr_schedule.py TRUTH
    lr = schedule_lr("wsd", steps, peak_lr=3e-3, warmup=30)
    s1, s2 = schedule_areas(lr, 0.999)
    loss = LR_SCHEDULE.predict(LR_SCHEDULE.from_public(truth), np.column_stack([s1, s2]))
    loss = loss * np.exp(np.random.default_rng(0).normal(0.0, 0.003, steps))
    import pandas as pd

    return pd.DataFrame({"run": "wsd", "step": np.arange(1, steps + 1), "lr": lr, "loss": loss})


def test_schedule_fit_files(tmp_path):
    fit = sl.fit_schedule(_schedule_curve(), n_boot=12)
    path = tmp_path / "sched.json"
    fit.to_json(path)
    back = sl.ScheduleFit.from_json(path)
    assert back.file_notes == [] and back.params == fit.params and back.ci == fit.ci
    args = ("schedule", "predict", None, "--schedule", "cosine", "--steps", "400")
    edited = _edit(path, tmp_path, lambda d: d.__setitem__("level", 2), "sched_edit.json")
    text = _refused(invoke(*[a if a is not None else edited for a in args]))
    assert "key level changed" in text and str(edited) in text
    text = _refused(invoke(*[a if a is not None else edited for a in args], "--allow-edited"))
    assert "level is 2" in text
    cut = _edit(path, tmp_path, lambda d: d.__setitem__("samples", [r[:-1] for r in d["samples"]]), "sched_cut.json")
    with pytest.raises(ValueError, match="samples is not a table"):
        sl.ScheduleFit.from_json(cut, allow_edited=True)
    nan = _edit(path, tmp_path, lambda d: d.__setitem__("samples", [[None] * len(r) for r in d["samples"]]),
                "sched_nan.json")
    assert "no confidence interval" in sl.ScheduleFit.from_json(nan, allow_edited=True).file_notes[-1]
    loaded = invoke(*[a if a is not None else nan for a in args], "--allow-edited")
    assert loaded.exit_code == 0, loaded.output
    assert _panels_opening_with_a_warning(loaded.output) == (1, 1)
    assert _warning_lines(loaded.output) == 2          # edited, and no confidence interval
    old = tmp_path / "sched_old.json"                   # the previous release: jsonio.dumps(fit.to_dict())
    d = json.loads(path.read_text())
    old.write_text(json.dumps({k: v for k, v in d.items() if k not in ("schema_version", "checksum")}))
    assert "earlier release" in sl.ScheduleFit.from_json(old).file_notes[0]
    assert math.isclose(sl.ScheduleFit.from_json(old).params["alpha"], fit.params["alpha"])
