"""The trtmake sweeper: Hydra's basic sweeper (cartesian product, `glob(...)`, batches), except
that one job whose config does not compose, or a launcher that fails, does not sink the sweep.

Hydra's BasicSweeper composes every job of a batch before launching any and aborts the whole
multirun on the first composition error (`target=a,nope` runs nothing). Here such a job is
recorded as a failed entry (exit 2, the one-line message naming the key) and the others run.
What the jobs left is collected from the sweep dir (`<sweep dir>/trtmake_sweep.json` and each
job's entry, trtmake/sweep.py) once every job was launched, and handed to the task function
(trtmake.app.Job), which also carries the CLI's request (project root, command).
A job whose composed plan is cached and whose stages are all up to date is not launched: it runs
here through its plan (trtmake.sweep.Plans); the sweeper stores the plan of every job it composes.
Selected in conf/config.yaml (`override hydra/sweeper: trtmake`); under `hydra/sweeper=basic` only
the jobs run in the CLI's process (the basic launcher) reach the report.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra._internal.core_plugins import basic_sweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser

from trtmake.errors import UserError
from trtmake.sweep import Manifest, Plans, collect


@dataclass
class TrtmakeSweeperConf:
    _target_: str = "hydra_plugins.trtmake_sweeper.TrtmakeSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="trtmake", node=TrtmakeSweeperConf, provider="trtmake")


class TrtmakeSweeper(basic_sweeper.BasicSweeper):
    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.job = task_function  # trtmake.app.Job

    def sweep(self, arguments: List[str]) -> Any:
        from omegaconf import OmegaConf

        params = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides(params), self.max_batch_size)
        _refuse_duplicate_jobs(self.overrides)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        manifest = Manifest(sweep_dir)
        root = self.job.request.project_root
        plans = Plans(self.config, self.launcher, self.job.request)  # snapshot of the config files before any compose
        returns, next_num = [], 0
        while not self.is_done():
            batch = [list(job) for job in self.get_job_batch()]
            legal = []
            for job in batch:
                entry = plans.up_to_date_entry(job)
                if entry is not None:  # planned and up to date: nothing to compose or launch
                    manifest.done_here(job, entry)
                    continue
                try:
                    cfg = self.hydra_context.config_loader.load_sweep_config(self.config, job)
                except Exception as exc:  # a bad option or value: this job fails, the others run
                    manifest.invalid(job, exc, root)
                else:
                    plans.store(job, cfg)
                    manifest.launched(job, next_num + len(legal))
                    legal.append(job)
            manifest.save()
            if not legal:
                continue
            nums = range(next_num, next_num + len(legal))
            try:
                returns.append(self.launcher.launch(legal, initial_job_idx=next_num))
            except Exception as exc:  # jobs that finished still left their entries
                manifest.launch_failed(list(nums), exc)
                manifest.save()
            next_num += len(legal)
        self.job.sweep = {"sweep_dir": str(sweep_dir), "entries": collect(sweep_dir, root),
                          "report_path": OmegaConf.select(self.config, "report.path", default=None),
                          "junit": OmegaConf.select(self.config, "report.junit", default=None),
                          "html": OmegaConf.select(self.config, "report.html", default=None)}
        return returns

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        return None  # done per job in sweep()


def _refuse_duplicate_jobs(batches: Sequence[Sequence[Sequence[str]]]) -> None:
    """Two identical jobs would build the same target twice and write one report entry over the
    other: `target=a,a` is a typo, so the sweep is refused before anything runs."""
    seen: set = set()
    for batch in batches:
        for job in batch:
            key = tuple(sorted(job))
            if key in seen:
                shown = " ".join(job) or "(no overrides)"
                raise UserError(f"multirun: the job `{shown}` is given twice (a value repeated in a "
                                f"sweep such as target=a,a); list each value once")
            seen.add(key)
