"""data/: every bad input gets a clear error naming file, row and column; readers agree; the
shared public ladders load; the built-in ladder reproduces the law it states."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar

from scalinglab.cli.render import describe_error
from scalinglab.data.builtin import (
    DEMO_DESCRIPTION,
    EPOCH_LAW,
    synthetic_ladder,
    synthetic_training_curves,
)
from scalinglab.data.readers import load_runs
from scalinglab.data.schema import (
    CANONICAL_COLUMNS,
    MAX_REPORTED_ERRORS,
    RunDataError,
    parse_count,
    validate_runs,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
CHINCHILLA_MAP = {"params": "Model Size", "flops": "Training FLOP"}


def small_runs() -> pd.DataFrame:
    n = np.array([1e7, 3e7, 1e8, 3e8])
    d = np.array([2e9, 1e9, 5e8, 2e8])
    return pd.DataFrame({"params": n, "tokens": d, "loss": [3.9, 3.6, 3.4, 3.5],
                         "run_id": ["a", "b", "c", "d"], "note": ["x", "y", "z", "w"]})


def write_csv(tmp_path: Path, text: str, name: str = "runs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------------------------
# files that cannot be read
# ----------------------------------------------------------------------------------------------

def test_missing_file_names_the_file_and_formats(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(RunDataError, match=r"nope\.csv: no such file.*\.parquet"):
        load_runs(path)


def test_empty_file(tmp_path):
    path = write_csv(tmp_path, "")
    with pytest.raises(RunDataError, match=r"runs\.csv: the file is empty"):
        load_runs(path)


def test_header_only_file_has_no_rows(tmp_path):
    path = write_csv(tmp_path, "params,tokens,loss\n")
    with pytest.raises(RunDataError, match=r"runs\.csv: no data rows"):
        load_runs(path)


def test_unsupported_suffix_lists_supported(tmp_path):
    path = write_csv(tmp_path, "params,tokens,loss\n1,2,3\n", name="runs.xlsx")
    with pytest.raises(RunDataError, match=r"runs\.xlsx: unsupported file type '\.xlsx'.*\.csv.*\.jsonl"):
        load_runs(path)


def test_malformed_jsonl_line_is_named(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"params": 1e7, "tokens": 2e9, "loss": 3.9}\n{"params": oops}\n')
    with pytest.raises(RunDataError, match=r"runs\.jsonl: line 2 is not valid JSON"):
        load_runs(path)


# ----------------------------------------------------------------------------------------------
# columns and mapping
# ----------------------------------------------------------------------------------------------

def test_missing_required_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path, "size,tokens,loss\n1e7,2e9,3.9\n")
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    message = str(info.value)
    assert "runs.csv" in message and "'params'" in message and "'size'" in message
    assert "mapping" in message


def test_tokens_or_flops_required(tmp_path):
    path = write_csv(tmp_path, "params,loss\n1e7,3.9\n")
    with pytest.raises(RunDataError, match="tokens or flops"):
        load_runs(path)


def test_mapping_to_absent_column_lists_columns(tmp_path):
    path = write_csv(tmp_path, "Model Size,tokens,loss\n1e7,2e9,3.9\n")
    with pytest.raises(RunDataError) as info:
        load_runs(path, mapping={"params": "Model size"})
    # the library speaks the API's words; the CLI's edge names the option (cli/options.py)
    assert "mapping={'params': 'Model size'}" in str(info.value) and "'Model Size'" in str(info.value)
    assert '--map params="Model size"' in describe_error(info.value)


def test_unknown_canonical_name_lists_canonical_names(tmp_path):
    path = write_csv(tmp_path, "Model Size,tokens,loss\n1e7,2e9,3.9\n")
    with pytest.raises(RunDataError) as info:
        load_runs(path, mapping={"n_params": "Model Size"})
    message = str(info.value)
    assert "n_params" in message and all(c in message for c in CANONICAL_COLUMNS)


def test_mapping_renames_and_keeps_extra_columns(tmp_path):
    path = write_csv(tmp_path, "Model Size,D,Final,color\n1e7,2e9,3.9,red\n1e8,1e9,3.5,blue\n")
    table = load_runs(path, mapping={"params": "Model Size", "tokens": "D", "loss": "Final"})
    assert table.df["params"].tolist() == [1e7, 1e8]
    assert table.df["color"].tolist() == ["red", "blue"]
    assert table.df["source_row"].tolist() == [1, 2]


def test_mapping_none_ignores_a_canonical_column_but_keeps_it(tmp_path):
    # flops deliberately wrong: ignoring it must recompute C = 6ND and keep the original aside
    path = write_csv(tmp_path, "params,tokens,flops,loss\n1e7,2e9,1,3.9\n")
    table = load_runs(path, mapping={"flops": None})
    assert table.df["flops"].iloc[0] == 6 * 1e7 * 2e9
    assert table.df["orig_flops"].iloc[0] == 1
    assert any("orig_flops" in note for note in table.notes)


# ----------------------------------------------------------------------------------------------
# values
# ----------------------------------------------------------------------------------------------

def test_non_numeric_value_names_row_column_value(tmp_path):
    path = write_csv(tmp_path, "params,tokens,loss\n1e7,2e9,3.9\nabc,1e9,3.5\n")
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    message = str(info.value)
    assert "runs.csv" in message
    assert "data row 2 (line 3 of the file), column 'params': 'abc' is not a number" in message
    assert len(info.value.errors) == 1


def test_unparsable_tokens_is_one_error_not_two(tmp_path):
    path = write_csv(tmp_path, "params,tokens,loss\n1e7,abc,3.9\n")
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    assert info.value.errors == ["data row 1 (line 2 of the file), column 'tokens': 'abc' is not a number; "
                                 "expected a positive token count, e.g. 2.4e10 or '24B'"]


def test_mapped_column_is_named_by_its_source_name_too(tmp_path):
    path = write_csv(tmp_path, "Model Size,tokens,loss\n1e7,2e9,3.9\n-5,1e9,3.5\n")
    with pytest.raises(RunDataError, match=r"data row 2 \(line 3 of the file\), column 'params' "
                                           r"\(from 'Model Size'\): -5 is not valid"):
        load_runs(path, mapping={"params": "Model Size"})


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_non_positive_values_rejected(tmp_path, bad):
    path = write_csv(tmp_path, f"params,tokens,loss\n1e7,2e9,3.9\n1e8,1e9,{bad}\n")
    with pytest.raises(RunDataError, match=rf"data row 2 \(line 3 of the file\), column 'loss': "
                                           rf"{bad} is not valid; expected a positive loss"):
        load_runs(path)


def test_missing_and_infinite_values_rejected(tmp_path):
    path = write_csv(tmp_path, "params,tokens,loss\n1e7,2e9,\n1e8,inf,3.5\n")
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    message = str(info.value)
    assert "data row 1 (line 2 of the file), column 'loss': value is missing" in message
    assert "data row 2 (line 3 of the file), column 'tokens': inf is not finite" in message


def test_nan_in_a_frame_names_row_and_column():
    df = small_runs()
    df.loc[2, "loss"] = np.nan
    with pytest.raises(RunDataError, match=r"(?s)<DataFrame>: .*row 3, column 'loss': value is missing"):
        load_runs(df)


def test_jsonl_errors_name_record_and_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"params": 1e7, "tokens": 2e9, "loss": 3.9}\n\n{"params": 1e8, "tokens": 1e9, "loss": -1}\n')
    with pytest.raises(RunDataError, match=r"record 2 \(line 3 of the file\), column 'loss'"):
        load_runs(path)


def test_inconsistent_tokens_and_flops(tmp_path):
    # row 2: C/(6N) = 6e17/(6e8) = 1e9 but D = 1.2e9, off by 20%
    path = write_csv(tmp_path, "params,tokens,flops,loss\n1e7,2e9,1.2e17,3.9\n1e8,1.2e9,6e17,3.5\n")
    with pytest.raises(RunDataError) as info:
        load_runs(path)
    message = str(info.value)
    assert "data row 2 (line 3 of the file), column 'tokens' vs column 'flops'" in message
    assert "flops_tolerance" in message and "'flops': None" in message
    assert "map it to budget instead of flops" in message and "mapping={'budget': '<column>'}" in message
    assert "--map budget=" in describe_error(info.value)
    assert len(info.value.errors) == 1                # row 1 agrees exactly
    loose = load_runs(path, flops_tolerance=0.25)     # the documented ways out
    assert loose.df["tokens"].iloc[1] == 1.2e9 and loose.df["flops"].iloc[1] == 6e17
    recomputed = load_runs(path, mapping={"flops": None})
    assert recomputed.df["flops"].iloc[1] == pytest.approx(6 * 1e8 * 1.2e9, rel=1e-15)


def test_duplicates_report_both_rows(tmp_path):
    path = write_csv(tmp_path, "params,tokens,loss\n1e7,2e9,3.9\n1e8,1e9,3.5\n1e7,2e9,3.8\n")
    with pytest.raises(RunDataError, match=r"data row 1 \(line 2 of the file\) and data row 3 "
                                           r"\(line 4 of the file\) are duplicates"):
        load_runs(path)


def test_duplicates_by_run_id_and_step():
    df = pd.DataFrame({"run_id": ["a", "a", "a"], "step": [100, 200, 200], "params": 1e7,
                       "tokens": [1e8, 2e8, 2e8], "loss": [4.0, 3.8, 3.7]})
    with pytest.raises(RunDataError, match=r"row 2 and row 3 are duplicates: same run_id='a', step=200"):
        load_runs(df)
    df.loc[2, "step"] = 300
    df.loc[2, "tokens"] = 3e8
    assert len(load_runs(df)) == 3


def test_same_size_and_tokens_in_different_groups_are_not_duplicates():
    df = pd.DataFrame({"params": [1e7, 1e7], "tokens": [2e9, 2e9], "loss": [3.9, 3.8],
                       "lr": [1e-3, 3e-3]})
    assert len(load_runs(df)) == 2


def test_many_errors_are_reported_together():
    df = pd.DataFrame({"params": [-1.0] * 15, "tokens": 1e9, "loss": 3.0})
    with pytest.raises(RunDataError) as info:
        load_runs(df)
    assert len(info.value.errors) == 15
    assert str(info.value).count("column 'params'") == MAX_REPORTED_ERRORS
    assert f"and {15 - MAX_REPORTED_ERRORS} more" in str(info.value)


def test_step_must_be_whole_and_non_negative():
    df = pd.DataFrame({"params": 1e7, "tokens": [1e8, 2e8], "loss": [4.0, 3.9], "step": [1.5, -1]})
    with pytest.raises(RunDataError) as info:
        load_runs(df)
    assert len(info.value.errors) == 2 and "column 'step'" in str(info.value)


@pytest.mark.parametrize("text,value", [("2.8B", 2.8e9), ("350M", 3.5e8), ("1.5T", 1.5e12),
                                        ("70K", 7e4), ("1e9", 1e9), ("1,000", 1e3), (" 4.2b ", 4.2e9)])
def test_parse_count_suffixes(text, value):
    assert parse_count(text) == pytest.approx(value, rel=1e-15)


def test_parse_count_rejects_words():
    with pytest.raises(ValueError):
        parse_count("2.8 billion")


def test_suffixed_sizes_load_from_csv(tmp_path):
    path = write_csv(tmp_path, "num_params,tokens,loss\n2.8B,5.5e10,2.5\n350M,7e9,3.1\n")
    table = load_runs(path, mapping={"params": "num_params"})
    assert table.df["params"].tolist() == [2.8e9, 3.5e8]
    assert table.df["params"].dtype == np.float64


# ----------------------------------------------------------------------------------------------
# filling, round trips, options
# ----------------------------------------------------------------------------------------------

def test_flops_filled_as_6ND_and_tokens_as_C_over_6N():
    df = small_runs()
    table = load_runs(df)
    assert np.array_equal(table.df["flops"].to_numpy(), 6.0 * df["params"].to_numpy() * df["tokens"].to_numpy())
    by_flops = df.drop(columns="tokens").assign(flops=[6e16, 1.8e17, 6e17, 1.8e18])
    table = load_runs(by_flops)
    np.testing.assert_allclose(table.df["tokens"], by_flops["flops"] / (6 * by_flops["params"]), rtol=1e-15)


def test_tokens_filled_per_row_where_only_flops_given():
    df = pd.DataFrame({"params": [1e7, 1e8], "tokens": [2e9, np.nan], "flops": [np.nan, 6e17],
                       "loss": [3.9, 3.5]})
    table = load_runs(df)
    assert table.df["tokens"].tolist() == pytest.approx([2e9, 1e9], rel=1e-15)
    assert table.df["flops"].tolist() == pytest.approx([1.2e17, 6e17], rel=1e-15)


def test_frame_with_repeated_index_labels_is_validated_by_position():
    df = small_runs().set_axis([7, 7, 7, 7])
    df.loc[:, "loss"] = [3.9, -1.0, 3.4, 3.5]
    with pytest.raises(RunDataError, match=r"row 2, column 'loss': -1 is not valid"):
        load_runs(df)


def test_validate_runs_returns_new_frame_and_leaves_input_alone():
    df = small_runs()
    before = df.copy()
    out = validate_runs(df)
    pd.testing.assert_frame_equal(df, before)
    assert out is not df and list(out.columns[:5]) == ["params", "tokens", "flops", "loss", "run_id"]
    assert out["source_row"].tolist() == [1, 2, 3, 4]


def test_round_trip_formats_give_identical_frames(tmp_path):
    df = small_runs()
    df.to_csv(tmp_path / "r.csv", index=False)
    df.to_parquet(tmp_path / "r.parquet", index=False)
    df.to_json(tmp_path / "r.jsonl", orient="records", lines=True)
    (tmp_path / "r.json").write_text(json.dumps(df.to_dict(orient="records")))
    reference = load_runs(df).df
    for name in ("r.csv", "r.parquet", "r.jsonl", "r.json"):
        loaded = load_runs(tmp_path / name).df
        pd.testing.assert_frame_equal(loaded, reference, check_dtype=False, obj=name)
        for column in ("params", "tokens", "flops", "loss"):
            assert loaded[column].dtype == np.float64


def test_run_ids_keep_leading_zeros_in_csv(tmp_path):
    path = write_csv(tmp_path, "id,params,tokens,loss\n007,1e7,2e9,3.9\n010,1e8,1e9,3.5\n")
    assert load_runs(path, mapping={"run_id": "id"}).df["run_id"].tolist() == ["007", "010"]


def test_sweep_store_dispatches_to_runs_frame(tmp_path, monkeypatch):
    store = tmp_path / "sweep.db"
    store.write_bytes(b"not empty")
    fake = types.ModuleType("scalinglab.data.store")
    fake.runs_frame = lambda path: small_runs().assign(seen=str(path))
    monkeypatch.setitem(sys.modules, "scalinglab.data.store", fake)
    table = load_runs(store)
    assert len(table) == 4 and table.df["seen"].iloc[0] == str(store)


def test_drop_top_loss_records_what_it_dropped():
    df = small_runs()
    table = load_runs(df, drop_top_loss=2)
    assert len(table) == 2 and len(table.dropped) == 2
    assert sorted(table.dropped["loss"]) == sorted(df["loss"].nlargest(2))
    assert set(table.dropped["reason"]) == {"drop_top_loss"}
    assert set(table.dropped["source_row"]) == {1, 2}           # losses 3.9 and 3.6
    assert table.df["loss"].max() < table.dropped["loss"].min()


@pytest.mark.parametrize("bad", [-1, 4, 1.5])
def test_drop_top_loss_bad_values(bad):
    with pytest.raises(RunDataError, match="drop_top_loss"):
        load_runs(small_runs(), drop_top_loss=bad)


def test_drop_outliers_finds_an_injected_bad_run():
    df = synthetic_ladder(noise=0.01, seed=3)
    df.loc[20, "loss"] *= 1.3          # a diverged run: 30% above the law
    table = load_runs(df, drop_outliers=4.0)
    assert table.dropped["source_row"].tolist() == [21]
    assert table.dropped["reason"].tolist() == ["drop_outliers"]
    assert len(table) == len(df) - 1


def test_where_and_group():
    df = small_runs().assign(config=["p", "p", "q", "q"])
    table = load_runs(df, where="config == 'q'", group="config")
    assert table.df["group"].tolist() == ["q", "q"]
    assert table.df["source_row"].tolist() == [3, 4]       # rows still named as in the source
    with pytest.raises(RunDataError, match="selects none"):
        load_runs(df, where="config == 'r'")
    with pytest.raises(RunDataError, match=r"where='nosuch > 1': 'nosuch' is not a column") as info:
        load_runs(df, where="nosuch > 1")
    assert '--where "nosuch > 1"' in describe_error(info.value)
    with pytest.raises(RunDataError, match=r"group='nosuch' is not a column"):
        load_runs(df, group="nosuch")


def test_where_compares_numbers_even_when_written_with_suffixes(tmp_path):
    path = write_csv(tmp_path, "num_params,tokens,loss\n2.8B,5.5e10,2.5\n350M,7e9,3.1\n")
    table = load_runs(path, mapping={"params": "num_params"}, where="params > 1e9")
    assert table.df["params"].tolist() == [2.8e9]


def test_run_table_passes_through_and_refines():
    table = load_runs(small_runs())
    assert load_runs(table) is table
    refined = load_runs(table, drop_top_loss=1)
    assert len(refined) == 3 and refined.dropped["source_row"].tolist() == [1]
    with pytest.raises(RunDataError, match="already mapped"):
        load_runs(table, mapping={"params": "x"})


def test_wrong_source_type():
    with pytest.raises(RunDataError, match="expected a file path"):
        load_runs(42)


# ----------------------------------------------------------------------------------------------
# shared public data (skipped when ../shared/data is absent)
# ----------------------------------------------------------------------------------------------

@needs_shared
def test_chinchilla_epoch_svg_loads_in_one_call():
    # Besiroglu et al. 2024: 245 points, 240 after dropping the 5 highest losses
    path = SHARED / "chinchilla_epoch_svg.csv"
    assert len(load_runs(path, mapping=CHINCHILLA_MAP)) == 245
    table = load_runs(path, mapping=CHINCHILLA_MAP, drop_top_loss=5)
    assert len(table) == 240 and len(table.dropped) == 5
    raw = pd.read_csv(path)
    np.testing.assert_allclose(table.df["tokens"] * 6 * table.df["params"], table.df["flops"], rtol=1e-12)
    assert table.dropped["loss"].min() >= raw["loss"].nlargest(5).min()


@needs_shared
def test_porian_needs_a_config_choice_and_loads_with_one():
    path = SHARED / "porian_isoflops.csv"
    with pytest.raises(RunDataError, match="duplicates"):
        load_runs(path)                            # 10 configurations share (N, D) grids
    config = "rw/base/warmup=long/decay=kaplan/count=kaplan"
    raw = pd.read_csv(path)
    table = load_runs(path, where=f"config == '{config}'")
    assert len(table) == int((raw["config"] == config).sum())
    assert len(load_runs(path, group="config")) == len(raw)   # their flops are 6ND: default tolerance


@needs_shared
@pytest.mark.parametrize("name", ["gemstones_hot.jsonl", "gemstones_cool_end.jsonl"])
def test_gemstones_load(name):
    path = SHARED / name
    raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    table = load_runs(path, mapping={"params": "params_active_precise", "loss": "final_loss"})
    assert len(table) == len(raw)
    assert table.df["loss"].tolist() == [r["final_loss"] for r in raw]
    assert table.df["step"].tolist() == [r["step"] for r in raw]


@needs_shared
def test_datablations_loads_with_its_flops_column_ignored():
    path = SHARED / "datablations_losses.csv"
    mapping = {"params": "num_params", "tokens": "token_num", "unique_tokens": "tokens_per_epoch"}
    with pytest.raises(RunDataError, match="flops_tolerance"):
        load_runs(path, mapping=mapping)           # its `flops` is not 6·N·D at the checkpoint
    table = load_runs(path, mapping={**mapping, "flops": None}, group="data")
    raw = pd.read_csv(path)
    assert len(table) == len(raw)
    assert set(table.df["params"]) == {2.8e9, 4.2e9, 8.7e9}
    assert set(table.df["group"]) == {"c4", "oscar"}


# ----------------------------------------------------------------------------------------------
# budget: the nominal IsoFLOP budget a run belongs to (a label, not a FLOP count of the run)
# ----------------------------------------------------------------------------------------------

def test_budget_is_canonical_numeric_and_documented():
    from scalinglab.data import schema

    assert "budget" in CANONICAL_COLUMNS and "budget" in schema.NUMERIC_COLUMNS
    assert "budget" in schema.COLUMN_HELP and "``budget``" in schema.__doc__
    # a label, not where a run sits: it must not split one run entered twice into two
    assert "budget" not in schema._COORDINATE_COLUMNS


def test_budget_bad_values_name_file_row_column_value(tmp_path):
    # 6·N·D = 1e19 on every row but the last (6·1e6·1e6 = 6e12, labelled '6T')
    path = write_csv(tmp_path, "params,tokens,FLOP budget,loss\n"
                               "1e8,1.6666666666666666e10,1e19,3.0\n"
                               "2e8,8.333333333333333e9,abc,3.0\n"
                               "5e7,3.3333333333333332e10,-1e19,3.0\n"
                               "4e8,4.166666666666667e9,inf,3.0\n"
                               "1e9,1.6666666666666667e9,,3.0\n"
                               "1e6,1e6,6T,3.0\n")
    with pytest.raises(RunDataError) as info:
        load_runs(path, mapping={"budget": "FLOP budget"})
    expected = "the run's positive nominal FLOP budget in FLOPs, e.g. 1e19"
    assert info.value.errors == [
        f"data row 2 (line 3 of the file), column 'budget' (from 'FLOP budget'): 'abc' is not a number; "
        f"expected {expected}",
        f"data row 3 (line 4 of the file), column 'budget' (from 'FLOP budget'): -1e+19 is not valid; "
        f"expected {expected}",
        f"data row 4 (line 5 of the file), column 'budget' (from 'FLOP budget'): inf is not finite; "
        f"expected {expected}",
    ]
    assert str(info.value).startswith(f"{path}: 3 problem(s)")
    # the same cells fixed: '1e19' strings and suffixes parse as flops do; an empty label is allowed
    # (optional column) when tokens are given
    text = path.read_text().replace("abc", "1e19").replace("-1e19", "1e19").replace("inf", "1e19")
    table = load_runs(write_csv(tmp_path, text, "fixed.csv"), mapping={"budget": "FLOP budget"})
    assert table.df["budget"].dtype == np.float64
    assert table.df["budget"].tolist()[:4] == [1e19] * 4 and table.df["budget"].iloc[5] == 6e12
    assert np.isnan(table.df["budget"].iloc[4])


def test_budget_in_another_unit_is_rejected_naming_the_row(tmp_path):
    # 6·N·D = 6·1e8·2e10 = 1.2e19 on both rows; row 2 gives the budget in exaFLOPs
    path = write_csv(tmp_path, "params,tokens,FLOP budget,loss\n1e8,2e10,1e19,3.0\n1e8,2e10,12,3.1\n")
    for tolerance in (0.05, None):          # flops_tolerance has nothing to do with it
        with pytest.raises(RunDataError) as info:
            load_runs(path, mapping={"budget": "FLOP budget"}, flops_tolerance=tolerance)
        assert len(info.value.errors) == 1
        message = info.value.errors[0]
        assert message.startswith("data row 2 (line 3 of the file), column 'budget' (from 'FLOP budget'): 12 is ")
        assert "6·N·D = 6·1e+08·2e+10 = 1.2e+19" in message and "factor of 10" in message
        assert "the budget column should be the run's FLOP budget in FLOPs" in message


@pytest.mark.parametrize("label,ok", [(1.1e20, True), (1.3e20, False), (1.3e18, True), (1.1e18, False)])
def test_budget_may_differ_from_6ND_by_up_to_a_factor_of_10_either_way(label, ok):
    df = pd.DataFrame({"params": [1e8], "tokens": [2e10], "budget": [label], "loss": [3.0]})   # 6ND = 1.2e19
    if ok:
        assert load_runs(df).df["budget"].iloc[0] == label
    else:
        with pytest.raises(RunDataError, match=r"row 1, column 'budget': .*more than a factor of 10 off"):
            load_runs(df)


def test_budget_is_checked_against_an_exact_flop_count_when_the_runs_record_one():
    # sweep-store rows: tiny models with a large vocabulary spend most FLOPs in the LM head, so
    # the planned budget (exact count) is 30x 6·N·D; it agrees with the exact count the store records
    df = pd.DataFrame({"params": [1e4, 2e4], "tokens": [1e6, 5e5], "budget": [1.8e12, 1.8e12],
                       "flops_exact": [1.8e12, 1.79e12], "loss": [5.0, 4.9]})
    assert len(load_runs(df)) == 2
    with pytest.raises(RunDataError, match="factor of 10"):
        load_runs(df.drop(columns="flops_exact"))


def test_tokens_and_flops_filled_from_budget_when_neither_is_given(tmp_path):
    path = write_csv(tmp_path, "Model Size,FLOP budget,loss\n1e8,1e19,3.0\n4e8,6e18,3.1\n")
    table = load_runs(path, mapping={"params": "Model Size", "budget": "FLOP budget"})
    # IsoFLOP runs spend their budget: D = budget/(6N), C = 6·N·D
    np.testing.assert_allclose(table.df["tokens"], [1e19 / 6e8, 6e18 / 2.4e9], rtol=1e-15)
    np.testing.assert_allclose(table.df["flops"], 6 * table.df["params"] * table.df["tokens"], rtol=1e-15)
    np.testing.assert_allclose(table.df["flops"], [1e19, 6e18], rtol=1e-15)
    assert table.df["budget"].tolist() == [1e19, 6e18]
    assert any("tokens = budget/(6·params)" in note for note in table.notes)
    missing = write_csv(tmp_path, "params,budget,loss\n1e8,1e19,3.0\n4e8,,3.1\n", "missing.csv")
    with pytest.raises(RunDataError) as info:
        load_runs(missing)
    assert info.value.errors == ["data row 2 (line 3 of the file), column 'budget': value is missing and "
                                 "the data have no tokens or flops column; give the budget (or D as "
                                 "tokens, or C as flops) for every row"]


def test_given_tokens_and_flops_win_and_budget_is_only_the_label():
    df = pd.DataFrame({"params": [1e8, 1e8], "tokens": [2e10, np.nan], "flops": [np.nan, 1.5e19],
                       "budget": [1.5e19, 1.5e19], "loss": [3.0, 2.9]})
    table = load_runs(df)                     # 6ND = 1.2e19 vs label 1.5e19: 25% off, not an error
    assert table.df["tokens"].tolist() == pytest.approx([2e10, 2.5e10], rel=1e-15)
    assert table.df["flops"].tolist() == pytest.approx([1.2e19, 1.5e19], rel=1e-15)
    assert table.df["budget"].tolist() == [1.5e19, 1.5e19]


def test_same_run_with_two_budget_labels_is_a_duplicate():
    df = pd.DataFrame({"params": [1e8, 1e8], "tokens": [2e10, 2e10], "budget": [1e19, 1.5e19],
                       "loss": [3.0, 3.0]})
    with pytest.raises(RunDataError, match=r"row 1 and row 2 are duplicates: same params=1e\+08, tokens=2e\+10"):
        load_runs(df)


def test_ladder_labelled_off_6ND_loads_with_budget_mapped_and_approach2_uses_the_labels(tmp_path):
    from scalinglab.cli.render import parse_mapping
    from scalinglab.data.grouping import budget_ids
    from scalinglab.fitting.approach2 import isoflop_approach2

    # A published-style ladder: each run is labelled with its nominal budget, but by the ladder's
    # own FLOP count its 6·N·D is 10-30% above or below the label (differently for every run)
    rng = np.random.default_rng(0)
    labels = [1e17, 1e18, 1e19, 1e20]
    rows = []
    for c in labels:
        n_opt = 0.08 * c ** 0.5
        for n in n_opt * np.geomspace(1 / 6, 6, 9):
            off = rng.uniform(0.10, 0.30) * rng.choice([-1.0, 1.0])
            d = c * (1 + off) / (6 * n)
            rows.append({"Model Size": n, "Tokens": d, "FLOP budget": f"{c:.0e}", "Loss": chinchilla(n, d)})
    path = tmp_path / "ladder.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    base = {"params": "Model Size", "tokens": "Tokens", "loss": "Loss"}

    with pytest.raises(RunDataError) as info:            # the label as flops: refused, with the way out
        load_runs(path, mapping={**base, "flops": "FLOP budget"})
    assert len(info.value.errors) == len(rows) and "map it to budget instead of flops" in str(info.value)

    mapping = {**base, **parse_mapping(["budget=FLOP budget"])}      # CLI: --map budget="FLOP budget"
    table = load_runs(path, mapping=mapping)
    assert len(table) == len(rows)
    assert sorted(table.df["budget"].unique()) == labels
    np.testing.assert_allclose(table.df["flops"], 6 * table.df["params"] * table.df["tokens"], rtol=1e-15)
    assert len(np.unique(budget_ids(table.df, "flops"))) > len(labels)   # C alone would split budgets

    res = isoflop_approach2(table, n_bootstrap=0)        # budget_column="auto" takes budget
    assert res.budgets["flops"].tolist() == labels
    assert (res.budgets["n_points"] == 9).all()


# ----------------------------------------------------------------------------------------------
# built-in ladders
# ----------------------------------------------------------------------------------------------

def chinchilla(n, d, law=EPOCH_LAW):
    return law["E"] + law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"]


def test_epoch_law_is_the_published_refit():
    # Besiroglu et al. 2024, maximum-likelihood estimate
    assert EPOCH_LAW == {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
    for value in ("1.8172", "482.01", "2085.43", "0.3478", "0.3658", "0.01"):
        assert value in DEMO_DESCRIPTION


def test_synthetic_ladder_reproduces_its_law_at_zero_noise():
    df = synthetic_ladder(noise=0.0)
    np.testing.assert_allclose(df["loss"], chinchilla(df["params"], df["tokens"]), rtol=1e-13)
    np.testing.assert_allclose(6 * df["params"] * df["tokens"], df["flops"], rtol=1e-13)
    assert sorted(df["flops"].unique()) == [1e17, 3e17, 1e18, 3e18, 1e19]
    assert np.log10(df["params"].max() / df["params"].min()) >= 2
    # one experiment: no group labels that approach 2 would refuse to pool
    assert "group" not in df.columns and df["run_id"].is_unique
    table = load_runs(df)
    assert len(table) == 45
    # each budget's middle size is the valley bottom, found here by direct minimisation
    for c, g in df.groupby("flops"):
        best = minimize_scalar(lambda x: chinchilla(np.exp(x), c / (6 * np.exp(x))),
                               bounds=(np.log(1e5), np.log(1e12)), method="bounded",
                               options={"xatol": 1e-10}).x
        middle = np.sort(g["params"].to_numpy())[len(g) // 2]
        assert middle == pytest.approx(np.exp(best), rel=1e-4)
        assert g["loss"].idxmin() == g["params"].sub(middle).abs().idxmin()


def test_synthetic_ladder_noise_has_the_stated_sigma():
    sigma = 0.02
    df = synthetic_ladder(noise=sigma, budgets=np.geomspace(1e17, 1e21, 40), seed=1)
    log_ratio = np.log(df["loss"] / chinchilla(df["params"], df["tokens"]))
    # 360 draws: the sample sd of a normal is within ~4 standard errors (sigma/sqrt(2n)) of sigma
    assert abs(log_ratio.std() - sigma) < 4 * sigma / np.sqrt(2 * len(df))
    assert abs(log_ratio.mean()) < 4 * sigma / np.sqrt(len(df))
    assert not synthetic_ladder(seed=1)["loss"].equals(synthetic_ladder(seed=2)["loss"])


def test_synthetic_ladder_takes_a_stated_law_and_rejects_bad_ones():
    law = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}   # Hoffmann et al. 2022
    df = synthetic_ladder(law_params=law, noise=0.0)
    np.testing.assert_allclose(df["loss"], chinchilla(df["params"], df["tokens"], law), rtol=1e-13)
    with pytest.raises(ValueError, match="alpha"):
        synthetic_ladder(law_params={"E": 1.7, "A": 400, "B": 400, "beta": 0.3})
    with pytest.raises(ValueError, match="noise"):
        synthetic_ladder(noise=-0.1)


def test_synthetic_training_curves_follow_the_law_at_tokens_seen():
    df = synthetic_training_curves(noise=0.0)
    np.testing.assert_allclose(df["loss"], chinchilla(df["params"], df["tokens"]), rtol=1e-13)
    for _, run in df.groupby("run_id"):
        assert run["params"].nunique() == 1
        assert np.all(np.diff(run["step"].to_numpy()) > 0)
        assert run["flops"].max() == pytest.approx(1e19, rel=1e-3)
    assert len(load_runs(df)) == len(df)
