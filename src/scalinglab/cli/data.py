"""`scalinglab data prepare`: tokenize documents into a training token file (thin shell)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from scalinglab.cli.app import data_app
from scalinglab.cli.render import check_range, console, emit_json, err_console, fail

# the sweep's default context (scalinglab.sweep.plan.DEFAULT_CONTEXT; not imported, so that this
# command does not load the planner)
DEFAULT_CONTEXT = 128


@data_app.command("prepare")
def prepare(
    files: List[Path] = typer.Argument(None, help="Text files (.txt/.md/.py, one document each), "
                                       ".jsonl ('text' field per line), .parquet ('text' column) or "
                                       "directories. None: the Python sources installed with this "
                                       "interpreter (offline built-in corpus)."),
    out: Path = typer.Option(..., "-o", "--output", help="Token file to write, e.g. corpus.bin "
                             "(a JSON sidecar corpus.bin.json is written beside it)."),
    tokenizer: str = typer.Option("byte", help="byte (UTF-8 bytes + end-of-text, vocab 257), bpe "
                                  "(byte-level BPE trained on these documents) or a tokenizer JSON path."),
    vocab_size: int = typer.Option(8192, help="BPE vocabulary size (with --tokenizer bpe)."),
    max_bytes: Optional[int] = typer.Option(None, help="Stop after this many bytes of text "
                                            "(built-in corpus default: 50,000,000)."),
    val_fraction: float = typer.Option(0.01, help="Share of documents held out for validation."),
    seed: int = typer.Option(0, help="Seed of the deterministic by-document split."),
    context: int = typer.Option(DEFAULT_CONTEXT, "--context", help="Context length the corpus will be "
                                "trained with (`sweep plan --context`): each split must hold at least "
                                "one sequence of it plus one token, else nothing is written."),
    json_out: bool = typer.Option(False, "--json", help="Print the corpus info as JSON."),
) -> None:
    """Tokenize documents into a flat token file with a by-document train/validation split."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from scalinglab.train.corpus import prepare_corpus

    with fail():
        if context < 1:
            raise ValueError(f"--context must be a positive number of tokens; got {context}")
        check_range(vocab_size, "--vocab-size", low=2, integer=True, example="8192")
        check_range(max_bytes, "--max-bytes", low=1, integer=True, example="50000000")
        check_range(val_fraction, "--val-fraction", low=0, high=1, high_open=True, example="0.01")
        check_range(seed, "--seed", low=0, integer=True, example="0")
    with fail(), Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                          transient=True, disable=json_out) as progress:
        task = progress.add_task("reading", total=len(files) if files else None)

        def on_file(path: Path) -> None:
            progress.update(task, advance=1, description=f"reading {path.name}")

        info = prepare_corpus(files or None, out, tokenizer=tokenizer, vocab_size=vocab_size,
                              val_fraction=val_fraction, seed=seed, max_bytes=max_bytes,
                              min_context=context, on_file=on_file)
    if val_fraction == 0:
        err_console.print("[yellow]warning:[/yellow] --val-fraction 0: no validation split; "
                          "`scalinglab sweep` measures every run's loss on it and cannot train on this "
                          "corpus", soft_wrap=True)
    if json_out:
        emit_json({**info.__dict__, "n_tokens": info.n_tokens})
        return
    console.print(f"wrote {info.path}: {info.summary()}", markup=False)
    if info.n_duplicates:
        console.print(f"skipped {info.n_duplicates:,} duplicate document(s)", markup=False)


# ---- public example ladders (scalinglab.data.datasets) -------------------------------------------

def _copy_state(name: str) -> str:
    """Where a checked copy of dataset ``name`` lies ('mirror', 'cache'), '-' when none does."""
    from scalinglab.data.datasets import DatasetError, local_copy

    try:
        found = local_copy(name)
    except DatasetError:
        return "refused (SHA-256 differs)"
    return found[1] if found else "-"


@data_app.command("list")
def list_datasets(
    json_out: bool = typer.Option(False, "--json", help="Print the registry as JSON."),
) -> None:
    """The public ladders `data fetch` gets: name, rows, what they hold, licence, local copy."""
    from rich.table import Table

    from scalinglab.data.datasets import DATASETS, MIRROR_ENV, cache_dir, mirror_dir

    with fail():
        entries = list(DATASETS.values())
        states = [_copy_state(d.name) for d in entries]
    if json_out:
        emit_json([{**{k: v for k, v in d.__dict__.items() if k != "runs_options"},
                    "cli_options": d.cli_options(), "copy": state} for d, state in zip(entries, states)])
        return
    table = Table(title="Public datasets (scalinglab data fetch NAME)", title_justify="left")
    for column in ("name", "rows", "what", "licence", "copy"):
        table.add_column(column, overflow="fold")
    for entry, state in zip(entries, states):
        table.add_row(entry.name, f"{entry.rows:,}", entry.title, entry.licence.split(" (")[0], state)
    console.print(table)
    mirror = mirror_dir()
    console.print(f"cache: {cache_dir()}; mirror (${MIRROR_ENV}): {mirror if mirror else 'not set'}. "
                  "A runs file argument may name one: scalinglab fit dataset:chinchilla_epoch", markup=False)


@data_app.command("fetch")
def fetch_dataset(
    name: Optional[str] = typer.Argument(None, help="Dataset name (`scalinglab data list`)."),
    all_: bool = typer.Option(False, "--all", help="Fetch every dataset."),
    json_out: bool = typer.Option(False, "--json", help="Print where each file lies as JSON."),
) -> None:
    """Download a public dataset (or find it in the mirror or cache), check its SHA-256, and print
    its path, source, licence and citation."""
    from scalinglab.data.datasets import DATASETS, fetch, get

    with fail():
        if (name is None) == (not all_):
            raise ValueError("give one dataset NAME or --all (the names: `scalinglab data list`)")
        entries = list(DATASETS.values()) if all_ else [get(name)]
    fetched, errors = [], []
    for entry in entries:
        try:
            state = _copy_state(entry.name)
            fetched.append((entry, fetch(entry.name), "downloaded" if state == "-" else state))
        except ValueError as exc:       # one dataset that cannot be had does not hide the others
            errors.append(exc)
    if json_out:
        emit_json([{"name": e.name, "path": str(p), "from": how, "url": e.url, "homepage": e.homepage,
                    "licence": e.licence, "citation": e.citation, "sha256": e.sha256} for e, p, how in fetched])
    else:
        for entry, path, how in fetched:
            console.print(f"{entry.name}: {path} ({how}, SHA-256 checked)\n"
                          f"  source:  {entry.url or 'no public URL of these bytes: ' + entry.provenance} "
                          f"({entry.homepage})\n"
                          f"  licence: {entry.licence}\n  cite:    {entry.citation}"
                          + (f"\n  runs:    scalinglab fit dataset:{entry.name}"
                             + (f"  (reads it with {entry.cli_options()})" if entry.cli_options() else "")
                             if entry.runs_options is not None else f"\n  holds:   {entry.kind}"),
                          markup=False, soft_wrap=True)
    if errors:
        with fail(json_out):
            raise type(errors[0])("; ".join(str(e) for e in errors)) if len(errors) > 1 else errors[0]
