"""`scalinglab noise`: run-to-run noise of a ladder, from seed repeats or late checkpoints
(a thin layer over ``scalinglab.fitting.noise``)."""
from __future__ import annotations

import typer

from scalinglab.cli.app import app
from scalinglab.cli.core import SourceArg, _load
from scalinglab.cli.optionset import with_option_sets
from scalinglab.cli.runopts import RunOptions
from scalinglab.cli.render import RegistryHelpCommand, check_range, emit_json, fail, print_text_block, to_cli


@app.command(cls=RegistryHelpCommand)
@with_option_sets
def noise(
    source: str = SourceArg,
    noise_source: str = typer.Option("auto", "--source", help="seeds (rows that differ only in their seed), "
                                     "checkpoints (the last checkpoints of each run: rows need run_id and step) "
                                     "or auto (seeds when some point is repeated, else checkpoints)."),
    last: int = typer.Option(5, "--last", help="With checkpoints: the last K checkpoints of each run (>= 3)."),
    curves: bool = typer.Option(False, "--curves", help="SOURCE is a sweep store (.db) or its exported curves "
                                "(`sweep export --curves`, .csv/.parquet): use the late checkpoints of the runs' "
                                "validation-loss curves."),
    level: float = typer.Option(0.9, help="Confidence level of the chi-square interval of the sd."),
    reading: RunOptions = RunOptions(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
):
    """Run-to-run noise: the sd of log loss between runs that differ only in their seed, with its
    chi-square interval. `compare` and `validate` use it to say when a difference is within noise,
    and fitted prediction intervals are never narrower than it."""
    from scalinglab.fitting.noise import NOISE_SOURCES, WITHIN_NOISE_SDS, estimate_noise

    with fail(as_json=as_json):
        if noise_source not in NOISE_SOURCES:
            raise typer.BadParameter(f"--source {noise_source!r}: choose {', '.join(NOISE_SOURCES)}")
        check_range(last, "--last", low=3, integer=True, example="5")
        check_range(level, "--level", low=0, high=1, low_open=True, high_open=True, example="0.9")
        if curves:
            reading.refuse("--curves reads the store's (or its export's) validation-loss curves as they are; "
                           "leave these out, or drop --curves to read a run table")
            runs, est = _from_curves(source, noise_source, last, level)
        else:
            runs = _load(source, reading)
            est = estimate_noise(runs, source=noise_source, level=level, last=last)
        if est is None:
            raise ValueError(f"{runs.source}: no noise to measure: no design point is repeated with another seed "
                             "and no run has 3 or more checkpoints (run_id and step); plan repeats with "
                             "`scalinglab sweep plan --seeds K`")
    if as_json:
        emit_json(est.to_dict())
        return
    lines = [f"[[Noise]] {est.describe()}",
             f"    a difference below {WITHIN_NOISE_SDS:g} sds ({WITHIN_NOISE_SDS * est.sd:.3g} in log loss, about "
             f"{100 * WITHIN_NOISE_SDS * est.sd:.2g}% of the loss) is within noise"]
    shown = list(est.counts.items())
    lines.append(f"[[{'Seed groups' if est.source == 'seeds' else 'Runs'}]] rows each ({len(shown)})")
    lines += [f"    {k}: {v}" for k, v in shown[:8]]
    if len(shown) > 8:
        lines.append(f"    ... and {len(shown) - 8} more")
    print_text_block(to_cli("\n".join(lines)), title=f"noise of {runs.source} ({len(runs)} rows)")


class _Curves:
    """What the report needs of a store's curves: its name and row count."""

    def __init__(self, source: str, frame):
        self.source, self.frame = source, frame

    def __len__(self) -> int:
        return len(self.frame)


def _from_curves(source: str, noise_source: str, last: int, level: float):
    from pathlib import Path

    from scalinglab.fitting.noise import noise_from_checkpoints
    from scalinglab.data.store import curves_frame

    suffix = Path(source).suffix.lower()
    if suffix not in _CURVE_FILES:
        raise typer.BadParameter(f"--curves reads a sweep store (.db) or its exported curves (.csv, .parquet: "
                                 f"`scalinglab sweep export STORE --curves`); {source} is neither (without "
                                 "--curves, rows with run_id and step give the late checkpoints)")
    if noise_source == "seeds":
        raise typer.BadParameter("--curves gives late-checkpoint noise; use --source checkpoints or auto, or drop "
                                 "--curves to use the store's seed repeats")
    if not Path(source).exists():
        raise typer.BadParameter(f"{source}: no such {'sweep store' if suffix == '.db' else 'curves file'}")
    frame = curves_frame(source) if suffix == ".db" else _CURVE_FILES[suffix](source)
    return _Curves(source, frame), noise_from_checkpoints(frame, loss="auto", last=last, level=level)


def _read_csv(path):
    import pandas as pd

    return pd.read_csv(path)


def _read_parquet(path):
    import pandas as pd

    return pd.read_parquet(path)


# what --curves reads: a store, or the curves `sweep export --curves` writes
_CURVE_FILES = {".db": None, ".csv": _read_csv, ".parquet": _read_parquet}
