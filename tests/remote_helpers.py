"""A remote cache for tests: a real S3 API (moto's server on 127.0.0.1, spoken to over HTTP by
s3fs with dummy credentials) or a plain folder, and how a test looks at it from outside trtmake."""

from __future__ import annotations

import logging
import socket
import uuid
from pathlib import Path

import pytest

from trtmake.remote import Remote


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_server(tmp_path_factory):
    """Yields the endpoint of a moto S3 server (conftest's session fixture `s3_endpoint`)."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    with pytest.MonkeyPatch.context() as mp:
        # dummy credentials, and no profile or config file of the machine's user is read
        empty = tmp_path_factory.mktemp("aws") / "none"
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(empty),
                            "AWS_SHARED_CREDENTIALS_FILE": str(empty), "NO_PROXY": "127.0.0.1"}.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "HTTP_PROXY", "HTTPS_PROXY"):
            mp.delenv(name, raising=False)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        port = free_port()
        server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


class Spec:
    """Where a test's remote lives, and how the test looks at it from outside trtmake."""

    def __init__(self, kind: str, url: str, options: dict, bucket: str | None = None, endpoint: str | None = None):
        self.kind, self.url, self.options, self.bucket, self.endpoint = kind, url, options, bucket, endpoint

    def remote(self, mode: str = "read-write") -> Remote:
        return Remote(self.url, mode, self.options)

    def _s3(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint)

    def listing(self) -> dict[str, tuple]:
        """Every stored name -> (size, a version stamp), incomplete multipart uploads included."""
        if self.kind == "s3":
            client = self._s3()
            found = client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
            uploads = client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
            return {**{o["Key"]: (o["Size"], o["ETag"], o["LastModified"]) for o in found},
                    **{f"upload:{u['Key']}": (u["UploadId"],) for u in uploads}}
        root = Path(self.url)
        return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in root.rglob("*") if p.is_file()}

    def names(self, sub: str) -> list[str]:
        prefix = "pre/" if self.kind == "s3" else ""
        return sorted(n[len(prefix):] for n in self.listing() if n.startswith(prefix + sub))

    def read(self, rel: str) -> bytes:
        if self.kind == "s3":
            return self._s3().get_object(Bucket=self.bucket, Key=f"pre/{rel}")["Body"].read()
        return (Path(self.url) / rel).read_bytes()

    def write(self, rel: str, data: bytes) -> None:
        if self.kind == "s3":
            self._s3().put_object(Bucket=self.bucket, Key=f"pre/{rel}", Body=data)
            return
        path = Path(self.url) / rel
        path.chmod(0o644)
        path.write_bytes(data)

    def overrides(self) -> list[str]:
        """The command-line overrides that point trtmake at this remote."""
        endpoint = [f"++cache.remote.options.client_kwargs.endpoint_url={self.endpoint}"] if self.endpoint else []
        return [f"cache.remote.url={self.url}", *endpoint]


def make_spec(kind: str, tmp_path: Path, endpoint: str | None = None) -> Spec:
    """A fresh remote: "s3", a new bucket on the moto server at `endpoint`; "dir", a folder."""
    if kind == "dir":
        return Spec("dir", str(tmp_path / "remote"), {})
    bucket = f"trtmake-{uuid.uuid4().hex[:12]}"
    spec = Spec("s3", f"s3://{bucket}/pre", {"client_kwargs": {"endpoint_url": endpoint}}, bucket, endpoint)
    spec._s3().create_bucket(Bucket=bucket)
    return spec


def spec_for(request, tmp_path: Path) -> Spec:
    """The remote a test parametrized with ["s3", "dir"] asks for."""
    endpoint = request.getfixturevalue("s3_endpoint") if request.param == "s3" else None
    return make_spec(request.param, tmp_path, endpoint)
