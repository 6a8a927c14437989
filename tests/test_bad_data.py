"""Bad input never becomes a confident answer (issue 17, data side): values outside physical
ranges are refused with the range stated; unit slips are refused (C/(6·N·D) near a power of
1000) or loaded with a warning naming the rows, the column and the likely unit; seed replicates
are not duplicates; messages name the CLI options too. Every number a test checks is derived
from the rule's constants (PHYSICAL_RANGES, PLAUSIBILITY, UNIT_SLIP_FACTOR), not pasted."""
from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli.render import describe_error
from scalinglab.data.builtin import EPOCH_LAW
from scalinglab.data.readers import load_runs
from scalinglab.data.schema import (
    CANONICAL_COLUMNS,
    COLUMN_HELP,
    NUMERIC_COLUMNS,
    PHYSICAL_RANGES,
    PLAUSIBILITY,
    UNIT_SLIP_FACTOR,
    RunDataError,
    RunDataWarning,
    unit_slip_power,
    validate_runs,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
SIZE_FACTORS = (1e3, 1e6, 1e9, 1e12)
UNIT_WORDS = {1e3: "thousands", 1e6: "millions", 1e9: "billions", 1e12: "trillions"}


@pytest.fixture(autouse=True)
def numpy_warnings_are_errors():
    """No overflow (or any other numpy RuntimeWarning) may leak out of loading."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def chinchilla(n, d, law=EPOCH_LAW):
    return law["E"] + law["A"] / np.asarray(n) ** law["alpha"] + law["B"] / np.asarray(d) ** law["beta"]


def ladder(budgets=(1e18, 1e19)) -> pd.DataFrame:
    """A plausible little IsoFLOP ladder: 8 runs, tokens per parameter between 2 and 500."""
    rows = []
    for c in budgets:
        for n in np.geomspace(math.sqrt(c / (6 * 500)), math.sqrt(c / (6 * 2)), 4):
            rows.append({"params": n, "tokens": c / (6 * n)})
    frame = pd.DataFrame(rows)
    frame["loss"] = chinchilla(frame["params"], frame["tokens"])
    return frame


def label(row: int) -> str:
    """How a CSV's 1-based data row is named in messages."""
    return f"data row {row} (line {row + 1} of the file)"


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "runs.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def numbers_after(text: str, prefix: str) -> list[float]:
    """The numbers that follow ``prefix`` in ``text`` (as written: 1e15, 0.001, 20)."""
    return [float(m) for m in re.findall(re.escape(prefix) + r"\s*([-+]?[0-9.]+(?:e[-+]?\d+)?)", text)]


def stated_range(message: str) -> tuple[float, float]:
    match = re.search(r"physical range [\[(]([^,]+), ([^\])]+)[\])]", message)
    assert match, message
    return float(match.group(1)), float(match.group(2))


def closest_size_factor(tokens_per_param) -> float:
    """The rule for the likely unit: the power of 1000 that brings D/N closest to the typical."""
    target = math.log10(PLAUSIBILITY["typical_tokens_per_param"])
    return min(SIZE_FACTORS, key=lambda f: abs(math.log10(tokens_per_param(f)) - target))


# ----------------------------------------------------------------------------------------------
# physical ranges: refused, naming file, row, column and the range
# ----------------------------------------------------------------------------------------------

def outside_values(column: str) -> list[float]:
    r = PHYSICAL_RANGES[column]
    values = [r.high * 10.0, 1e300]
    if r.high_open:
        values.append(r.high)
    if r.low > 0:
        values.append(r.low / 2.0)
    return values


@pytest.mark.parametrize("column", sorted(PHYSICAL_RANGES))
def test_values_outside_the_physical_range_are_refused_with_the_range(tmp_path, column):
    for value in outside_values(column):
        frame = ladder()
        if column in ("budget", "unique_tokens"):
            frame[column] = frame["tokens"] * (6 * frame["params"] if column == "budget" else 1.0)
        if column == "flops":
            frame["flops"] = 6 * frame["params"] * frame["tokens"]
        frame[column] = frame[column].astype(float)
        frame.loc[2, column] = value
        path = write(tmp_path, frame)
        with pytest.raises(RunDataError) as info:
            load_runs(path)
        message = str(info.value)
        bad = [e for e in info.value.errors if f"column '{column}'" in e and "physical range" in e]
        assert bad and all(e.startswith(label(3)) for e in bad), message
        assert message.startswith(f"{path}:")
        low, high = stated_range(bad[0])
        assert (low, high) == (PHYSICAL_RANGES[column].low, PHYSICAL_RANGES[column].high)
        assert PHYSICAL_RANGES[column].unit in bad[0] and COLUMN_HELP[column] in bad[0]


def test_the_physical_ranges_are_stated_as_the_issue_asks():
    assert {c: (r.low, r.high) for c, r in PHYSICAL_RANGES.items() if c != "unique_tokens"} == {
        "params": (1, 1e15), "tokens": (1, 1e16), "flops": (1, 1e30), "budget": (1, 1e30), "loss": (0, 1e3)}
    assert PHYSICAL_RANGES["loss"].low_open and PHYSICAL_RANGES["loss"].high_open
    assert str(PHYSICAL_RANGES["loss"]) == "(0, 1e3) nats/token"


@pytest.mark.parametrize("column", ["params", "loss"])
def test_values_at_the_edges_of_the_range_load(column):
    r = PHYSICAL_RANGES[column]
    inside = [r.low if not r.low_open else r.low + 1e-6, r.high if not r.high_open else r.high * (1 - 1e-9)]
    for value in inside:
        frame = ladder()
        frame.loc[0, column] = value
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunDataWarning)
            assert len(load_runs(frame)) == len(frame)


def test_params_1e300_is_refused_without_an_overflow_warning(tmp_path):
    frame = ladder()
    frame["flops"] = 6 * frame["params"] * frame["tokens"]
    frame.loc[4, "params"] = 1e300                  # 6·N·D would be inf
    path = write(tmp_path, frame)
    with pytest.raises(RunDataError) as info:       # the autouse fixture turns overflow into an error
        load_runs(path)
    assert len(info.value.errors) == 1, str(info.value)   # no second complaint about C/(6N) of that row
    assert info.value.errors[0].startswith(f"{label(5)}, column 'params': 1e+300 is outside")


def test_loss_1e300_is_refused(tmp_path):
    frame = ladder()
    frame.loc[1, "loss"] = 1e300
    path = write(tmp_path, frame)
    with pytest.raises(RunDataError, match=re.escape(f"{label(2)}, column 'loss': 1e+300 is outside the "
                                                     f"physical range {PHYSICAL_RANGES['loss']}")):
        load_runs(path)


def test_a_filled_in_value_outside_its_range_is_refused_naming_its_sources(tmp_path):
    frame = ladder().drop(columns="tokens")
    frame["flops"] = 6 * frame["params"] * PHYSICAL_RANGES["tokens"].high * 10    # D = C/(6N) = 10x the limit
    frame.loc[1:, "flops"] = 1e19
    path = write(tmp_path, frame)
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    (error,) = info.value.errors
    assert error.startswith(f"{label(1)}, tokens derived as C/(6N) from column 'flops' and column 'params'")
    assert stated_range(error) == (PHYSICAL_RANGES["tokens"].low, PHYSICAL_RANGES["tokens"].high)


def test_a_count_below_one_is_said_to_be_in_a_larger_unit(tmp_path):
    frame = ladder()
    frame["params"] = frame["params"] / 1e9                    # sizes in billions: 0.002 ... 0.1
    path = write(tmp_path, frame)
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    below = [e for e in info.value.errors if "column 'params'" in e]
    assert len(below) == int((frame["params"] < PHYSICAL_RANGES["params"].low).sum())
    assert all("larger unit" in e and "billions" in e for e in below)


# ----------------------------------------------------------------------------------------------
# unit slips that load: a warning naming the rows, the column and the likely unit
# ----------------------------------------------------------------------------------------------

def test_params_in_millions_warn_for_the_column_with_the_median_and_the_factor(tmp_path):
    frame = ladder()
    frame["params"] = np.round(frame["params"] / 1e6, 1)      # "125" meaning 125M
    assert (frame["params"] < PLAUSIBILITY["min_params"]).all()
    path = write(tmp_path, frame)
    table = load_runs(path)
    (warning,) = table.warnings
    factor = closest_size_factor(lambda f: np.median(frame["tokens"]) / (np.median(frame["params"]) * f))
    assert factor == 1e6                                    # the rule finds the slip made above
    median = float(np.median(frame["params"]))
    assert warning.startswith(f"{path}: column 'params' looks like it is in {UNIT_WORDS[factor]} "
                              f"(median {median:.4g}): multiply by 1e{round(math.log10(factor))}")
    assert f"all {len(frame)} rows" in warning
    assert numbers_after(warning, "fewer than about") == [PLAUSIBILITY["min_params"]]
    assert "1 warning" in repr(table)


def test_tokens_in_billions_warn_for_the_column(tmp_path):
    frame = ladder((1e20, 1e21))                            # tokens from 5.8e9: in billions, >= 1
    frame["tokens"] = frame["tokens"] / 1e9
    path = write(tmp_path, frame)
    (warning,) = load_runs(path).warnings
    factor = closest_size_factor(lambda f: np.median(frame["tokens"]) * f / np.median(frame["params"]))
    assert factor == 1e9
    assert warning.startswith(f"{path}: column 'tokens' looks like it is in {UNIT_WORDS[factor]}")
    assert f"multiply by 1e{round(math.log10(factor))}" in warning


def test_one_row_in_millions_is_named_by_its_row(tmp_path):
    frame = ladder()
    frame.loc[3, "params"] = frame.loc[3, "params"] / 1e6
    path = write(tmp_path, frame)
    (warning,) = load_runs(path).warnings
    assert warning.startswith(f"{path}: {label(4)}, column 'params': ")
    factor = closest_size_factor(lambda f: frame.loc[3, "tokens"] / (frame.loc[3, "params"] * f))
    assert f"in {UNIT_WORDS[factor]}: multiply by 1e{round(math.log10(factor))}" in warning


@pytest.mark.parametrize("column,factor,kind", [("params", 1e6, "min_tokens_per_param"),
                                                ("tokens", 1e6, "max_tokens_per_param")])
def test_tokens_per_parameter_far_off_names_the_row_and_the_limit(tmp_path, column, factor, kind):
    frame = ladder()
    frame.loc[3, column] = frame.loc[3, column] * factor     # row 4: the fewest tokens, the most params
    tpp = frame.loc[3, "tokens"] / frame.loc[3, "params"]
    limit = PLAUSIBILITY[kind]
    assert (tpp < limit) if kind.startswith("min") else (tpp > limit)      # the rule fires
    path = write(tmp_path, frame)
    (warning,) = load_runs(path).warnings
    assert warning.startswith(f"{path}: {label(4)}, column '")
    assert numbers_after(warning, "below" if kind.startswith("min") else "above") == [limit]
    assert "multiply by" in warning and "that many times too" in warning


def test_flops_in_units_of_1e9_warn_with_the_factor(tmp_path):
    frame = ladder((1e20, 1e21))
    frame["flops"] = 6 * frame["params"] * frame["tokens"] / 1e9        # tokens = C/(6N) far too small
    frame = frame.drop(columns="tokens")
    path = write(tmp_path, frame)
    (warning,) = load_runs(path).warnings
    median_n = np.median(frame["params"])
    target = math.log10(PLAUSIBILITY["typical_tokens_per_param"])
    factor = min((1000.0 ** k for k in range(1, 11)),
                 key=lambda f: abs(math.log10(np.median(frame["flops"]) * f / (6 * median_n ** 2)) - target))
    assert factor == 1e9
    assert warning.startswith(f"{path}: column 'flops' looks like it is in units of 1e9 FLOPs")


def test_plausible_ladders_and_the_public_data_give_no_warnings():
    assert load_runs(ladder()).warnings == []


@needs_shared
@pytest.mark.parametrize("name,options", [
    ("chinchilla_epoch_svg.csv", {"mapping": {"params": "Model Size", "flops": "Training FLOP"}}),
    ("porian_isoflops.csv", {"group": "config"}),           # real points down to D/N = 0.006
    ("gemstones_hot.jsonl", {"mapping": {"params": "params_active_precise", "loss": "final_loss"}}),
    ("datablations_losses.csv", {"mapping": {"params": "num_params", "tokens": "token_num", "flops": None},
                                 "group": "data"}),
])
def test_public_ladders_load_without_warnings(name, options):
    assert load_runs(SHARED / name, **options).warnings == []


@needs_shared
def test_public_table_in_billions_and_trillions_is_refused_naming_the_unit():
    path = SHARED / "obsscaling_base_llm_benchmark_eval.csv"
    with pytest.raises(RunDataError) as info:
        load_runs(path, mapping={"params": "Model Size (B)", "tokens": "Pretraining Data Size (T)",
                                 "loss": "MMLU"})
    sizes = [e for e in info.value.errors if "column 'params' (from 'Model Size (B)')" in e]
    assert sizes and all("billions" in e for e in sizes)


def test_warnings_survive_pruning_and_refining():
    frame = pd.concat([ladder()] * 2, ignore_index=True)
    frame["seed"] = np.repeat([0, 1], len(frame) // 2)
    frame.loc[0, "params"] = frame.loc[0, "params"] / 1e6
    table = load_runs(frame, drop_top_loss=1)
    assert len(table.warnings) == 1 and "row 1," in table.warnings[0]
    assert load_runs(table, where="params > 0").warnings == table.warnings


def test_validate_runs_without_a_list_issues_run_data_warnings():
    frame = ladder()
    frame["params"] = frame["params"] / 1e6
    with pytest.warns(RunDataWarning, match="column 'params' looks like it is in millions"):
        validate_runs(frame)
    collected: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunDataWarning)
        validate_runs(frame, warnings=collected)
    assert len(collected) == 1


# ----------------------------------------------------------------------------------------------
# C/(6·N·D) near a power of 1000: a unit slip, refused as one
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("column,power", [("params", -1), ("params", -2), ("params", -3), ("tokens", -3),
                                          ("tokens", -2), ("flops", 2), ("flops", -2)])
def test_a_unit_slip_between_flops_and_tokens_names_the_column_and_the_factor(tmp_path, column, power):
    frame = ladder((1e20, 1e22))                     # row 6 has N >= 1e9 and D >= 1e10: slips stay >= 1
    frame["flops"] = 6 * frame["params"] * frame["tokens"]
    frame.loc[5, column] = frame.loc[5, column] * 1000.0 ** power
    path = write(tmp_path, frame)
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    (error,) = info.value.errors
    message = str(info.value)
    slip = frame.loc[5, "flops"] / (6 * frame.loc[5, "params"] * frame.loc[5, "tokens"])
    factor = 1000.0 ** abs(power)
    assert error.startswith(f"{label(6)}, column 'tokens' vs column 'flops'")
    assert "a unit slip, not a FLOP-counting convention" in error
    assert numbers_after(error, "C/(6·N·D) =") == [pytest.approx(slip, rel=1e-3)]
    assert numbers_after(error, "within a factor") == [UNIT_SLIP_FACTOR]
    assert f"column '{column}' looks" in error
    assert (f"by 1e{round(math.log10(factor))}") in error
    if column != "flops":
        assert f"in {UNIT_WORDS[factor]}: multiply it" in error
    assert "raise flops_tolerance" not in message and "would only hide the slip" in message
    at_cli = describe_error(info.value)                 # the CLI spells the arguments as its options
    assert "--flops-tolerance" in at_cli and "--map flops=" in at_cli


def test_a_unit_slip_is_refused_whatever_the_tolerance_and_warned_without_one(tmp_path):
    frame = ladder()
    frame["flops"] = 6 * frame["params"] * frame["tokens"]
    frame.loc[0, "flops"] *= 1e6
    path = write(tmp_path, frame)
    with pytest.raises(RunDataError, match="unit slip"):
        load_runs(path, flops_tolerance=1e7)            # a tolerance that would admit the ratio
    (warning,) = load_runs(path, flops_tolerance=None).warnings
    assert warning.startswith(f"{path}: {label(1)}, column 'tokens' vs column 'flops'") and "unit slip" in warning


def test_unit_slip_power_follows_its_factor():
    eps = 1e-6
    for k in (-3, -2, -1, 1, 2, 3, 7):
        inside = 1000.0 ** k * np.array([UNIT_SLIP_FACTOR * (1 - eps), 1 / (UNIT_SLIP_FACTOR * (1 - eps))])
        outside = 1000.0 ** k * np.array([UNIT_SLIP_FACTOR * (1 + eps), 1 / (UNIT_SLIP_FACTOR * (1 + eps))])
        assert unit_slip_power(inside).tolist() == [k, k]
        assert unit_slip_power(outside).tolist() == [0, 0]
    assert unit_slip_power(np.array([1.0, 1.3, 30.0, 0.0, np.nan, np.inf])).tolist() == [0] * 6


def test_a_ratio_off_by_no_power_of_1000_keeps_the_tolerance_advice(tmp_path):
    frame = ladder()
    frame["flops"] = 6 * frame["params"] * frame["tokens"]
    frame.loc[1, "flops"] *= 1000.0 * UNIT_SLIP_FACTOR * 2        # 4000: no power of 1000
    path = write(tmp_path, frame)
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    assert "unit slip" not in str(info.value) and "raise flops_tolerance" in str(info.value)
    assert "raise --flops-tolerance" in describe_error(info.value)


def test_chance_powers_of_1000_among_many_disagreeing_rows_are_not_called_slips(tmp_path):
    frame = ladder()
    frame["flops"] = 6 * frame["params"] * frame["tokens"] * np.geomspace(3, 300, len(frame))
    frame.loc[0, "flops"] = 6 * frame.loc[0, "params"] * frame.loc[0, "tokens"] * 1000.0
    path = write(tmp_path, frame)
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    assert len(info.value.errors) == len(frame) and "unit slip" not in str(info.value)


# ----------------------------------------------------------------------------------------------
# seed replicates
# ----------------------------------------------------------------------------------------------

def replicated(n_seeds: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = [ladder().assign(seed=s) for s in range(n_seeds)]
    frame = pd.concat(frames, ignore_index=True)
    frame["loss"] = frame["loss"] * np.exp(0.01 * rng.standard_normal(len(frame)))
    return frame


def test_seed_is_canonical_numeric_and_documented():
    assert "seed" in CANONICAL_COLUMNS and "seed" in NUMERIC_COLUMNS and "seed" in COLUMN_HELP


def test_rows_differing_only_in_seed_are_replicates_not_duplicates():
    frame = replicated()
    table = load_runs(frame)
    assert len(table) == len(frame) and table.warnings == []
    assert table.df["seed"].tolist() == frame["seed"].astype(float).tolist()


def test_same_coordinates_and_same_seed_are_still_duplicates(tmp_path):
    frame = replicated()
    frame.loc[len(frame) - 1, "seed"] = 0             # the last run repeated with seed 0
    path = write(tmp_path, frame)
    last = len(frame)
    first = int(np.flatnonzero((frame["params"] == frame["params"].iloc[-1]) & (frame["seed"] == 0))[0]) + 1
    with pytest.raises(RunDataError, match=re.escape(f"{label(first)} and {label(last)} are duplicates")):
        load_runs(path)


def test_duplicates_without_seed_or_run_id_are_refused_and_told_about_seed(tmp_path):
    frame = replicated().drop(columns="seed")
    path = write(tmp_path, frame)
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    message = str(info.value)
    assert f"{label(1)} and {label(len(ladder()) + 1)} are duplicates" in message
    at_cli = describe_error(info.value)                 # the CLI spells the arguments as its options
    assert "mapping={'seed'" in message and "--map seed=" in at_cli and "--group" in at_cli and "--where" in at_cli


def test_same_run_id_with_different_seeds_are_replicates():
    frame = replicated().assign(run_id=lambda f: [f"r{i}" for i in range(len(ladder()))] * 2)
    assert len(load_runs(frame)) == len(frame)
    frame.loc[len(frame) - 1, "seed"] = 0
    with pytest.raises(RunDataError, match="duplicates: same run_id='r7', seed=0"):
        load_runs(frame)


@pytest.mark.parametrize("bad", [-1, 0.5])
def test_seed_must_be_a_whole_number_at_least_zero(tmp_path, bad):
    frame = replicated()
    frame["seed"] = frame["seed"].astype(float)
    frame.loc[3, "seed"] = bad
    path = write(tmp_path, frame)
    with pytest.raises(RunDataError, match=re.escape(f"{label(4)}, column 'seed': {bad:g} is not valid; "
                                                     f"expected {COLUMN_HELP['seed']}")):
        load_runs(path)


def test_approach2_and_the_fit_accept_seed_replicates():
    from scalinglab.fitting.approach2 import isoflop_approach2
    from scalinglab.fitting.engine import fit

    frame = replicated(3)
    frame["flops"] = 6 * frame["params"] * frame["tokens"]
    table = load_runs(frame)
    result = isoflop_approach2(table, n_bootstrap=20)
    per_budget = len(ladder()) // 2
    assert (result.budgets["n_points"] == 3 * per_budget).all()
    assert (result.budgets["n_sizes"] == per_budget).all()
    averaged = [w for w in result.warnings if "repeated sizes averaged" in w]
    assert len(averaged) == 2 and all(f"{2 * per_budget} repeated sizes" in w for w in averaged)
    fitted = fit(table, "chinchilla")
    assert np.isfinite(fitted.objective) and fitted.params["alpha"] > 0


# ----------------------------------------------------------------------------------------------
# messages in the CLI user's language too
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options,option", [
    ({"flops_tolerance": 0}, "--flops-tolerance"),
    ({"flops_tolerance": -1.0}, "--flops-tolerance"),
    ({"where": "nosuch > 1"}, "--where"),
    ({"where": "params > 1e30"}, "--where"),
    ({"where": "params + 1"}, "--where"),
    ({"group": "nosuch"}, "--group"),
    ({"drop_top_loss": -1}, "--drop-top-loss"),
    ({"drop_top_loss": 8}, "--drop-top-loss"),
    ({"drop_outliers": 0.0}, "--drop-outliers"),
    ({"drop_outliers": 3.0}, "--drop-outliers"),          # too few rows for its trend
    ({"mapping": {"n_params": "params"}}, "--map"),
    ({"mapping": {"params": "Model Size"}}, "--map"),
    ({"mapping": {"params": "tokens", "flops": "tokens"}}, "--map"),
])
def test_messages_that_name_an_argument_name_the_cli_option_too(options, option):
    """The API's message names the argument; the CLI's edge spells the same message with the option."""
    with pytest.raises(RunDataError) as info:
        load_runs(ladder(), **options)
    message = str(info.value)
    name = next(iter(options))
    assert name in message and option not in message, message
    assert option in describe_error(info.value), describe_error(info.value)


def test_hints_give_the_cli_options():
    frame = ladder()
    frame["flops"] = 6 * frame["params"] * frame["tokens"] * 1.5
    with pytest.raises(RunDataError) as info:
        load_runs(frame)
    message, at_cli = str(info.value), describe_error(info.value)
    for api, cli in (("flops_tolerance", "--flops-tolerance"), ("mapping={'flops': None}", "--map flops="),
                     ("mapping={'budget': '<column>'}", "--map budget=")):
        assert api in message and cli in at_cli and cli not in message


# ----------------------------------------------------------------------------------------------
# property: one corrupted row of a random ladder is refused or warned about, by its row
# ----------------------------------------------------------------------------------------------

LAYOUTS = ("tokens", "flops", "both", "budget")
CORRUPTIONS = ("times 1e6", "over 1e6", "sign", "1e300", "nan")


def random_ladder(rng: np.random.Generator, layout: str) -> pd.DataFrame:
    """2-3 budgets in [1e17, 3e21], 4-6 sizes each with tokens per parameter in [2, 500] (how
    real ladders are drawn), losses from the Epoch law with 1% noise."""
    budgets = 10.0 ** rng.choice(np.arange(17.0, 22.0, 0.5), size=int(rng.integers(2, 4)), replace=False)
    rows = []
    for c in np.sort(budgets):
        for n in np.geomspace(math.sqrt(c / (6 * 500)), math.sqrt(c / (6 * 2)), int(rng.integers(4, 7))):
            rows.append({"params": n, "tokens": c / (6 * n), "c": c})
    frame = pd.DataFrame(rows)
    frame["loss"] = chinchilla(frame["params"], frame["tokens"]) * np.exp(0.01 * rng.standard_normal(len(frame)))
    if layout in ("flops", "both"):
        frame["flops"] = 6 * frame["params"] * frame["tokens"]
    if layout == "budget":
        frame["budget"] = frame["c"]
    if layout in ("flops", "budget"):
        frame = frame.drop(columns="tokens")
    return frame.drop(columns="c")


def corrupt(frame: pd.DataFrame, row: int, column: str, how: str) -> pd.DataFrame:
    frame = frame.copy()
    value = frame.loc[row, column]
    frame.loc[row, column] = {"times 1e6": value * 1e6, "over 1e6": value / 1e6, "sign": -value,
                              "1e300": 1e300, "nan": np.nan}[how]
    return frame


def test_property_one_corrupted_row_is_refused_or_warned_about_by_its_row(tmp_path):
    rng = np.random.default_rng(17)
    outcomes = {"refused": 0, "warned": 0, "recovered": 0}
    for trial in range(240):
        layout = LAYOUTS[trial % len(LAYOUTS)]
        clean = random_ladder(rng, layout)
        assert load_runs(clean).warnings == [], layout       # no false alarm on a clean ladder
        how = CORRUPTIONS[(trial // len(LAYOUTS)) % len(CORRUPTIONS)]
        columns = [c for c in ("params", "tokens", "flops", "budget", "loss") if c in clean.columns]
        if how in ("times 1e6", "over 1e6"):
            columns = [c for c in columns if c != "loss"]    # a unit slip is in a count
        column = columns[int(rng.integers(len(columns)))]
        row = int(rng.integers(len(clean)))
        path = write(tmp_path, corrupt(clean, row, column, how), f"ladder{trial}.csv")
        name = label(row + 1)
        context = f"trial {trial}: {layout} ladder, row {row + 1}, {column} {how}"
        try:
            table = load_runs(path)
        except RunDataError as exc:
            outcomes["refused"] += 1
            assert str(exc).startswith(f"{path}:"), context
            assert exc.errors and all(e.startswith(name) for e in exc.errors), f"{context}\n{exc}"
            assert all("column '" in e for e in exc.errors), f"{context}\n{exc}"
            continue
        if table.warnings:
            outcomes["warned"] += 1
            assert all(w.startswith(f"{path}: {name}, column '") for w in table.warnings), \
                f"{context}\n{table.warnings}"
            assert all("looks like it is in" in w or "unit slip" in w for w in table.warnings), context
            continue
        # Loaded silently: only a missing cell that the other of tokens/flops restores exactly.
        outcomes["recovered"] += 1
        assert how == "nan" and layout == "both" and column in ("tokens", "flops"), context
        np.testing.assert_allclose(table.df[column], clean[column], rtol=1e-12, err_msg=context)
    assert min(outcomes.values()) > 0, outcomes            # every outcome was exercised


def test_counts_made_by_scalinglab_itself_are_not_taken_for_unit_slips():
    """A sweep store's sizes are exact counts (a CPU ladder of 3,376-parameter models is what it
    says): the same rows warn from a file, and not when they carry the store's exact-units mark
    (``data.store.curve_runs_frame`` sets it; ``.db`` files are read the same way)."""
    frame = ladder()
    frame["params"] = np.round(frame["params"] / 1e6, 1)
    frame["tokens"] = 6.0 * frame["params"] * 2000.0
    frame = frame.drop(columns=[c for c in ("flops",) if c in frame.columns])
    assert load_runs(frame).warnings                       # a plain table: the size is implausible
    frame.attrs.update(source="ladder.db", exact_units=True)
    table = load_runs(frame)
    assert table.warnings == [] and table.source == "ladder.db"
