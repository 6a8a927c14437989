"""Library messages speak the API's words (issue 25, part 5): a law file, Hoffmann's approach 1, a
comparison without a bootstrap and the lr x batch fit name their parameters (``hparams_law``,
``isoflop_approach1``, ``n_boot=0``, ``window``); the CLI spells the same messages with its options
(``--hparams-law``, ``scalinglab isoflop --approach 1``, ``--bootstrap 0``) from cli/options.py."""
import pandas as pd
import pytest

from scalinglab.cli.render import describe_error, to_cli
from scalinglab.data.builtin import synthetic_ladder
from scalinglab.data.law_files import get_critical_batch_law, get_hparam_law
from scalinglab.util.errors import ParamError

from cli_helpers import invoke


def test_a_missing_law_file_names_the_parameter_and_the_cli_its_option(tmp_path):
    missing = tmp_path / "hp.json"
    with pytest.raises(ParamError) as hp:
        get_hparam_law(str(missing))
    assert hp.value.param == "hparams_law" and str(hp.value).startswith(f"hparams_law {missing}: no such file")
    assert "--hparams-law" not in str(hp.value)
    assert describe_error(hp.value).startswith(f"--hparams-law {missing}: no such file")
    with pytest.raises(ParamError) as cb:
        get_critical_batch_law(str(tmp_path / "cb.json"))
    assert cb.value.param == "critical_batch" and str(cb.value).startswith("critical_batch ")
    assert describe_error(cb.value).startswith("--critical-batch ")


def test_an_edited_law_file_keeps_the_allow_edited_remedy_in_both_words(tmp_path):
    import json

    from scalinglab.data.law_files import write_law_file
    from scalinglab.laws.critical_batch import KAPLAN_CRITICAL_BATCH

    path = tmp_path / "cb.json"
    write_law_file(KAPLAN_CRITICAL_BATCH, path)
    doc = json.loads(path.read_text())
    doc["edited_by_hand"] = 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ParamError) as edited:
        get_critical_batch_law(str(path))
    assert edited.value.param == "critical_batch" and "allow_edited" in edited.value.params
    assert str(edited.value).startswith(f"critical_batch {path} was edited") and "set allow_edited to load" in str(edited.value)
    cli = describe_error(edited.value)
    assert cli.startswith(f"--critical-batch {path} was edited") and "--allow-edited" in cli
    assert "WARNING" in get_critical_batch_law(str(path), allow_edited=True).file_notes[0]


def test_the_cli_shows_the_option_of_a_bad_law_file(tmp_path):
    ladder = tmp_path / "ladder.csv"
    synthetic_ladder(seed=3)[["params", "tokens", "loss"]].to_csv(ladder, index=False)
    fit = tmp_path / "fit.json"
    result = invoke("fit", ladder, "--bootstrap", "0", "--no-calibrate", "-o", fit)
    assert result.exit_code == 0, result.output
    result = invoke("plan", fit, "--budget", "1e21", "--hparams-law", tmp_path / "nope.json")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "--hparams-law" in text and "no such file" in text and "hparams_law" not in text


def test_approach1_speaks_of_itself_and_the_cli_of_the_command():
    runs = synthetic_ladder(seed=3)[["params", "tokens", "loss"]]
    from scalinglab.fitting.approach1 import isoflop_approach1

    with pytest.raises(ValueError) as exc:
        isoflop_approach1(runs)
    assert str(exc.value).startswith("isoflop_approach1 needs training curves")
    assert describe_error(exc.value).startswith("`scalinglab isoflop --approach 1` needs training curves")


def test_a_comparison_without_bootstrap_says_n_boot_0_and_the_cli_bootstrap_0():
    from scalinglab.studies.compare import compare_groups

    runs = pd.concat([synthetic_ladder(seed=1).assign(group="a"), synthetic_ladder(seed=2).assign(group="b")],
                     ignore_index=True)[["params", "tokens", "loss", "group"]]
    result = compare_groups(runs, baseline="a", n_boot=0)
    warning = next(w for w in result.warnings if "no bootstrap" in w)
    assert "(n_boot=0)" in warning and "(--bootstrap 0)" in to_cli(warning)
    assert "(--bootstrap 0)" in to_cli(result.summary()) and "(n_boot=0)" in result.summary()


def test_the_lr_batch_fit_names_window_and_n_boot():
    from scalinglab.studies.hparams import fit_hparams, synthetic_hparam_sweep

    sweep = synthetic_hparam_sweep(seed=0)
    with pytest.raises(ParamError) as window:
        fit_hparams(sweep, window=2.0)
    assert window.value.param == "window" and describe_error(window.value).startswith("--window 2.0")
    with pytest.raises(ParamError) as boot:
        fit_hparams(sweep, n_boot=-1)
    assert boot.value.param == "n_boot" and str(boot.value).startswith("n_boot -1")
    assert describe_error(boot.value).startswith("--bootstrap -1")
