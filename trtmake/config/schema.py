"""Structured configs: every recipe group is typed, so an unknown key or a bad value is an
error that names the key and, for enums, lists the valid choices."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional


class PrecisionMode(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"  # no bf16: the onnxruntime CPU backend has no bf16 kernels


class CalibrationMethod(str, Enum):
    entropy = "entropy"
    minmax = "minmax"
    percentile = "percentile"


class DataKind(str, Enum):
    synthetic = "synthetic"
    npy = "npy"
    images = "images"
    skimage = "skimage"  # real photographs shipped in scikit-image (random crops), pip-installable
    text = "text"  # English sentences of the standard library's pydoc_data, tokenized (trtmake.text_dataset)


class Distribution(str, Enum):
    normal = "normal"
    uniform = "uniform"


class BackendName(str, Enum):
    auto = "auto"
    onnxruntime = "onnxruntime"
    tensorrt = "tensorrt"


class OrtOptLevel(str, Enum):
    disable = "disable"
    basic = "basic"
    extended = "extended"
    all = "all"


@dataclass
class ExportConfig:
    """PyTorch -> ONNX export (optional `torch` extra)."""

    factory: str = "???"
    factory_args: Dict[str, Any] = field(default_factory=dict)
    weights: Optional[str] = None
    weights_from: Optional[str] = None
    inputs: List[Dict[str, Any]] = field(default_factory=list)
    output_names: List[str] = field(default_factory=list)
    dynamic_axes: Dict[str, Any] = field(default_factory=dict)
    opset: int = 17
    seed: int = 0


@dataclass
class ModelConfig:
    """Where the ONNX graph comes from: exactly one of path, generator, export."""

    name: Optional[str] = None  # None: the file's stem (model.path)
    path: Optional[str] = None
    generator: Optional[str] = None
    generator_params: Dict[str, Any] = field(default_factory=dict)
    export: Optional[ExportConfig] = None
    synthetic_weights: bool = False
    description: str = ""


@dataclass
class AutoExcludeConfig:
    enabled: bool = False
    metric: str = "top1_agreement"
    target: float = 0.99
    max_layers: int = 8
    strategy: str = "leave_one_out"
    max_candidates: int = 24


@dataclass
class PrecisionConfig:
    mode: PrecisionMode = PrecisionMode.fp32
    keep_io_types: bool = True
    op_block_list: List[str] = field(default_factory=list)
    node_block_list: List[str] = field(default_factory=list)
    exclude_nodes: List[str] = field(default_factory=list)
    exclude_op_types: List[str] = field(default_factory=list)
    per_channel: bool = True
    auto_exclude: AutoExcludeConfig = field(default_factory=AutoExcludeConfig)
    quantize_gemm: bool = False  # int8, TensorRT dialect: also quantize matrix-vector Gemm/MatMul
    dialect: str = "auto"  # int8 QDQ form: auto (the backend's), tensorrt or onnxruntime


@dataclass
class CalibratorConfig:
    method: CalibrationMethod = CalibrationMethod.entropy
    percentile: float = 99.999
    num_samples: int = 64
    batch_size: int = 8
    num_bins: int = 2048
    num_quantized_bins: int = 128


@dataclass
class PreprocessConfig:
    color: str = "RGB"
    resize: Optional[int] = None
    center_crop: Optional[int] = None
    layout: str = "NCHW"
    scale: float = 1.0
    mean: Optional[List[float]] = None
    std: Optional[List[float]] = None
    dtype: str = "float32"


@dataclass
class DataSourceConfig:
    kind: DataKind = DataKind.synthetic
    path: Optional[str] = None
    seed: int = 0
    distribution: Distribution = Distribution.normal
    low: float = 0.0
    high: float = 1.0
    # integer inputs (token ids, indices): values drawn from [low, high); None: the vocabulary
    # size when the model declares one (an embedding Gather's table), else [0, 100)
    int_range: Optional[List[int]] = None
    # kind text: dotted path of a callable returning the folder of the model's tokenizer.json
    tokenizer: Optional[str] = None
    # no sample count here: calibrator.num_samples and validation.num_samples say how many are used
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)


@dataclass
class DatasetConfig:
    name: str = "synthetic"
    calibration: DataSourceConfig = field(default_factory=lambda: DataSourceConfig(seed=1))
    validation: DataSourceConfig = field(default_factory=lambda: DataSourceConfig(seed=2))
    # where precision.auto_exclude measures (never the validation samples); None: derived
    selection: Optional[DataSourceConfig] = None
    # [low, high) of synthetic integer inputs in every split that sets no int_range of its own
    int_range: Optional[List[int]] = None


@dataclass
class BatchRange:
    """min/opt/max of a dynamic batch dim (axis 0) of an input no profile entry declares."""

    min: int = 1
    opt: int = 1
    max: int = 8


@dataclass
class ProfileInput:
    """One input's shape range; a list entry, so any input name (with '/', ':', '.') can be written."""

    name: str = "???"
    min: List[int] = field(default_factory=list)
    opt: List[int] = field(default_factory=list)
    max: List[int] = field(default_factory=list)


@dataclass
class NamedProfile:
    """One of several optimization profiles of one engine (ProfileConfig.profiles)."""

    shapes: Dict[str, Any] = field(default_factory=dict)
    inputs: List[ProfileInput] = field(default_factory=list)
    batch: BatchRange = field(default_factory=BatchRange)


@dataclass
class ProfileConfig:
    name: str = "default"
    shapes: Dict[str, Any] = field(default_factory=dict)
    inputs: List[ProfileInput] = field(default_factory=list)
    batch: BatchRange = field(default_factory=BatchRange)
    # several named profiles built into one engine, in this order (TensorRT's profile 0, 1, ...),
    # each validated at validation.shapes as `<name>/<point>`; when set, shapes and inputs stay empty
    profiles: Dict[str, NamedProfile] = field(default_factory=dict)


@dataclass
class AssertionConfig:
    metric: str = "???"
    op: str = ">="  # one of <, <=, >, >=, == (checked in trtmake.assertions)
    value: float = 0.0
    shape: str = "opt"


@dataclass
class SweepConfig:
    """Shapes to time beyond the validation points: every (batch, seq) of the grid, each inside
    some profile (else a planning error). seq sets axis 1 of the inputs whose axis 1 is dynamic
    in the profile (a sequence length); an empty list keeps that axis at the profile's opt."""

    batch: List[int] = field(default_factory=list)
    seq: List[int] = field(default_factory=list)


@dataclass
class ValidationConfig:
    warmup: int = 5
    iters: int = 30
    num_samples: int = 16
    shapes: List[str] = field(default_factory=lambda: ["opt"])
    class_axis: Optional[int] = None  # None: the only axis longer than 1 (after squeezing 1-dims)
    # retrieval_agreement: how many nearest neighbours (cosine) must match FP32's; None: the metric
    # is not computed (embedding recipes set it)
    retrieval_k: Optional[int] = None
    # leave out of retrieval_agreement the items whose k-th and (k+1)-th neighbours FP32 itself
    # separates by less than this cosine gap (near ties flip under any arithmetic); 0: every item
    retrieval_margin: float = 0.0
    # concurrent executions to measure samples/s with (metrics.streams), at the first profile's
    # opt shapes; empty: not measured (metrics.throughput is one stream already)
    streams: List[int] = field(default_factory=list)
    sweep: SweepConfig = field(default_factory=SweepConfig)  # empty lists: no sweep
    assertions: List[AssertionConfig] = field(default_factory=list)
    max_latency_p50_ms: Optional[float] = None
    max_latency_p99_ms: Optional[float] = None
    min_throughput: Optional[float] = None
    min_top1_agreement: Optional[float] = None
    min_cosine_similarity: Optional[float] = None
    max_abs_error: Optional[float] = None
    # a validate record fetched from the remote cache (same key: same engine, data, device
    # fingerprint and host name) is accepted instead of measuring here; off: this runner re-validates
    trust_remote: bool = False
    max_memory_mb: Optional[float] = None  # metrics.memory.total_mb: weights + working memory


# The backends' options, typed; None: unset. Their defaults live in each backend's options class
# (backends/onnxruntime.py OrtOptions, backends/tensorrt/options.py TrtOptions), parsed once per target.
@dataclass
class OrtOptions:
    graph_optimization_level: Optional[OrtOptLevel] = None
    intra_op_num_threads: Optional[int] = None
    execution_provider: Optional[str] = None
    int8_weights: Optional[str] = None  # auto, int8 or uint8


@dataclass
class TrtOptions:
    workspace_mb: Optional[int] = None
    builder_optimization_level: Optional[int] = None
    timing_cache: Optional[str] = None
    hardware_compatibility_level: Optional[str] = None
    version_compatible: Optional[bool] = None
    tiling_optimization_level: Optional[str] = None
    max_aux_streams: Optional[int] = None
    device: Optional[int] = None
    max_builds_per_gpu: Optional[int] = None


@dataclass
class BackendConfig:
    name: BackendName = BackendName.auto
    onnxruntime: OrtOptions = field(default_factory=OrtOptions)
    tensorrt: TrtOptions = field(default_factory=TrtOptions)


@dataclass
class TargetMeta:
    name: Optional[str] = "${hydra:runtime.choices.target}"  # None: named after the model
    description: str = ""


@dataclass
class RemoteCacheConfig:
    """A remote cache shared by a fleet (trtmake.remote): any fsspec URL (s3://bucket/prefix, gs://,
    az://, a folder, read-only http(s)://). Credentials come the provider's standard way (env,
    profile, instance role), never from here. mode: read-write, read-only or off (checked in
    trtmake.remote.open_remote). options: fsspec storage options, e.g. client_kwargs.endpoint_url."""

    url: Optional[str] = "${oc.env:TRTMAKE_REMOTE,null}"
    mode: str = "read-write"
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class CacheConfig:
    dir: str = "${oc.env:TRTMAKE_CACHE,cache}"
    lock_timeout_s: float = 3600.0
    remote: RemoteCacheConfig = field(default_factory=RemoteCacheConfig)


@dataclass
class ReportConfig:
    path: str = "build/report.json"
    junit: Optional[str] = None
    html: Optional[str] = None  # also write one self-contained HTML page (trtmake.report_html)


@dataclass
class Config:
    target: TargetMeta = field(default_factory=TargetMeta)
    model: ModelConfig = field(default_factory=ModelConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    calibrator: CalibratorConfig = field(default_factory=CalibratorConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    revalidate: bool = False
    show: Optional[str] = None


def register() -> None:
    """Make the schema known to Hydra (conf/config.yaml's defaults list names `trtmake_schema`);
    called before anything composes."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="trtmake_schema", node=Config)
