"""Bad config -> one line naming the key and the valid choices, exit 2, nothing cached."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.parametrize("args, expected", [
    (["target=nope"], ["target=nope", "resnet50_fp32", "tiny_cnn_fp32"]),
    (["target=tiny_cnn_fp32", "precision=fp8"], ["precision=fp8", "fp16", "int8"]),
    (["target=tiny_cnn_fp32", "precision.mode=fp9"], ["precision.mode", "fp9", "fp32", "fp16", "int8"]),
    # bf16 is not offered (the onnxruntime CPU backend has no bf16 kernels): refused when planned
    (["target=tiny_cnn_fp32", "precision.mode=bf16"], ["precision.mode", "'bf16'", "[fp32, fp16, int8]"]),
    (["target=tiny_cnn_fp32", "precision=bf16"], ["precision=bf16", "no such recipe", "fp16, fp32, int8"]),
    (["target=tiny_cnn_fp32", "precision.colour=red"], ["precision.colour", "unknown key", "keep_io_types"]),
    (["target=tiny_cnn_fp32", "validation.iters=many"], ["validation.iters", "many"]),
    (["target=tiny_cnn_fp32", "validation.assertions=[{metric: speed, op: '>=', value: 1}]"],
     ["validation.assertions[0].metric", "speed", "latency_p50_ms"]),
    (["target=tiny_cnn_fp32", "validation.assertions=[{metric: throughput, op: '=>', value: 1}]"],
     ["validation.assertions[0].op", "'=>'", ">="]),
    ([], ["target", "resnet50_fp32"]),
    # value ranges, checked when the target is planned (trtmake/config/checks.py), before any stage
    (["target=tiny_cnn_fp32", "validation.iters=0"], ["validation.iters", ">= 1"]),
    (["target=tiny_cnn_fp32", "validation.warmup=-1"], ["validation.warmup", ">= 0"]),
    (["target=tiny_cnn_fp32", "validation.num_samples=0"], ["validation.num_samples", ">= 1"]),
    (["target=tiny_cnn_fp32", "validation.max_latency_p99_ms=-5"], ["validation.max_latency_p99_ms", "> 0"]),
    (["target=tiny_cnn_fp32", "validation.min_throughput=-1"], ["validation.min_throughput", "> 0"]),
    (["target=tiny_cnn_fp32", "validation.min_top1_agreement=1.5"], ["validation.min_top1_agreement", "[0, 1]"]),
    (["target=tiny_cnn_fp32", "validation.shapes=[]"], ["validation.shapes", "opt"]),
    (["target=tiny_cnn_fp32", "validation.assertions=[{metric: latency_p99_ms, op: '<=', value: -5}]"],
     ["validation.assertions[0].value", "latency_p99_ms", "> 0"]),
    (["target=tiny_cnn_int8", "calibrator.batch_size=0"], ["calibrator.batch_size", ">= 1"]),
    (["target=tiny_cnn_int8", "calibrator.percentile=120"], ["calibrator.percentile", "(0, 100]"]),
    (["target=tiny_cnn_int8", "calibrator.num_quantized_bins=4096"], ["calibrator.num_quantized_bins", "num_bins"]),
    (["target=tiny_cnn_fp32", "backend.onnxruntime.intra_op_num_threads=-2"],
     ["backend.onnxruntime.intra_op_num_threads", ">= 0"]),
    (["target=tiny_cnn_fp32", "backend.tensorrt.builder_optimization_level=9"],
     ["backend.tensorrt.builder_optimization_level", "[0, 5]"]),
])
def test_bad_config_is_one_line_exit_2_and_caches_nothing(trtmake, args, expected):
    assert trtmake(*args) == 2
    err = trtmake.last_err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("trtmake: error: ")
    for word in expected:
        assert word in err, (word, err)
    assert not [p for p in trtmake.cache_files() if "objects" in p.parts or "actions" in p.parts]


def test_console_script_exit_code_and_single_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trtmake", "target=nope", f"cache.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "available:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_outside_a_project_says_how_to_fix(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trtmake", "target=tiny_cnn_fp32"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "TRTMAKE_PROJECT" in proc.stderr


def test_cfg_job_prints_hydras_composed_target(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trtmake", "target=resnet50_fp16", "--cfg", "job"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "mode: fp16" in proc.stdout and "generator: resnet50" in proc.stdout


def test_model_needs_exactly_one_source(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "model.path=x.onnx") == 2
    assert "exactly one of model.path, model.generator" in trtmake.last_err


def test_bad_value_fails_before_any_stage_runs(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "validation.max_latency_p99_ms=-5") == 2
    assert not trtmake.cache_files() or not [p for p in trtmake.cache_files() if "objects" in p.parts]
    assert not trtmake.report_path.exists()


def test_too_few_samples_names_the_count_key_that_exists(trtmake, tmp_path):
    import numpy as np

    data = tmp_path / "npy"
    data.mkdir()
    np.save(data / "a.npy", np.zeros((3, 32, 32), np.float32))
    assert trtmake("target=tiny_cnn_fp32", "dataset.validation.kind=npy", f"dataset.validation.path={data}",
                   "validation.num_samples=4") == 2
    assert "lower validation.num_samples" in trtmake.last_err and "dataset.validation.num_samples" not in trtmake.last_err


def test_sample_counts_live_in_calibrator_and_validation_not_in_the_dataset(trtmake):
    assert trtmake("target=tiny_cnn_fp32", "dataset.validation.num_samples=8") == 2
    assert "dataset.validation.num_samples: unknown key" in trtmake.last_err


def test_yaml_syntax_error_in_a_recipe_is_one_line_naming_file_and_line(tmp_path):
    import shutil

    project = tmp_path / "project"
    for folder in ("conf", "engine_recipes"):
        shutil.copytree(ROOT / folder, project / folder)
    (project / "engine_recipes" / "validation" / "default.yaml").write_text("warmup: 5\niters: [30\nnum_samples: 16\n")
    env = {**os.environ, "TRTMAKE_PROJECT": str(project), "PYTHONPATH": str(ROOT)}
    for argv in (["target=tiny_cnn_fp32"], ["status", "--json", "target=tiny_cnn_fp32"]):
        proc = subprocess.run([sys.executable, "-m", "trtmake", *argv, f"cache.dir={tmp_path / 'cache'}"],
                              cwd=project, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        if argv[0] == "status":
            import json

            (row,) = json.loads(proc.stdout)["targets"]
            assert row["why"].startswith("engine_recipes/validation/default.yaml, line 2: YAML syntax error")
        else:
            err = proc.stderr.strip()
            assert len(err.splitlines()) == 1, err
            assert "engine_recipes/validation/default.yaml, line 2: YAML syntax error" in err
            assert "internal error" not in err
