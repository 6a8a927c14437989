"""Command-line interface: a thin shell over the Python API.

Each module in this package registers its commands on :data:`scalinglab.cli.app.app`.
"""
from __future__ import annotations

import importlib

from scalinglab.cli.app import app

# modules that register commands; each is owned by one area of the package
_COMMAND_MODULES = ("core", "sweep", "data", "report", "compare", "hparams", "test_time", "rl", "loss_to_loss", "noise", "schedule", "design", "monitor")

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"scalinglab.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"scalinglab.cli.{_name}":
            raise


def main() -> None:
    app()
