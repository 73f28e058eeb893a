"""Every shipped recipe composes into a valid Target; the layout matches the brief."""

from pathlib import Path

import pytest

from conftest import ROOT

TARGETS = sorted(p.stem for p in (ROOT / "engine_recipes" / "target").glob("*.yaml"))


def test_layout():
    for name in ("pyproject.toml", "conf/config.yaml", "engine_recipes", "trtmake", "cache", "tests"):
        assert (ROOT / name).exists(), name
    for group in ("model", "precision", "profile", "dataset", "validation", "backend", "target", "calibrator"):
        assert (ROOT / "engine_recipes" / group).is_dir(), group


@pytest.mark.parametrize("name", TARGETS)
def test_every_shipped_target_composes(name):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from trtmake.config import schema
    schema.register()
    from trtmake.planner import from_config

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"target={name}"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        target = from_config(cfg, [f"target={name}"], ROOT)
    assert target.name == name
    assert target["model"]["name"]
    assert target["precision"]["mode"] in ("fp32", "fp16", "int8")
    assert not Path(str(target["model"].get("path") or "")).is_absolute() or "shared" not in str(target["model"]["path"])
    assert "../shared" not in str(target.cfg), "shipped targets must not depend on ../shared"


def test_shipped_targets_include_resnet50_and_a_small_model():
    assert {"resnet50_fp32", "resnet50_fp16", "tiny_cnn_fp32"} <= set(TARGETS)
