"""Stages: each a pure function of its declared inputs; a target's pipeline is those that apply."""

from __future__ import annotations

from typing import Any

from trtmake.keys import config_slice
from trtmake.stages.base import Stage
from trtmake.stages.build import BuildStage
from trtmake.stages.int8 import CalibrateStage
from trtmake.stages.precision import PrecisionStage
from trtmake.stages.source import SourceStage
from trtmake.stages.validate import ReferenceStage, ValidateStage

STAGES: tuple[Stage, ...] = (SourceStage(), CalibrateStage(), PrecisionStage(), BuildStage(), ReferenceStage(),
                             ValidateStage())  # stateless


def pipeline(cfg: dict[str, Any]) -> list[Stage]:
    """The stages a target with this config runs, in order."""
    return [s for s in STAGES if s.applies(config_slice(cfg, s.params))]
