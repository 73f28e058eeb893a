"""A PyTorch export as the `source` stage of a target, through the executor. The
export is rerun when the weights file's bytes or the export config change, and only then."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def tests_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))  # the factory is `tiny_torch_modules.tiny_convnet`


def _save_weights(path: Path, seed: int) -> Path:
    import tiny_torch_modules

    torch.manual_seed(seed)
    torch.save(tiny_torch_modules.tiny_convnet(channels=4, out_channels=2).state_dict(), path)
    return path


def _export_args(weights: Path, **extra: str) -> list[str]:
    """The tiny target with its model replaced by an export of a tiny torch module, declared in a
    model recipe of the user's own recipe folder (added to Hydra's search path)."""
    recipes = weights.parent / "recipes"
    (recipes / "model").mkdir(parents=True, exist_ok=True)
    (recipes / "model" / "tiny_export.yaml").write_text(f"""\
name: tiny_export
export:
  factory: tiny_torch_modules.tiny_convnet
  factory_args: {{channels: 4, out_channels: 2}}
  weights: {weights}
  inputs: [{{name: input, shape: [1, 3, 32, 32]}}]
  output_names: [features]
  dynamic_axes: {{input: {{0: batch}}, features: {{0: batch}}}}
  opset: 17
""")
    return ["target=tiny_cnn_fp32", "model=tiny_export", f"hydra.searchpath=[file://{recipes}]",
            *[f"{k}={v}" for k, v in extra.items()]]


def test_export_is_the_source_stage_and_reruns_only_when_its_inputs_change(trtmake, tmp_path):
    weights = _save_weights(tmp_path / "w.pt", seed=1)
    assert trtmake(*_export_args(weights)) == 0, trtmake.last_err
    first = trtmake.report["targets"][0]
    assert trtmake.statuses()["source"] == "built" and first["ok"]
    source_key = next(s["key"] for s in first["stages"] if s["name"] == "source")

    # an unrelated change (a validation budget) keeps the export and the engine
    assert trtmake(*_export_args(weights), "validation.max_latency_p99_ms=10000") == 0
    st = trtmake.statuses()
    assert st["source"] == "cached" and st["build"] == "cached" and st["validate"] == "built"

    # the same bytes written again (new mtime) are not a change
    weights.write_bytes(weights.read_bytes())
    assert trtmake(*_export_args(weights)) == 0
    assert trtmake.statuses()["source"] == "cached"

    # new weights: re-export, a new source key, and everything downstream rebuilt
    _save_weights(weights, seed=2)
    assert trtmake(*_export_args(weights)) == 0
    st = trtmake.statuses()
    assert st["source"] == "built" and st["precision"] == "built" and st["build"] == "built"
    assert next(s["key"] for s in trtmake.report["targets"][0]["stages"] if s["name"] == "source") != source_key


def test_a_changed_export_option_re_exports(trtmake, tmp_path):
    weights = _save_weights(tmp_path / "w.pt", seed=1)
    assert trtmake(*_export_args(weights)) == 0
    assert trtmake(*_export_args(weights), "model.export.opset=16") == 0
    assert trtmake.statuses()["source"] == "built"
    assert trtmake(*_export_args(weights), "model.export.opset=17") == 0  # back: a cache hit
    assert trtmake.statuses()["source"] == "cached"


def test_explain_names_the_weights_file_as_the_reason(trtmake, tmp_path):
    weights = _save_weights(tmp_path / "w.pt", seed=1)
    assert trtmake(*_export_args(weights)) == 0
    _save_weights(weights, seed=3)
    assert trtmake(*_export_args(weights), command="explain") == 0
    out = trtmake.last_out
    source_block = out.split("source")[1].split("precision")[0]
    assert "stale" in source_block and "inputs.weights:" in source_block, out


def test_an_export_given_as_a_whole_on_the_command_line_is_a_one_line_error(trtmake):
    code = trtmake("target=tiny_cnn_fp32", "model.generator=null", "model.export={factory: a.b}")
    assert code == 2
    line = trtmake.last_err.strip()
    assert len(line.splitlines()) == 1 and line.startswith("trtmake: error: model.export:") and "recipe" in line
