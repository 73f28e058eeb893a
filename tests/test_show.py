"""Issue 4 §6: `show=trtexec` prints the trtexec command for the target's cached precision graph."""


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
