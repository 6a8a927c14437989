"""The one option set of every command that reads runs (fit, validate, isoflop, plot, report,
compare, noise, plan --runs): how the run table is read, mapped, selected and pruned.

Each option is one field of :class:`RunOptions`; a command takes ``reading: RunOptions`` in its
signature and is decorated with ``optionset.with_option_sets``, so every such command offers the
same options with the same help, and ``load_runs(source, **reading.as_kwargs())`` reads them.
Adding a run option is one field here (and its panel in ``cli/language.PANELS``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional

import typer

from scalinglab.cli.optionset import option, option_fields, option_names

SOURCE_FORMATS = ("wandb", "mlflow")

# {columns} is filled in from the canonical columns when help is shown (render.fill_help)
MAP_HELP = ('Column mapping canonical=source, repeatable, e.g. --map params="Model Size" '
            '--map flops="Training FLOP". Canonical names: {columns}.')


def where_help(example: str) -> str:
    """The --where help of every command (the language of scalinglab.data.filters), with an example."""
    return (f"Keep the rows this filter selects, e.g. \"{example}\". It may use column names (`backticks` around "
            "names with spaces or symbols), numbers, 'text', == != < <= > >= (chained), in ('a', 'b') / not in, "
            "and / or / not, + - * / ** and log10(), log(), abs(); it is read as data, never run as code.")


@dataclass(frozen=True)
class RunOptions:
    """How a command reads its runs: the same options, help and checks on every command that reads runs."""

    mapping: List[str] = option([], "--map", help=MAP_HELP, name="map")
    drop_top_loss: int = option(0, "--drop-top-loss", help="Drop the K highest-loss rows (each reported).")
    where: Optional[str] = option(None, "--where", help=where_help("config == 'a' and params > 1e8"))
    group: Optional[str] = option(None, "--group", help="Column that names the experiment of each row (copied "
                                                        "into `group`).")
    flops_tolerance: float = option(0.05, "--flops-tolerance", help="Allowed relative gap between flops and "
                                                                    "6*params*tokens.")
    drop_outliers: Optional[float] = option(None, "--drop-outliers", help="Drop rows more than Z robust z-scores "
                                            "above the trend (each reported).")
    sep: Optional[str] = option(None, "--sep", help="Separator of a delimited file: ',', ';' or tab (default: "
                                                    "detected from the header line).")
    bin_budgets: Optional[float] = option(None, "--bin-budgets", help="Bin runs whose C lies on no grid into IsoFLOP "
                                          "budgets of this width in log10 C (e.g. 0.25); budget = each bin's "
                                          "geometric mean C.")
    source_format: Optional[str] = option(None, "--from", name="from_", help="Where the runs come from: wandb (a "
                                          "runs-table or history CSV export, or a folder of them), "
                                          "wandb:ENTITY/PROJECT (W&B's API; no SOURCE), mlflow (SOURCE: an mlruns/ "
                                          "folder, a SQLite file or a server URL) or mlflow:EXPERIMENT; the usual "
                                          "column names need no --map (docs/sources.md).")
    last_step: bool = option(False, "--last-step", help="Keep each run's last checkpoint (largest step per run_id): "
                             "fit final losses from training curves, e.g. a W&B history of 1,000 runs x 1,000 steps.")
    drop_invalid: bool = option(False, "--drop-invalid", help="Leave out the rows with a missing or invalid value "
                                "(NaN loss, empty params ...) and, with --from, the runs that did not finish "
                                "(crashed, failed, killed, running), instead of refusing them; each is listed.")
    history_point: str = option("final", "--history-point", help="With --from wandb and a history export: the one "
                                "point read from each run, final (its last logged loss) or best (its lowest logged "
                                "loss, with that step's tokens); the notes say which point each run gave.")
    tracking_uri: Optional[str] = option(None, "--tracking-uri", help="With --from mlflow: the MLflow tracking URI "
                                         "(http://127.0.0.1:5000, sqlite:///mlflow.db, file:///path/mlruns); "
                                         "default: SOURCE, else MLFLOW_TRACKING_URI.")

    def check(self) -> None:
        """Refuse impossible values up front, naming the option."""
        from scalinglab.cli.render import check_range

        check_range(self.drop_top_loss, "--drop-top-loss", low=0, integer=True, example="5")
        check_range(self.flops_tolerance, "--flops-tolerance", low=0, low_open=True, example="0.05")
        check_range(self.drop_outliers, "--drop-outliers", low=0, low_open=True, example="3.5")
        check_range(self.bin_budgets, "--bin-budgets", low=0, low_open=True, example="0.25")
        if self.source_format is not None and self.source_format.partition(":")[0].lower() not in SOURCE_FORMATS:
            raise typer.BadParameter(f"--from {self.source_format!r}: choose one of {', '.join(SOURCE_FORMATS)} "
                                     "(leave it out for a run file)")

    def as_kwargs(self) -> dict:
        """The keyword arguments of ``scalinglab.data.readers.load_runs`` these options stand for."""
        from scalinglab.cli.render import parse_mapping

        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        kwargs["mapping"] = parse_mapping(self.mapping)
        if self.source_format:      # the format's name in any case; a project or experiment name as given
            fmt, colon, target = self.source_format.partition(":")
            kwargs["source_format"] = fmt.lower() + colon + target
        return kwargs

    def given(self, *fields: str) -> list[str]:
        """The spellings of the options (of ``fields``, default all) set to other than their default."""
        names = option_names(RunOptions)
        default = RunOptions()
        return [names[f] for f in (fields or names) if getattr(self, f) != getattr(default, f)]

    def refuse(self, why: str, *fields: str) -> None:
        """Nothing is ignored silently: exit 2 naming each option (of ``fields``) that was given, and ``why``."""
        given = self.given(*fields)
        if given:
            raise typer.BadParameter(f"{', '.join(given)}: {why}")


# The one --tracking-uri, for commands that take it without the whole run-reading set (monitor's mlflow:RUN_ID).
TrackingUriOpt = next(info for _, name, _, info in option_fields(RunOptions) if name == "tracking_uri")
