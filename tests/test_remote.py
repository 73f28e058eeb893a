"""The remote cache (trtmake.remote, trtmake.commands.cache) against a real S3 API (moto's server on
127.0.0.1, spoken to over HTTP by s3fs with dummy credentials) and against a plain folder; every
test that touches a remote runs on both. Local caches are filled the way builds fill them
(Cache.put_file, Cache.put_action)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from remote_helpers import Spec, free_port, spec_for
from trtmake.cache import ActionRecord, Cache, Output
from trtmake.commands import cache as cache_cmd
from trtmake.errors import UserError
from trtmake.hashing import digest_file
from trtmake.remote import Remote, RemoteFailed, open_remote, parse_record, redact

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["s3", "dir"])
def spec(request, tmp_path):
    return spec_for(request, tmp_path)


def fill(cache: Cache, seed: int, sizes: tuple[int, ...] = (1 << 20, 300, 0)) -> tuple[str, dict]:
    """One stage's outputs and record, published the way the executor publishes them."""
    cache.ensure_writable()
    outputs = {}
    for i, size in enumerate(sizes):
        src = cache.root / "tmp" / f"out{i}"
        src.write_bytes(bytes((seed * 31 + i + j) % 251 for j in range(min(size, 4096))) + os.urandom(max(0, size - 4096)))
        outputs[f"out{i}"] = cache.put_file(src)
    key = f"{seed:064x}"
    record = cache.put_action(ActionRecord(key, {name: Output(**out) for name, out in outputs.items()}, stage="build",
                                           target=f"t{seed}", data={"seed": seed, "shape": (seed, 3)},  # a tuple: JSON reads back a list
                                           seconds=0.5, host="builder"))
    return key, record


def fresh(tmp_path: Path, name: str) -> Cache:
    cache = Cache(tmp_path / name)
    cache.ensure_writable()
    return cache


def test_the_remote_reads_records_with_the_local_cache_checksum(tmp_path):
    cache = fresh(tmp_path, "c")
    key, record = fill(cache, 1, (10,))
    stored = json.loads(cache.action_path(key).read_text())
    assert parse_record(json.dumps(stored).encode(), key) == cache.get_record(key) and record.key == key
    with pytest.raises(ValueError, match="checksum"):
        parse_record(json.dumps({**stored, "seconds": 9.0}).encode(), key)


def test_fetch_after_push_round_trips_records_and_objects_byte_for_byte(spec, tmp_path):
    here = fresh(tmp_path, "here")
    keys = [fill(here, seed)[0] for seed in (1, 2)]
    pusher = spec.remote()
    pushed = cache_cmd.push(here, pusher)
    assert pushed["pushed"] == sorted(keys) and not pushed["missing"]
    digests = {o.digest for k in keys for o in here.get_record(k).outputs.values()}
    assert len(digests) == 5  # both records hold the empty file: one object, pushed once
    assert pusher.stats.objects_pushed == 5 and pusher.stats.objects_skipped == 1
    assert pusher.stats.records_pushed == 2

    there = fresh(tmp_path, "there")
    fetcher = spec.remote()
    pulled = cache_cmd.pull(there, fetcher)  # every record the remote holds
    assert pulled["fetched"] == sorted(keys) and not pulled["missing"] and not there.warnings
    assert fetcher.stats.hits == 2 and fetcher.stats.misses == 0
    for key in keys:
        assert there.action_path(key).read_bytes() == here.action_path(key).read_bytes()
        record = there.get_record(key)
        assert record == here.get_record(key)
        for out in record.outputs.values():
            assert there.object_path(out.digest).read_bytes() == here.object_path(out.digest).read_bytes()
    sizes = {o.digest: o.size for k in keys for o in here.get_record(k).outputs.values()}
    assert fetcher.stats.bytes_in == sum(sizes.values())
    assert not list((there.root / "tmp").iterdir())

    lost = sorted(digests)[0]  # a remote that lost an object (a partial cleanup): the next push restores it
    if spec.kind == "s3":
        spec._s3().delete_object(Bucket=spec.bucket, Key=f"pre/objects/{lost[:2]}/{lost}")
    else:
        (Path(spec.url) / "objects" / lost[:2] / lost).unlink()
    repair = cache_cmd.push(here, spec.remote())
    assert len(repair["pushed"]) >= 1 and repair["bytes_out"] == sizes[lost]
    assert spec.read(f"objects/{lost[:2]}/{lost}") == here.object_path(lost).read_bytes()

    again = cache_cmd.pull(there, fetcher)
    assert again["present"] == sorted(keys) and again["bytes_in"] == 0
    assert cache_cmd.push(here, spec.remote()) == {"pushed": [], "present": sorted(keys), "missing": [], "bytes_out": 0}
    report = cache_cmd.stats(there, spec.remote())
    assert report["remote"]["records"] == 2 and report["remote"]["objects"] == 5
    assert report["only_local"] == report["only_remote"] == 0


def test_a_key_the_remote_lacks_is_a_plain_miss(spec, tmp_path):
    there = fresh(tmp_path, "there")
    remote = spec.remote()
    assert remote.fetch(there, "f" * 64) is None
    assert remote.stats.misses == 1 and not there.warnings
    assert cache_cmd.pull(there, remote, ["f" * 64])["missing"] == ["f" * 64]


def test_read_only_remote_never_writes(spec, tmp_path):
    here = fresh(tmp_path, "here")
    key, _ = fill(here, 1)
    cache_cmd.push(here, spec.remote())
    new_key, new_record = fill(here, 2)
    before = spec.listing()

    reader = spec.remote("read-only")
    there = fresh(tmp_path, "there")
    assert cache_cmd.pull(there, reader)["fetched"] == [key]
    assert reader.fetch(there, "e" * 64) is None
    with pytest.raises(UserError, match="cache.remote.mode"):
        reader.push(here, new_key, new_record)
    with pytest.raises(UserError, match="read-only"):
        cache_cmd.push(here, reader)
    cache_cmd.stats(there, reader)
    assert spec.listing() == before
    assert there.get_record(key) is not None


def test_corrupt_remote_object_is_a_miss_with_a_warning_and_never_published_locally(spec, tmp_path):
    here = fresh(tmp_path, "here")
    key, record = fill(here, 1)
    cache_cmd.push(here, spec.remote())
    big = record.outputs["out0"]
    rel = f"objects/{big.digest[:2]}/{big.digest}"
    good = spec.read(rel)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF

    for damaged, says in ((bytes(flipped), "does not match its digest"), (good[:-7], "bytes")):
        spec.write(rel, damaged)
        there = fresh(tmp_path, f"there-{len(damaged)}")
        remote = spec.remote()
        assert remote.fetch(there, key) is None
        assert any(big.digest[:12] in w and says in w for w in there.warnings), there.warnings
        assert not there.object_path(big.digest).exists()
        assert not there.action_path(key).exists()
        assert not list((there.root / "tmp").iterdir())
        assert remote.stats.misses == 1 and remote.stats.hits == 0

    spec.write(rel, good)  # repaired: served again
    assert spec.remote().fetch(fresh(tmp_path, "healed"), key) is not None


def test_the_objects_of_a_record_are_downloaded_at_once_and_each_is_still_verified(spec, tmp_path, monkeypatch):
    here = fresh(tmp_path, "here")
    key, record = fill(here, 3, (5000, 300, 7))
    cache_cmd.push(here, spec.remote())
    remote = spec.remote()
    # every download waits until all three have started: downloads made one after the other
    # would break the barrier (a remote failure: a miss)
    barrier = threading.Barrier(3, timeout=60)
    real_get = remote.fs.get_file
    monkeypatch.setattr(remote.fs, "get_file", lambda *a, **kw: (barrier.wait(), real_get(*a, **kw))[1])
    there = fresh(tmp_path, "there")
    assert remote.fetch(there, key) == here.get_record(key) and not there.warnings
    assert remote.stats.bytes_in == 5307

    bad = record.outputs["out1"].digest  # damaged while the other two download beside it
    spec.write(f"objects/{bad[:2]}/{bad}", b"x" * 300)
    barrier.reset()
    again = fresh(tmp_path, "again")
    assert remote.fetch(again, key) is None
    assert [w for w in again.warnings if bad[:12] in w and "does not match its digest" in w] == again.warnings != []
    assert not again.object_path(bad).exists() and not again.action_path(key).exists()
    assert not list(again.tmp_dir.iterdir()) and remote.stats.misses == 1


def test_garbled_remote_record_is_a_miss_with_a_warning(spec, tmp_path):
    here = fresh(tmp_path, "here")
    key, _ = fill(here, 1)
    cache_cmd.push(here, spec.remote())
    rel = f"actions/{key[:2]}/{key}.json"
    record = json.loads(spec.read(rel))
    record["data"]["seed"] = 2  # valid JSON, stale checksum
    spec.write(rel, json.dumps(record).encode())
    there = fresh(tmp_path, "there")
    assert spec.remote().fetch(there, key) is None
    assert any("unreadable (checksum)" in w for w in there.warnings)
    assert not list((there.root / "objects").rglob("*"))  # nothing downloaded for a bad record
    # a push over a garbled record replaces it
    assert spec.remote().push(here, key, here.get_record(key)) is True
    assert spec.remote().fetch(there, key) is not None


PUSHER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from trtmake.cache import Cache
    from trtmake.commands import cache as cache_cmd
    from trtmake.remote import Remote
    root, url, options, keys, go = sys.argv[1:]
    remote = Remote(url, "read-write", json.loads(options))
    remote.root  # open the filesystem before the start line
    Path(go + "." + str(__import__("os").getpid())).touch()
    while not Path(go).exists():
        time.sleep(0.005)
    result = cache_cmd.push(Cache(Path(root)), remote, json.loads(keys))
    print(json.dumps(result))
""")


def _pusher(spec: Spec, cache: Cache, keys: list[str], go: Path, fault: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("TRTMAKE_FAULT", None)
    if fault:
        env["TRTMAKE_FAULT"] = fault
    return subprocess.Popen([sys.executable, "-c", PUSHER, str(cache.root), spec.url, json.dumps(spec.options),
                             json.dumps(keys), str(go)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_push_killed_after_the_first_object_leaves_the_remote_readable_and_the_next_push_completes_it(spec, tmp_path):
    here = fresh(tmp_path, "here")
    key, record = fill(here, 1)
    go = tmp_path / "go"
    go.touch()
    proc = _pusher(spec, here, [key], go, fault="remote:object-pushed")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -9, err  # SIGKILLed right after its first object upload
    objects = spec.names("objects/")
    assert len(objects) == 1 and not spec.names("actions/")  # no record without its objects
    digest = objects[0].rsplit("/", 1)[-1]
    assert digest in {o.digest for o in record.outputs.values()}
    there = fresh(tmp_path, "there")
    assert spec.remote().fetch(there, key) is None and not there.warnings  # not pushed yet: a plain miss

    remote = spec.remote()
    assert remote.push(here, key, here.get_record(key)) is True
    assert remote.stats.objects_skipped == 1 and remote.stats.objects_pushed == 2
    fetched = spec.remote().fetch(there, key)
    assert fetched == here.get_record(key)
    for out in fetched.outputs.values():
        assert digest_file(there.object_path(out.digest)) == out.digest


def test_four_processes_pushing_the_same_keys_at_once_leave_one_intact_copy(spec, tmp_path):
    here = fresh(tmp_path, "here")
    keys = sorted(fill(here, seed, (4 << 20, 1000, 0))[0] for seed in (1, 2, 3))
    go = tmp_path / "go"
    procs = [_pusher(spec, here, keys, go) for _ in range(4)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.*"))) < len(procs) and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    go.touch()  # all four start pushing together
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert all(sorted(r["pushed"] + r["present"]) == keys for r in results)

    digests = {o.digest for k in keys for o in here.get_record(k).outputs.values()}
    assert spec.names("objects/") == sorted(f"objects/{d[:2]}/{d}" for d in digests)
    assert spec.names("actions/") == sorted(f"actions/{k[:2]}/{k}.json" for k in keys)
    assert not spec.names("tmp/") and not any(n.startswith("upload:") for n in spec.listing())
    there = fresh(tmp_path, "there")
    assert cache_cmd.pull(there, spec.remote())["fetched"] == keys
    for key in keys:
        assert there.action_path(key).read_bytes() == here.action_path(key).read_bytes()
        for out in there.get_record(key).outputs.values():
            assert digest_file(there.object_path(out.digest)) == out.digest


def test_a_corrupt_local_object_is_never_pushed(spec, tmp_path):
    here = fresh(tmp_path, "here")
    key, record = fill(here, 1)
    record_before = here.get_record(key)
    small = here.object_path(record.outputs["out1"].digest)
    small.chmod(0o644)
    data = bytearray(small.read_bytes())
    data[0] ^= 1
    small.write_bytes(bytes(data))
    remote = spec.remote()
    assert remote.push(here, key, record_before) is False
    assert any("failed verification" in w for w in here.warnings)
    assert not spec.names("actions/") and not spec.names("objects/")


def test_an_http_mirror_of_a_folder_remote_serves_fetches(tmp_path):
    pytest.importorskip("aiohttp")
    folder = Spec("dir", str(tmp_path / "remote"), {})
    here = fresh(tmp_path, "here")
    key, _ = fill(here, 1)
    cache_cmd.push(here, folder.remote())
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=folder.url))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        mirror = Remote(f"http://127.0.0.1:{server.server_address[1]}/", "read-write")
        assert not mirror.writable  # an http(s) remote is read whatever the mode says
        there = fresh(tmp_path, "there")
        assert mirror.fetch(there, key) == here.get_record(key)
        with pytest.raises(UserError, match="http"):
            mirror.push(here, key, here.get_record(key))
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_an_unreachable_remote_is_a_miss_with_a_warning_that_shows_no_password(tmp_path):
    pytest.importorskip("aiohttp")
    url = f"http://builder:s3cr3t-token@127.0.0.1:{free_port()}/cache"
    remote = Remote(url, "read-only")
    assert "s3cr3t" not in repr(remote) and "s3cr3t" not in remote.display
    assert redact(url) == url.replace("s3cr3t-token", "***")
    there = fresh(tmp_path, "there")
    assert remote.fetch(there, "a" * 64) is None
    assert remote.stats.misses == 1
    assert len(there.warnings) == 1 and "treated as a miss" in there.warnings[0]
    assert "s3cr3t" not in there.warnings[0] and len(there.warnings[0]) < 400


def test_remote_settings_are_checked_and_off_means_no_remote(tmp_path):
    assert open_remote(None) is None
    assert open_remote(str(tmp_path), "off") is None
    assert open_remote(str(tmp_path), "read-only").writable is False
    with pytest.raises(UserError, match="cache.remote.mode: 'rw' is not one of read-write, read-only, off"):
        open_remote(str(tmp_path), "rw")
    with pytest.raises(UserError, match="cache.remote.url: cannot open xyz://a/b"):
        Remote("xyz://a/b").fs
    for options, name in (({"secret": "hunter2"}, "cache.remote.options.secret"),
                          ({"client_kwargs": {"aws_secret_access_key": "hunter2"}},
                           "cache.remote.options.client_kwargs.aws_secret_access_key")):
        with pytest.raises(UserError, match=f"^{name}: credentials do not belong in the config") as err:
            open_remote("s3://bucket/cache", "read-write", options)
        assert "hunter2" not in str(err.value)
    assert open_remote("s3://bucket/cache", "read-only", {"anon": True}).options == {"anon": True}


def test_options_from_the_composed_config_reach_fsspec_as_plain_dicts(tmp_path):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"options": {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}, "anon": True}})
    remote = open_remote("s3://bucket/cache", "read-only", cfg.options)
    assert remote.options == {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}, "anon": True}
    assert type(remote.options["client_kwargs"]) is dict
    with pytest.raises(UserError, match="cache.remote.options.client_kwargs.aws_session_token"):
        open_remote("s3://bucket/cache", "read-only", OmegaConf.create({"client_kwargs": {"aws_session_token": "t"}}))


def test_pushing_to_a_bucket_that_does_not_exist_fails_with_one_line(s3_endpoint, tmp_path):
    here = fresh(tmp_path, "here")
    key, record = fill(here, 1, (10,))
    remote = Remote("s3://no-such-bucket/cache", "read-write", {"client_kwargs": {"endpoint_url": s3_endpoint}})
    with pytest.raises(RemoteFailed, match=r"^remote cache s3://no-such-bucket/cache: upload objects/\S+ failed \(.*bucket"):
        remote.push(here, key, record)
    assert remote.fetch(here, "c" * 64) is None  # reading it is a plain miss


def test_schema_reads_the_remote_url_from_trtmake_remote(monkeypatch):
    from omegaconf import OmegaConf

    from trtmake.config.schema import CacheConfig

    monkeypatch.delenv("TRTMAKE_REMOTE", raising=False)
    assert OmegaConf.structured(CacheConfig).remote.url is None
    monkeypatch.setenv("TRTMAKE_REMOTE", "s3://fleet-cache/engines")
    cfg = OmegaConf.structured(CacheConfig)
    assert cfg.remote.url == "s3://fleet-cache/engines" and cfg.remote.mode == "read-write"
