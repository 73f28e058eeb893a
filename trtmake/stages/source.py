"""source: the ONNX graph (plus every external-data file), from a path, a generator or an export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.cache import ActionRecord
from trtmake.datasets import synthetic_batch
from trtmake.errors import UserError, first_line
from trtmake.hashing import digest_json
from trtmake.heavy import lazy_import
from trtmake.keys import StageKey, toolchain_versions
from trtmake.models import GENERATOR_VERSION, generate
from trtmake.normalize import NORMALIZE_VERSION, normalize, wanted_opset
from trtmake.onnx_info import check_opset, check_supported_dtypes, describe, external_files, input_specs, load_graph
from trtmake.ort_check import onnxruntime_refuses
from trtmake.profiles import model_profiles
from trtmake.stages.base import Artifact, Stage, StageInput, StageOutput

export = lazy_import("trtmake.export")


class SourceStage(Stage):
    name = "source"
    version = 2
    params = ("model", "precision.mode", "precision.per_channel", "profile")

    def key(self, inp: StageInput) -> StageKey:
        model, ctx = inp.params["model"], inp.ctx
        if model.get("generator"):
            gen = model["generator"]
            return StageKey(self.name, self.version, config={
                "generator": gen, "params": model.get("generator_params") or {},
                "generator_version": GENERATOR_VERSION.get(gen, 0)}, toolchain=toolchain_versions("onnx"))
        if model.get("export"):
            parts = export.export_key_inputs(_export_spec(inp), digest=ctx.cache.stat.digest)
            return StageKey(self.name, self.version, config={"export": parts["config"]},
                            inputs=parts["inputs"], toolchain=parts["toolchain"])
        path = ctx.path(model["path"])
        if not path.is_file():
            raise UserError(f"model.path: {path} does not exist; point model.path at an .onnx file")
        digest = ctx.cache.stat.digest(path)
        inputs = {"onnx": digest}
        index = _index(inp, path, digest)
        for rel in index["external"]:
            ext = path.parent / rel
            if not ext.is_file():
                raise UserError(f"model.path: {path.name} references external data '{rel}', which is "
                                f"missing next to it ({ext}); copy it there or re-export the model")
            inputs[f"external/{rel}"] = ctx.cache.stat.digest(ext)
        config: dict[str, Any] = {"normalize": NORMALIZE_VERSION}
        opset = wanted_opset(index["opset"], inp.params["precision"])
        if opset:
            config["opset"] = opset
        return StageKey(self.name, self.version, config=config, inputs=inputs, toolchain=toolchain_versions("onnx"))

    def run(self, inp: StageInput, key: StageKey, workdir: Path) -> StageOutput:
        model, ctx = inp.params["model"], inp.ctx
        files: dict[str, Path] = {}
        extra: dict[str, Any] = {}
        if model.get("generator"):
            path = files["onnx"] = workdir / "model.onnx"
            generate(model["generator"], dict(model.get("generator_params") or {}), path)
        elif model.get("export"):
            path = files["onnx"] = workdir / "model.onnx"
            extra = {"export": export.export_summary(export.export_onnx(_export_spec(inp), path))}
        else:
            path = ctx.path(model["path"])
        key_name = "model.path" if model.get("path") else "model"
        parsed, ctx.source_graph = ctx.source_graph, None
        graph = parsed[1] if parsed and parsed[0] == path else load_graph(path, key_name)
        _check_model(path)
        shown = path.name if model.get("path") else model.get("name") or path.name
        check_supported_dtypes(describe(graph), key_name, shown)
        if model.get("path"):  # a user's file: normalized into the cache (trtmake/normalize.py)
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
        profiles = model_profiles(inp.params["profile"], input_specs(info), shown)
        feeds = synthetic_batch(input_specs(info), profiles[0].shapes_at("opt"))
        why = onnxruntime_refuses(path, feeds)
        if why:
            raise UserError(f"{key_name}: {shown} is not a model onnxruntime accepts ({why}); fix or re-export it")
        return StageOutput(files=files, data={**info, **extra})

    def accept(self, inp: StageInput, record: ActionRecord) -> None:
        super().accept(inp, record)
        ctx = inp.ctx
        for index in ctx.pending:
            ctx.cache.put_action(index)
        ctx.pending.clear()
        if "source.onnx" in ctx.artifacts:
            ctx.artifacts["source"] = ctx.artifacts.pop("source.onnx")
        else:
            inputs = record.components["inputs"]
            digest = inputs["onnx"] if len(inputs) == 1 else digest_json(inputs)
            ctx.artifacts["source"] = Artifact(digest, ctx.path(inp.params["model"]["path"]))

    def check(self, inp: StageInput) -> None:
        """The target's profiles (static inputs filled in from the model) against the model, also
        after a cache hit (the source may be another target's); downstream stages read them from ctx."""
        model = inp.params["model"]
        shown = Path(model["path"]).name if model.get("path") else model["name"]
        profiles = model_profiles(inp.params["profile"], input_specs(inp.ctx.data[self.name]), shown)
        inp.ctx.profiles, inp.ctx.profile = profiles, profiles[0]


def _export_spec(inp: StageInput):
    return export.ExportSpec.from_config(inp.params["model"]["export"], key="model.export", root=inp.ctx.root)


def _index(inp: StageInput, path: Path, digest: str) -> dict[str, Any]:
    """External-data file names and the opset, remembered per ONNX digest so an unchanged model
    is not parsed."""
    ctx = inp.ctx
    index_key = digest_json({"source-index": digest})
    record = ctx.cache.get_record(index_key)
    if record is not None:
        return record.data
    graph = load_graph(path)
    ctx.source_graph = (path, graph)  # run() parses it once, not twice
    index = {"external": external_files(graph, path), "opset": describe(graph)["opset"]}
    # remembered only once the source stage succeeds: a bad model leaves nothing in the cache
    ctx.pending.append(ActionRecord(key=index_key, outputs={}, stage="index", data=index))
    return index


def _check_model(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise UserError(f"model: {path.name} fails the ONNX checker: {first_line(exc)}") from None
