"""Typed configuration: one dataclass per component, loaded strictly from ``params.yaml``.

Loading rejects unknown keys and wrong types with a one-line :class:`ConfigError` that names
the offending key (``train.lr: expected float, got str``). This module imports nothing else of
``qfm`` but the knob table (:mod:`qfm.knobs`), so every other module may depend on it.

Its defaults are ``params.yaml``'s (tests/system/test_config.py compares them): a Python user
of ``qfm.config`` gets the pipeline's model. A tunable knob's default is the knob table's.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from qfm.knobs import AUTO, BY_KEY, auto_keys


class ConfigError(ValueError):
    """A configuration value is unknown, missing or of the wrong type."""


@dataclass
class SharedConfig:
    """Settings every stage shares."""

    seed: int = 0  # global seed: world generation, splits, initialisation, sampling
    data_root: str = "data"  # root of the data sets (QFM_DATA overrides)
    smoke: bool = False  # tiny slice of data, one short epoch (tests, CI)


@dataclass
class WorldConfig:
    """The embedded default: contents cut from scikit-image photos, distorted, pseudo-MOS."""

    seed: int = 0  # seeds tile choice, distortion parameters and the splits
    photos: list[str] = field(default_factory=lambda: [
        "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
        "immunohistochemistry", "retina", "stereo_motorcycle", "china", "flower"])
    heldout_photos: list[str] = field(default_factory=lambda: ["astronaut", "coffee"])
    tile_rows: int = 4  # tile side = max(size, short side // tile_rows)
    contents_per_photo: int = 16  # at most this many non-overlapping tiles per photo
    size: int = 128  # side of every stored image (pixels)
    distortions: list[str] = field(default_factory=lambda: [
        "gaussian_blur", "motion_blur", "gaussian_noise", "jpeg", "contrast",
        "saturation", "pixelate"])
    levels: int = 5  # severity levels per distortion
    unlabelled_per_content: int = 3  # extra distorted images without MOS (for distillation)
    split: list[float] = field(default_factory=lambda: [0.70, 0.15, 0.15])  # train/val/test
    splits: int = 10  # seeded content splits written (seed k = split k)
    spurious: float = 0.0  # semantic-noise knob in [0, 1]: training part only


@dataclass
class ModelConfig:
    """Backbone → (gate) → attention-panel decoder → score."""

    backbone: str = "tf_efficientnet_lite0"  # any timm model name
    img_size: int = 128  # crop side fed to the backbone
    weights: str = "efficientnet_lite0"  # none | upstream | efficientnet_lite0 (shipped
    # ImageNet, `qfm weights`) | a timm-format file
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # to timm.create_model
    tokens: str = "multiscale"  # multiscale (every stage, pooled) | last (DEIQT: last map)
    grid: int = 3  # token grid of multiscale tokens
    dim: int = 64  # decoder width; 0 = the backbone's width (DEIQT), else a linear projection
    heads: int = 4  # decoder attention heads
    queries: int = 6  # learned quality queries
    mlp_ratio: float = 4.0  # decoder FFN width factor
    dropout: float = 0.0  # decoder dropout
    gate: bool = False  # adaptive feature selection (QFM-IQM step 1)
    # what `gate: true` inserts: adaptive (the method) | static | adapter (capacity controls)
    gate_kind: str = "adaptive"
    gate_hidden: float = 0.0625  # gate MLP hidden width as a fraction of the channels


@dataclass
class UpstreamConfig:
    """Upstream semantic pre-training: tell contents apart on pristine crops."""

    steps: int = 300  # optimisation steps
    batch_size: int = 64  # images per step
    lr: float = 2e-3  # AdamW peak learning rate (cosine decay)
    weight_decay: float = 0.05  # AdamW weight decay


@dataclass
class QFMConfig:
    """Quality-aware matching and adversarial semantic noise (QFM-IQM steps 2-4)."""

    enabled: bool = False  # add L_qfm to the loss
    tau: float = BY_KEY["qfm.tau"].default  # max |y_i - y_j| for a partner (normalised)
    rho: float = BY_KEY["qfm.rho"].default  # perturbation radius, relative to the feature norm
    lambda_c: float = 1.0  # weight of the consistency term |h(F+e) - h(F)|
    lambda_qfm: float = BY_KEY["qfm.lambda_qfm"].default  # weight of L_qfm in the loss
    perturb: str = "sign"  # sign | sam
    partner: str = "quality"  # quality (the method) | random (control: ignores quality)
    direction: str = "semantic"  # semantic (partner − anchor) | random (control)
    sampler: bool = False  # quality-stratified batches so most anchors find a partner
    anchors: int = 16  # at most this many anchors per batch take the QFM term (0 = all)


@dataclass
class DistillConfig:
    """Distillation that expands the data set (QFM-IQM step 5)."""

    enabled: bool = False  # train a teacher, pseudo-label an expanded set, train a student
    lambda_kd: float = BY_KEY["distill.lambda_kd"].default  # weight of the distillation term
    views: int = -1  # extra views of each training image (-1 = auto: 2 with nothing unlabelled)
    # unlabelled images: "" none | "world" the embedded default's | "auto" the default's when
    # training on it, none on a real data set | a folder of images
    unlabelled: str = "auto"
    teacher_backbone: str = ""  # "" = same as the student


@dataclass
class TrainConfig:
    """Optimisation, schedule and evaluation of one IQA training run."""

    dataset: str = "world"  # world | a real data set name (see qfm.data.readers)
    split: int = 0  # which seeded split file (-1 = the official split, KonIQ/FLIVE)
    epochs: int = 30  # passes over the training split
    batch_size: int = 32  # images per step
    lr: float = BY_KEY["train.lr"].default  # AdamW peak learning rate
    weight_decay: float = 0.05  # AdamW weight decay (not on norms, biases, embeddings)
    warmup_epochs: float = 1.0  # linear warm-up length
    step_epochs: int = 100  # multiply the learning rate by gamma every step_epochs
    gamma: float = 0.3  # step decay factor
    clip_grad: float = 5.0  # gradient norm clip (0 = off)
    amp: bool = True  # bf16 autocast on GPU (ignored on CPU)
    eval_every: int = 1  # validate every n epochs (and after the last)
    patience: int = 5  # stop after this many epochs without a better validation SRCC (0 = off)
    test_crops: int = 5  # deterministic crops averaged at test time
    workers: int = 0  # data-loader worker processes
    cache: bool = True  # keep decoded images in memory (small data sets)
    max_images: int = 0  # use only the first n images of each split (0 = all; smoke)
    device: str = "auto"  # auto | cpu | cuda
    checkpoint_every: int = 1  # save the resumable state every n epochs


@dataclass
class RunConfig:
    """Everything one training run needs; the sections of ``params.yaml`` it reads."""

    shared: SharedConfig = field(default_factory=SharedConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    qfm: QFMConfig = field(default_factory=QFMConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _check(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` converted to ``tp`` where lossless (int → float), else raise."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _check(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {tp}, got {type(value).__name__} {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        (arg,) = get_args(tp) or (Any,)
        return [_check(v, arg, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected int, got bool {value!r}")
    if not isinstance(value, tp):
        raise ConfigError(
            f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types.

    Args:
        cls: a dataclass type.
        data: mapping of field name → value (missing fields keep their defaults).
        prefix: dotted key prefix used in error messages.
    Returns:
        An instance of ``cls``.
    """
    where = prefix or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{prefix + '.' if prefix else ''}{unknown[0]}: unknown key "
                          f"(known: {', '.join(sorted(names))})")
    kwargs = {k: _check(v, hints[k], f"{prefix + '.' if prefix else ''}{k}")
              for k, v in data.items()}
    return cls(**kwargs)


def override(cfg: Any, dotted: dict[str, Any]) -> Any:
    """A copy of ``cfg`` with ``{"train.lr": 1e-3, ...}`` applied, type-checked (auto: default)."""
    data = to_dict(cfg)
    for key, value in dotted.items():
        value = BY_KEY[key].default if value == AUTO and key in BY_KEY else value
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"{key}: unknown key")
            node = node[p]
        if parts[-1] not in node:
            raise ConfigError(f"{key}: unknown key")
        node[parts[-1]] = value
    return from_dict(type(cfg), data)


def flatten(nested: dict, prefix: str = "") -> dict[str, Any]:
    """``{"qfm": {"tau": 0.02}}`` → ``{"qfm.tau": 0.02}`` (what :func:`override` takes)."""
    out: dict[str, Any] = {}
    for k, v in (nested or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and key.count(".") == 0:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def parse_sets(items: typing.Iterable[str] | None) -> dict[str, Any]:
    """``["train.lr=1e-3", ...]`` (``--set`` arguments) → ``{"train.lr": 0.001}`` for override."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE (e.g. train.lr=1e-3)")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, JSON-serialisable copy of a config dataclass."""
    return dataclasses.asdict(cfg)


# Top-level sections of params.yaml besides RunConfig's: the variants, one per stage with
# parameters (tests/system/test_pipeline.py checks the list against dvc.yaml).
PIPELINE_SECTIONS = ("variants", "study", "figures", "performance", "protocol", "livec",
                     "finetune", "whole")


# Knobs the study tunes on validation (stage tune) are qfm.knobs.KNOBS. In params.yaml a number
# is fixed (the tuner skips it: `dvc exp run -S qfm.rho=0.1`); `auto` is tuned (elsewhere: the
# knob's default).


def read_params(path: str | Path) -> dict:
    """The raw mapping of a params file: the one reader of ``params.yaml``.

    A missing file, a YAML syntax error or a non-mapping top level is a one-line
    :class:`ConfigError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        with path.open() as fh:
            raw = yaml.safe_load(fh) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{path}: not valid YAML: {what}{where}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return raw


def load_params(path: str | Path, sections: typing.Iterable[str] | None = None) -> RunConfig:
    """Read ``params.yaml`` into a :class:`RunConfig`.

    Every top-level section must be a field of :class:`RunConfig` or a pipeline section
    (:data:`PIPELINE_SECTIONS`); anything else is a typo and is refused in one line naming the
    file, as is a YAML syntax error.

    Args:
        path: the YAML file.
        sections: the other sections allowed (default: :data:`PIPELINE_SECTIONS`).
    Returns:
        The typed run configuration.
    """
    path = Path(path)
    raw = read_params(path)
    known = {f.name for f in dataclasses.fields(RunConfig)}
    other = set(PIPELINE_SECTIONS if sections is None else sections)
    extra = sorted(set(map(str, raw)) - known - other)
    if extra:
        raise ConfigError(f"{path}: {extra[0]}: unknown section (known: "
                          f"{', '.join(sorted(known | other))})")
    try:
        auto = {tuple(k.split(".")) for k in auto_keys(raw)}  # → the dataclass defaults
        raw = {k: {n: x for n, x in v.items() if (k, n) not in auto} if isinstance(v, dict)
               else v for k, v in raw.items() if k in known}
        return from_dict(RunConfig, raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def run_config(params: str | Path = "params.yaml", sets: typing.Iterable[str] | None = None
               ) -> RunConfig:
    """The configuration of a command: ``params`` (defaults when the default file is absent)
    with ``--set section.key=value`` overrides applied."""
    params = Path(params)
    cfg = load_params(params) if params.is_file() or str(params) != "params.yaml" \
        else RunConfig()
    return override(cfg, parse_sets(sets))


STUDY_KEYS = ("teacher", "match_steps")  # variant keys the study reads, not RunConfig


def split_variant(entry: dict) -> tuple[dict, dict]:
    """A ``variants`` entry → (RunConfig overrides, study-only keys)."""
    entry = dict(entry or {})
    return {k: v for k, v in entry.items() if k not in STUDY_KEYS}, \
        {k: entry[k] for k in STUDY_KEYS if k in entry}
