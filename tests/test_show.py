"""`show=trtexec` and `show=polygraphy` print the command for the target's cached precision graph."""

from pathlib import Path


def test_show_trtexec_prints_the_command_for_the_built_graph(trtmake):
    assert trtmake("target=tiny_cnn_fp16") == 0
    graph = trtmake.report["targets"][0]["graph"]["path"]
    assert trtmake("target=tiny_cnn_fp16", "show=trtexec") == 0
    out = trtmake.last_out
    assert out.startswith("trtexec ") or "\ntrtexec " in out
    assert f"--onnx={graph}" in out
    assert "--minShapes=input:1x3x32x32" in out and "--maxShapes=input:4x3x32x32" in out
    assert "--stronglyTyped" in out


def test_show_trtexec_before_a_build_says_what_to_run(trtmake):
    assert trtmake("target=tiny_cnn_fp16", "show=trtexec") == 2
    assert "run `trtmake target=tiny_cnn_fp16` first" in trtmake.last_err


def test_show_polygraphy_prints_a_run_line_polygraphy_parses(trtmake):
    import shlex

    from test_tensorrt_commands import polygraphy_parse

    assert trtmake("target=tiny_cnn_fp16") == 0
    assert trtmake("target=tiny_cnn_fp16", "show=polygraphy") == 0
    line = trtmake.last_out.strip().splitlines()[-1]
    argv = shlex.split(line)
    args, config = polygraphy_parse(argv)
    assert args.model_type == "onnx" and args.save_engine == "tiny_cnn_fp16.plan"
    assert (trtmake.cache / "objects") in Path(args.model_file).parents
    (profile,) = config.profile_dicts  # tiny_cnn's dynamic batch: tiny_b1's min/opt/max
    assert [tuple(s)[0] for s in profile["input"]] == [1, 1, 4]
