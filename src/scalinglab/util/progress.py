"""One progress bar for every long loop (bootstrap resamples, rollout fits): rich, on stderr."""
from __future__ import annotations


class progress_bar:
    """A rich progress bar on stderr, or a no-op; used as ``with ... as advance``."""

    def __init__(self, enabled: bool, description: str, total: int):
        self.enabled, self.description, self.total = enabled, description, total

    def __enter__(self):
        if not self.enabled:
            return lambda k: None
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                                  console=Console(stderr=True), transient=False)
        self._progress.__enter__()
        task = self._progress.add_task(self.description, total=self.total)
        return lambda k: self._progress.advance(task, k)

    def __exit__(self, *exc):
        if self.enabled:
            self._progress.__exit__(*exc)
        return False
