"""The cache: atomic publish, verification, stat cache, corrupt records are misses, one
record parser for every reader."""

import json
import os

import pytest

from trtmake.cache import ActionRecord, Cache, Output
from trtmake.hashing import StatCache, canonical_json, digest_file
from trtmake.keys import StageKey, diff_components


def test_canonical_json_is_order_independent():
    assert canonical_json({"b": 1, "a": [1.5, {"d": 2, "c": 3}]}) == canonical_json({"a": [1.5, {"c": 3, "d": 2}], "b": 1})


def test_stage_key_changes_with_each_component():
    base = StageKey("build", 1, {"a": 1}, {"graph": "x" * 64}, {"ort": "1"})
    for other in (StageKey("build", 2, {"a": 1}, {"graph": "x" * 64}, {"ort": "1"}),
                  StageKey("build", 1, {"a": 2}, {"graph": "x" * 64}, {"ort": "1"}),
                  StageKey("build", 1, {"a": 1}, {"graph": "y" * 64}, {"ort": "1"}),
                  StageKey("build", 1, {"a": 1}, {"graph": "x" * 64}, {"ort": "2"})):
        assert other.digest != base.digest
    assert diff_components(base.components(), base.components()) == []
    assert diff_components({"config": {"a": 1}}, {"config": {"a": 2}}) == ["config.a: 1 -> 2"]


def test_stat_cache_reads_no_bytes_when_nothing_changed(tmp_path):
    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(1 << 16))
    old = f.stat().st_mtime - 10
    os.utime(f, (old, old))
    sc = StatCache(tmp_path / "stat.json")
    d = sc.digest(f)
    sc.save()
    again = StatCache(tmp_path / "stat.json")
    assert again.digest(f) == d and again.hashed_bytes == 0
    f.write_bytes(b"changed")
    assert again.digest(f) == digest_file(f) != d


def test_corrupt_object_and_garbled_record_are_cache_misses(tmp_path):
    cache = Cache(tmp_path)
    cache.ensure_writable()
    src = tmp_path / "tmp" / "x.bin"
    src.write_bytes(b"engine bytes")
    out = cache.put_file(src)
    cache.put_action(ActionRecord("k" * 64, {"engine": Output(**out)}))
    assert cache.get_record("k" * 64) is not None
    obj = cache.object_path(out["digest"])
    obj.chmod(0o644)
    obj.write_bytes(b"engine bytez")
    assert cache.get_record("k" * 64) is None
    assert any("corrupt" in w for w in cache.warnings)
    cache.action_path("k" * 64).write_text("{not json")
    assert cache.get_record("k" * 64) is None
    assert any("unreadable" in w for w in cache.warnings)


def _published(cache, key, blob=b"engine bytes", **fields):
    src = cache.tmp_dir / f"{key[:4]}.bin"
    src.write_bytes(blob)
    out = cache.put_file(src)
    cache.put_action(ActionRecord(key, {"engine": Output(**out)}, stage="build", data={"n": 1}, **fields))
    return out


def test_a_record_reads_back_as_the_action_record_it_stored(tmp_path):
    cache = Cache(tmp_path)
    cache.ensure_writable()
    out = _published(cache, "a" * 64, target="t", components={"config": {"x": 1}}, seconds=2.5, host={"cpu": "c"})
    record = cache.get_record("a" * 64)
    assert record == ActionRecord(key="a" * 64, stage="build", outputs={"engine": Output(out["digest"], out["size"])},
                                  data={"n": 1}, components={"config": {"x": 1}}, target="t", seconds=2.5,
                                  host={"cpu": "c"}, created=record.created, pid=os.getpid())
    assert record.created > 0
    stored = json.loads(cache.action_path("a" * 64).read_text())  # the file's own form
    assert stored["outputs"] == {"engine": out} and stored["data"] == {"n": 1} and stored["seconds"] == 2.5
    assert ActionRecord.from_json(record.to_json(), "a" * 64) == record
    assert [(p.name, r) for p, r in cache.iter_records()] == [(f"{'a' * 64}.json", record)]


@pytest.mark.parametrize("edit", [
    lambda r: {**r, "seconds": 99.0},  # valid JSON, but its checksum no longer matches
    lambda r: {**r, "key": "b" * 64},  # the record of another key
    lambda r: {**r, "format": 2},  # an older format
])
def test_a_garbled_record_is_unreadable_for_every_reader(tmp_path, edit):
    cache = Cache(tmp_path)
    cache.ensure_writable()
    _published(cache, "a" * 64)
    path = cache.action_path("a" * 64)
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    with pytest.raises(ValueError):
        ActionRecord.from_json(path.read_text(), "a" * 64)
    assert [r for _, r in cache.iter_records()] == [None] and path.exists()  # listing removes nothing
    assert cache.get_record("a" * 64) is None and not path.exists()  # a build discards it
    assert any("unreadable" in w for w in cache.warnings)


def test_published_objects_are_read_only_and_no_temp_files_remain(tmp_path):
    cache = Cache(tmp_path)
    cache.ensure_writable()
    with cache.workdir("build") as wd:
        (wd / "e").write_bytes(b"abc")
        out = cache.put_file(wd / "e")
    assert not os.access(cache.object_path(out["digest"]), os.W_OK) or os.geteuid() == 0
    assert oct(cache.object_path(out["digest"]).stat().st_mode & 0o777) == "0o444"
    assert list((tmp_path / "tmp").iterdir()) == []
    rec = cache.put_action(ActionRecord("a" * 64, {"x": Output(**out)}))
    assert json.loads(cache.action_path("a" * 64).read_text())["key"] == rec.key


def test_file_digest_is_blake3_of_the_bytes_on_the_read_and_the_mmap_path(tmp_path):
    import time

    from blake3 import blake3

    from trtmake import hashing

    for size in (0, 5, hashing.MMAP_MIN_BYTES - 1, hashing.MMAP_MIN_BYTES, 3 * hashing.MMAP_MIN_BYTES + 7):
        f = tmp_path / f"f{size}.bin"
        data = os.urandom(size)
        f.write_bytes(data)
        assert not hashing.mappable(f)  # just written: it may still be being written, so it is read
        assert digest_file(f) == blake3(data).hexdigest(), size
        old = time.time() - 10
        os.utime(f, (old, old))
        assert hashing.mappable(f) == (size >= hashing.MMAP_MIN_BYTES)
        assert digest_file(f) == blake3(data).hexdigest(), size


def test_large_object_is_hashed_while_fsynced_and_a_failed_fsync_publishes_nothing(tmp_path, monkeypatch):
    import errno

    from blake3 import blake3

    from trtmake import cache as cache_module

    cache = Cache(tmp_path)
    cache.ensure_writable()
    data = os.urandom(cache_module.OVERLAP_MIN_BYTES + 1)
    src = tmp_path / "tmp" / "engine.bin"
    src.write_bytes(data)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(cache_module.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    out = cache.put_file(src)
    assert out == {"digest": blake3(data).hexdigest(), "size": len(data)}
    assert cache.object_path(out["digest"]).read_bytes() == data and synced

    def broken(fd):
        raise OSError(errno.EIO, "input/output error")

    src.write_bytes(data[::-1])
    monkeypatch.setattr(cache_module.os, "fsync", broken)
    with pytest.raises(OSError) as failed:
        cache.put_file(src)
    assert failed.value.errno == errno.EIO
    assert not cache.object_path(blake3(data[::-1]).hexdigest()).exists() and src.exists()
