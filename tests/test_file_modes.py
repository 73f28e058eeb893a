"""Every file trtmake publishes follows the umask, as a file made with open(2) would: mkstemp's
0600 must not leak into reports, records or pointers. Cache objects are read-only (0444 & ~umask)."""

from __future__ import annotations

import os

import pytest


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_published_files_follow_the_umask(trtmake, tmp_path, tiny_model, umask):
    junit = tmp_path / "out" / "junit.xml"
    old = os.umask(umask)
    try:
        assert trtmake("target=tiny_cnn_fp32", f"model.path={tiny_model}", "model.generator=null",
                       "validation.iters=2", f"report.junit={junit}") == 0
    finally:
        os.umask(old)
    writable, read_only = 0o666 & ~umask, 0o444 & ~umask
    files = trtmake.cache_files()
    kinds = {p.relative_to(trtmake.cache).parts[0] for p in files}
    assert {"objects", "actions", "targets", "stat", "plans"} <= kinds, kinds
    wrong = [(str(p), oct(_mode(p))) for p in files
             if _mode(p) != (read_only if "objects" in p.parts else writable) and "locks" not in p.parts]
    assert not wrong
    assert oct(_mode(trtmake.report_path)) == oct(writable)
    assert oct(_mode(junit)) == oct(writable)
