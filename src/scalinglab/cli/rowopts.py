"""``--drop-invalid``: the one definition shared by every command whose reader checks each row
of a table other than a run table (``data/tables.py``): hparams fit / validate / critical-batch,
schedule fit, rl fit, loss-to-loss.  Without it an invalid cell is refused naming the file, the
row and the column; with it the row is left out, and every such row is listed on stderr."""
from __future__ import annotations

import typer

DropInvalidOpt = typer.Option(False, "--drop-invalid", help="Leave out rows with an invalid cell (not a number, "
                              "NaN, inf, negative, missing) instead of refusing the file; every dropped row is "
                              "listed with its reason.")


def print_read_report(source: str, dropped=(), notes=(), warnings=()) -> None:
    """What the reader did, on stderr: the rows it dropped (counted, each listed), its notes and
    its warnings."""
    from scalinglab.cli.render import err_console
    from scalinglab.data.tables import dropped_note

    for note in ([dropped_note(source, dropped)] if dropped else []) + list(notes):
        err_console.print(f"note: {note}", markup=False, soft_wrap=True)
    for warning in warnings:
        err_console.print(f"warning: {warning}", style="yellow", markup=False, soft_wrap=True)
