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
    version = 2

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
        index = self._index(ctx, path, digest)
        for rel in index["external"]:
            ext = path.parent / rel
            if not ext.is_file():
                raise UserError(f"model.path: {path.name} references external data '{rel}', which is "
                                f"missing next to it ({ext}); copy it there or re-export the model")
            inputs[f"external/{rel}"] = ctx.cache.stat.digest(ext)
        from trtmake.normalize import NORMALIZE_VERSION, wanted_opset

        config: dict[str, Any] = {"normalize": NORMALIZE_VERSION}
        opset = wanted_opset(index["opset"], ctx.target["precision"])
        if opset:
            config["opset"] = opset
        return StageKey(self.name, self.version, config=config, inputs=inputs, toolchain=_versions("onnx"))

    def _index(self, ctx: Context, path: Path, digest: str) -> dict[str, Any]:
        """External-data file names and the opset, remembered per ONNX digest so an unchanged
        model is not parsed."""
        index_key = digest_json({"source-index": digest})
        record = ctx.cache.get_action(index_key)
        if record is not None:
            return record["data"]
        from trtmake.onnx_info import describe, external_files, load_graph

        graph = load_graph(path)
        ctx.data["__source_graph"] = {"path": path, "graph": graph}  # run() parses it once, not twice
        index = {"external": external_files(graph, path), "opset": describe(graph)["opset"]}
        # remembered only once the source stage succeeds: a bad model leaves nothing in the cache
        ctx.pending[index_key] = {"stage": "index", "outputs": {}, "data": index}
        return index

    def run(self, ctx: Context, key: StageKey, workdir: Path) -> StageOutput:
        from trtmake.onnx_info import check_opset, check_supported_dtypes, describe, external_files, load_graph

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
        shown = path.name if model.get("path") else model.get("name") or path.name
        check_supported_dtypes(describe(graph), key_name, shown)
        if model.get("path"):  # a user's file: normalized into the cache (trtmake/normalize.py)
            from trtmake.normalize import normalize

            out = workdir / "model.onnx"
            done = normalize(graph, out, opset=key.config.get("opset"),
                             external=bool(external_files(graph, path)))
            if done.pop("rewritten"):
                files["onnx"] = path = out
                graph = load_graph(out, key_name)
            extra["normalized"] = done
        info = describe(graph)
        check_opset(info, key_name, shown)
        # before publishing: a model the profile contradicts, or onnxruntime refuses, adds nothing to the cache
        _check_profile(ctx, info, shown)
        _check_runs(ctx, path, info, key_name, shown)
        return StageOutput(files=files, data={**info, **extra})

    def accept(self, ctx: Context, record: dict[str, Any]) -> None:
        super().accept(ctx, record)
        if ctx.target["model"].get("path"):  # a cached source under another profile: named by its file
            _check_profile(ctx, record["data"], Path(ctx.target["model"]["path"]).name)
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


def _check_profile(ctx: Context, info: dict[str, Any], shown: str) -> None:
    from trtmake.onnx_info import input_specs
    from trtmake.profiles import check_profile
    from trtmake.stages.build import target_profile

    check_profile(target_profile(ctx, info), input_specs(info), shown)


def _check_runs(ctx: Context, path: Path, info: dict[str, Any], key_name: str, shown: str) -> None:
    """onnxruntime loads the graph and runs it once at the profile's opt shapes."""
    from trtmake.datasets import synthetic_batch
    from trtmake.onnx_info import input_specs
    from trtmake.ort_check import onnxruntime_refuses
    from trtmake.stages.build import target_profile

    feeds = synthetic_batch(input_specs(info), target_profile(ctx, info).shapes_at("opt"))
    why = onnxruntime_refuses(path, feeds)
    if why:
        raise UserError(f"{key_name}: {shown} is not a model onnxruntime accepts ({why}); fix or re-export it")


def _check_model(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        from trtmake.normalize import first_line

        raise UserError(f"model: {path.name} fails the ONNX checker: {first_line(exc)}") from None
