"""Fixtures shared by the CLI test files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from scalinglab.data.builtin import synthetic_ladder

# The public datasets (scalinglab.data.datasets) come from ../shared/data when it is there, so
# that no test downloads anything; without it the tests that need them skip.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if SHARED_DATA.is_dir():
    os.environ.setdefault("SCALINGLAB_DATA_MIRROR", str(SHARED_DATA))

# A pytest-xdist worker starts with COLUMNS=80 in its environment, and rich's console fixes its width
# from COLUMNS when it is built (at import): a test's own env={"COLUMNS": ...} would then be ignored.
# Without it, each run, serial or parallel, gets the width its test asks for (80 when none does).
os.environ.pop("COLUMNS", None)


@pytest.fixture(scope="module")
def ladder_csv(tmp_path_factory):
    """The seeded synthetic ladder (``synthetic_ladder(seed=3)``) written as a CSV."""
    path = tmp_path_factory.mktemp("ladder") / "ladder.csv"
    synthetic_ladder(seed=3).to_csv(path, index=False)
    return path


@pytest.fixture
def one_torch_thread():
    """Tiny models train fastest on one thread, and a shared CI box is not oversubscribed (the
    trainer and store tests ask for it with ``pytestmark``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
