"""Fixtures shared by the CLI test files."""
from __future__ import annotations

import pytest

from scalinglab.data.builtin import synthetic_ladder


@pytest.fixture(scope="module")
def ladder_csv(tmp_path_factory):
    """The seeded synthetic ladder (``synthetic_ladder(seed=3)``) written as a CSV."""
    path = tmp_path_factory.mktemp("ladder") / "ladder.csv"
    synthetic_ladder(seed=3).to_csv(path, index=False)
    return path
