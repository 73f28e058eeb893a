"""source: the ONNX graph (plus every external-data file), from a path, a generator or an export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.errors import UserError
from trtmake.hashing import digest_json
from trtmake.keys import StageKey
from trtmake.stages.base import Artifact, Context, Stage, StageOutput


def _versions(*packages: str) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


class SourceStage(Stage):
    name = "source"
    version = 1

    def key(self, ctx: Context) -> StageKey:
        model = ctx.target["model"]
        if model.get("generator"):
            from trtmake.models import GENERATOR_VERSION

            gen = model["generator"]
            return StageKey(self.name, self.version, config={
                "generator": gen, "params": model.get("generator_params") or {},
                "generator_version": GENERATOR_VERSION.get(gen, 0)}, toolchain=_versions("onnx"))
        if model.get("export"):
            from trtmake.stages.export import export_key

            return export_key(ctx, self)
        path = ctx.target.path(model["path"])
        if not path.is_file():
            raise UserError(f"model.path: {path} does not exist; point model.path at an .onnx file")
        digest = ctx.cache.stat.digest(path)
        inputs = {"onnx": digest}
        for rel in self._external_names(ctx, path, digest):
            ext = path.parent / rel
            if not ext.is_file():
                raise UserError(f"model.path: {path.name} references external data '{rel}', which is "
                                f"missing next to it ({ext}); copy it there or re-export the model")
            inputs[f"external/{rel}"] = ctx.cache.stat.digest(ext)
        return StageKey(self.name, self.version, config={}, inputs=inputs)

    def _external_names(self, ctx: Context, path: Path, digest: str) -> list[str]:
        """External-data file names, remembered per ONNX digest so an unchanged model is not parsed."""
        index_key = digest_json({"external-data-index": digest})
        record = ctx.cache.get_action(index_key)
        if record is not None:
            return record["data"]["external"]
        from trtmake.onnx_info import external_files, load_graph

        graph = load_graph(path)
        ctx.data["__source_graph"] = {"path": path, "graph": graph}  # run() parses it once, not twice
        names = external_files(graph, path)
        # remembered only once the source stage succeeds: a bad model leaves nothing in the cache
        ctx.pending[index_key] = {"stage": "index", "outputs": {}, "data": {"external": names}}
        return names

    def run(self, ctx: Context, key: StageKey, workdir: Path) -> StageOutput:
        from trtmake.onnx_info import check_opset, check_supported_dtypes, describe, load_graph
        from trtmake.stages.build import check_target_profile

        model = ctx.target["model"]
        files: dict[str, Path] = {}
        extra: dict[str, Any] = {}
        if model.get("generator"):
            from trtmake.models import generate

            path = workdir / "model.onnx"
            generate(model["generator"], dict(model.get("generator_params") or {}), path)
            files["onnx"] = path
        elif model.get("export"):
            from trtmake.stages.export import run_export

            path, extra = run_export(ctx, workdir)
            files["onnx"] = path
        else:
            path = ctx.target.path(model["path"])
        key_name = "model.path" if model.get("path") else "model"
        parsed = ctx.data.pop("__source_graph", None)
        graph = parsed["graph"] if parsed and parsed["path"] == path else load_graph(path, key_name)
        _check_model(path)
        info = describe(graph)
        shown = path.name if model.get("path") else model.get("name") or path.name
        check_supported_dtypes(info, key_name, shown)
        check_opset(info, key_name, shown)
        check_target_profile(ctx, info)  # before publishing: a model the profile contradicts adds nothing to the cache
        return StageOutput(files=files, data={**info, **extra})

    def accept(self, ctx: Context, record: dict[str, Any]) -> None:
        super().accept(ctx, record)
        for index_key, index in ctx.pending.items():
            ctx.cache.put_action(index_key, index)
        ctx.pending.clear()
        if "source.onnx" in ctx.artifacts:
            ctx.artifacts["source"] = ctx.artifacts.pop("source.onnx")
        else:
            model = ctx.target["model"]
            inputs = record["components"]["inputs"]
            digest = inputs["onnx"] if len(inputs) == 1 else digest_json(inputs)
            ctx.artifacts["source"] = Artifact(digest, ctx.target.path(model["path"]))


def _check_model(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise UserError(f"model: {path.name} fails the ONNX checker: {first}") from None
