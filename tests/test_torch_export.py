"""trtmake.export: PyTorch -> ONNX export of a tiny conv net, its key inputs, and its errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from trtmake.errors import MissingDependency, UserError
from trtmake.export import ExportSpec, export_key_inputs, export_onnx, require_torch, torch_available
from trtmake.export import torch_export, zoo
from trtmake.hashing import canonical_json

torch = pytest.importorskip("torch")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FACTORY = "tiny_torch_modules.tiny_convnet"


def config(**changes):
    cfg = {
        "factory": FACTORY,
        "factory_args": {"channels": 4, "out_channels": 2},
        "inputs": [{"name": "image", "shape": [1, 3, 8, 8], "dtype": "float32"}],
        "output_names": ["features"],
        "dynamic_axes": {"image": {0: "batch", 2: "height"}, "features": {0: "batch"}},
        "opset": 17,
    }
    cfg.update(changes)
    return cfg


@pytest.fixture(autouse=True)
def tests_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))


@pytest.fixture
def weights(tmp_path, tests_on_path) -> Path:
    import tiny_torch_modules

    torch.manual_seed(1)
    path = tmp_path / "tiny.pt"
    torch.save(tiny_torch_modules.tiny_convnet().state_dict(), path)
    return path


@pytest.fixture
def exported(tmp_path, weights):
    spec = ExportSpec.from_config(config(weights=str(weights)))
    out = tmp_path / "out" / "tiny.onnx"
    return spec, out, export_onnx(spec, out)


def test_export_writes_valid_onnx_with_declared_names_and_dynamic_axes(exported):
    spec, out, info = exported
    onnx.checker.check_model(str(out))
    model = onnx.load(str(out))
    assert [v.name for v in model.graph.input] == ["image"]
    assert [v.name for v in model.graph.output] == ["features"]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", 8]
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert info["inputs"] == ["image"] and info["outputs"] == ["features"]
    assert info["opset"] == 17 and info["node_count"] == len(model.graph.node) >= 3
    assert info["dynamic_axes"]["image"] == {"0": "batch", "2": "height"}
    assert info["torch"] == torch.__version__ and info["onnx"] == onnx.__version__
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.onnx"]  # no temp left behind


def test_exported_outputs_match_torch_within_1e_5(exported, weights):
    import tiny_torch_modules

    spec, out, info = exported
    assert info["max_abs_diff"] <= 1e-5
    module = tiny_torch_modules.tiny_convnet()
    module.load_state_dict(torch.load(weights, weights_only=True))
    x = np.random.default_rng(7).standard_normal((3, 3, 5, 8), dtype=np.float32)  # other batch, height
    with torch.no_grad():
        want = module.eval()(torch.from_numpy(x)).numpy()
    (got,) = ReferenceEvaluator(str(out)).run(None, {"image": x})
    assert np.max(np.abs(got - want)) <= 1e-5


def test_export_is_byte_identical_across_runs_even_without_weights(tmp_path):
    spec = ExportSpec.from_config(config())  # random init, seeded by spec.seed
    a, b = tmp_path / "a" / "m.onnx", tmp_path / "b" / "m.onnx"
    export_onnx(spec, a), export_onnx(spec, b)
    assert a.read_bytes() == b.read_bytes()


def test_changed_weight_changes_key_inputs(weights):
    spec = ExportSpec.from_config(config(weights=str(weights)))
    before = export_key_inputs(spec)
    state = torch.load(weights, weights_only=True)
    state["conv2.bias"][0] += 1e-3
    torch.save(state, weights)
    after = export_key_inputs(spec)
    assert after["inputs"]["weights"] != before["inputs"]["weights"]
    assert after["config"] == before["config"] and after["toolchain"] == before["toolchain"]


def test_key_order_and_weights_location_do_not_change_key_inputs(weights, tmp_path):
    cfg = config(weights=str(weights))
    reordered = {k: cfg[k] for k in reversed(list(cfg))}
    reordered["factory_args"] = {"out_channels": 2, "channels": 4}
    reordered["dynamic_axes"] = {"features": {0: "batch"}, "image": {2: "height", 0: "batch"}}
    moved = tmp_path / "elsewhere" / "copy.pt"
    moved.parent.mkdir()
    shutil.copy(weights, moved)
    reordered["weights"] = str(moved)
    a = export_key_inputs(ExportSpec.from_config(cfg))
    b = export_key_inputs(ExportSpec.from_config(reordered))
    assert canonical_json(a) == canonical_json(b)
    assert set(a["toolchain"]) == {"torch", "onnx"}  # the tiny module belongs to no distribution


def test_weights_from_callable_is_digested_like_a_weights_file(weights, monkeypatch):
    monkeypatch.setenv("TRTMAKE_TEST_WEIGHTS", str(weights))
    by_path = export_key_inputs(ExportSpec.from_config(config(weights=str(weights))))
    by_callable = export_key_inputs(ExportSpec.from_config(config(weights_from="tiny_torch_modules.weights_file_path")))
    assert by_callable["inputs"] == by_path["inputs"]
    assert by_callable["config"]["weights_from"] == "tiny_torch_modules.weights_file_path"


def test_changed_export_field_changes_key_inputs():
    a = export_key_inputs(ExportSpec.from_config(config()))
    b = export_key_inputs(ExportSpec.from_config(config(opset=18)))
    assert a["config"]["opset"] == 17 and b["config"]["opset"] == 18


def test_a_zoo_factory_version_bump_changes_the_export_key(monkeypatch):
    """trtmake's own factory code is in no installed package's version: zoo.VERSION stands for it,
    so a changed graph (bumped version) exports again; a user's factory carries none."""
    from trtmake.export import zoo

    spec = ExportSpec.from_config({"factory": "trtmake.export.zoo.minilm_l6", "factory_args": {"pretrained": False},
                                   "inputs": [{"name": "input_ids", "shape": [1, 4], "dtype": "int64"}],
                                   "output_names": ["sentence_embedding"]})
    before = export_key_inputs(spec)
    monkeypatch.setitem(zoo.VERSION, "minilm_l6", zoo.VERSION["minilm_l6"] + 1)
    after = export_key_inputs(spec)
    assert before["config"]["zoo_version"] == zoo.VERSION["minilm_l6"] - 1
    assert after["config"]["zoo_version"] == zoo.VERSION["minilm_l6"]
    assert canonical_json(before) != canonical_json(after)
    assert "zoo_version" not in export_key_inputs(ExportSpec.from_config(config()))["config"]


def test_every_zoo_model_factory_has_a_version():
    from trtmake.export import zoo

    factories = [n for n in zoo.REQUIRES if not n.endswith(("_weights", "_files"))]
    assert factories and sorted(factories) == sorted(zoo.VERSION)


@pytest.mark.parametrize(
    "factory, reason",
    [
        ("no_such_pkg.make", "ModuleNotFoundError"),
        ("tiny_torch_modules.no_such_factory", "tiny_torch_modules.no_such_factory"),
    ],
)
def test_bad_factory_path_raises_user_error_naming_key(factory, reason, tmp_path):
    with pytest.raises(UserError) as err:
        export_onnx(ExportSpec.from_config(config(factory=factory)), tmp_path / "m.onnx")
    msg = str(err.value)
    assert msg.startswith(f"model.export.factory: cannot import '{factory}'") and reason in msg
    assert "\n" not in msg and not (tmp_path / "m.onnx").exists()


def test_factory_string_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    for factory in (f"os.system('touch {marker}')", "__import__('os').getcwd", "tiny_torch_modules.tiny_convnet()"):
        with pytest.raises(UserError, match=r"^model\.export\.factory: "):
            ExportSpec.from_config(config(factory=factory))
    assert not marker.exists()
    source = "".join((ROOT / "trtmake" / "export" / f).read_text() for f in os.listdir(ROOT / "trtmake" / "export")
                     if f.endswith(".py"))
    assert "eval(" not in source.replace(".eval(", "") and "exec(" not in source


def test_factory_errors_name_the_args_key_and_a_non_module_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"^model\.export\.factory_args: .*TypeError"):
        export_onnx(ExportSpec.from_config(config(factory_args={"chanels": 4})), tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"^model\.export\.factory: .* returned str, not a torch\.nn\.Module"):
        spec = ExportSpec.from_config(config(factory="tiny_torch_modules.not_a_module", factory_args={}))
        export_onnx(spec, tmp_path / "m.onnx")


def test_weights_that_do_not_fit_the_module_name_the_weights_key(weights, tmp_path):
    spec = ExportSpec.from_config(config(weights=str(weights), factory_args={"channels": 5}))
    with pytest.raises(UserError, match=r"^model\.export\.weights: .* does not match the module"):
        export_onnx(spec, tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"^model\.export\.weights: weights file .* does not exist"):
        export_key_inputs(ExportSpec.from_config(config(weights=str(tmp_path / "missing.pt"))))


def test_failed_export_leaves_nothing_at_out_path(tmp_path):
    spec = ExportSpec.from_config(config(output_names=["features", "extra"], dynamic_axes={}))
    with pytest.raises(UserError, match=r"^model\.export\.output_names: declares 2 outputs"):
        export_onnx(spec, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_bad_spec_values_name_their_key():
    with pytest.raises(UserError, match=r"^model\.export\.dynamic_axes\.logits: no input or output"):
        ExportSpec.from_config(config(dynamic_axes={"logits": {0: "batch"}}))
    with pytest.raises(UserError, match=r"^model\.export\.inputs\[0\]\.dtype: 'float8'"):
        ExportSpec.from_config(config(inputs=[{"name": "image", "shape": [1, 3, 8, 8], "dtype": "float8"}]))
    with pytest.raises(UserError, match=r"^model\.export\.opsett: unknown key"):
        ExportSpec.from_config({**config(), "opsett": 17})


def test_require_torch_says_how_to_install_when_torch_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(torch_export, "find_spec", lambda name: None if name == "torch" else object())
    assert not torch_available()
    spec = ExportSpec.from_config(config())
    for call in (require_torch, lambda: export_onnx(spec, tmp_path / "m.onnx"),
                 lambda: export_key_inputs(spec), zoo.efficientnet_lite0):
        with pytest.raises(MissingDependency) as err:
            call()
        msg = str(err.value)
        assert msg.endswith("needs PyTorch: pip install 'trtmake[torch]'") and "\n" not in msg
        assert err.value.exit_code == 2


def test_import_and_key_inputs_do_not_import_torch():
    code = (
        "import sys; from trtmake.export import ExportSpec, export_key_inputs; "
        "assert 'torch' not in sys.modules; "
        f"k = export_key_inputs(ExportSpec(factory='x.y', inputs=({{'name': 'i', 'shape': [1]}},), output_names=('o',))); "
        "assert 'torch' not in sys.modules and k['toolchain']['torch'], k"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, timeout=120)
