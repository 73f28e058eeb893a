"""A rich progress display while stages run (stderr), driven by the executor's events."""

from __future__ import annotations

from trtmake.executor import Events, StageResult
from trtmake.target import Target


class RichProgress(Events):
    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=self.console,
                                 transient=False)
        self.tasks: dict[tuple[str, str], int] = {}

    def __enter__(self) -> "RichProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _task(self, target: Target, stage: str) -> int:
        k = (target.label, stage)
        if k not in self.tasks:
            self.tasks[k] = self.progress.add_task(f"{target.label}: {stage}", total=None)
        return self.tasks[k]

    def stage_started(self, target: Target, stage: str) -> None:
        self._task(target, stage)

    def stage_progress(self, target: Target, stage: str, done: int, total: int) -> None:
        self.progress.update(self._task(target, stage), completed=done, total=total)

    def stage_finished(self, target: Target, result: StageResult) -> None:
        task = self._task(target, result.name)
        self.progress.update(task, total=1, completed=1,
                             description=f"{target.label}: {result.name} [{result.status}] {result.seconds:.2f}s")
