"""The study: variants × paired seeds on cached upstream tokens (the world, or a real data set).

One run = one variant (a ``variants`` entry of ``params.yaml``) on one seed (= content split
and initialisation), trained on the frozen upstream's cached tokens (:mod:`qfm.study.tokens`)
with the engine's :func:`~qfm.core.engine.train_and_select`; selection on validation only,
test and held-out photos scored once, at the selected epoch. Study-only variant keys:
``teacher: <variant>`` (a student: the same-seed run of ``<variant>`` pseudo-labels the
unlabelled images of its *training* contents), ``match_steps: true`` (a student's steps).
Runs fan out over ``workers`` processes (one thread each), seeded: the fan-out changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qfm.config import (ConfigError, ModelConfig, RunConfig, flatten, from_dict, override,
                        split_variant, to_dict)
from qfm.data.splits import read_split
from qfm.data.world import spurious_train
from qfm.core.distill import DistillObjective
from qfm.core.engine import (lr_factor, make_objective, param_groups, seed_everything,
                             train_and_select)
from qfm.study.tokens import FeatureBank
from qfm.core.metrics import correlations, noise_share, pair_arrays
from qfm.core.model import build_model
from qfm.core.tail import attach, scaled_groups
from qfm.study.batches import _batches, _flip, score

@dataclass
class RunSpec:
    """One run of the study: its name, configuration and study-only settings."""

    variant: str
    seed: int
    cfg: RunConfig
    spurious: float
    teacher: str = ""
    match_steps: bool = False
    split_table: pd.DataFrame | None = None  # ``image,split`` rows instead of split_<seed>.csv
    halve: bool = False  # the knob's half of the training part even at strength 0 (sweep)


def load_run_data(bank: FeatureBank, world: str, split: int, spurious: float, smoke: bool,
                  split_table: pd.DataFrame | None = None, halve: bool = False) -> dict:
    """Tokens and labels of one split's parts (training part under ``spurious``).

    Args:
        split_table: ``image,split`` rows to use instead of the world's ``split_<split>.csv``
            (the tuner's splits, :func:`qfm.study.stages.tuning_split`); ``split`` still seeds
            the spurious draw.
        halve: draw the knob's half of the training part at strength 0 too (the sweep's
            reference, the same size as its other strengths); else strength 0 trains on all.
    Returns:
        ``{part: (tokens (n, 1+N, C) float16, mos (n,), table)}`` for train, val, test,
        heldout, and ``unlabelled`` (tokens of the training contents' unlabelled images).
    """
    root = Path(world)
    table = pd.read_csv(root / "table.csv", dtype={"content": str})
    if split_table is None:
        parts = read_split(root / "splits" / f"split_{split}.csv", table)
    else:
        merged = table.merge(split_table[["image", "split"]], on="image", how="inner")
        parts = {p: merged[merged["split"] == p].drop(columns="split").reset_index(drop=True)
                 for p in dict.fromkeys(split_table["split"])}
    if spurious > 0 or halve:  # the knob keeps half of each photo's training images
        parts["train"] = spurious_train(parts["train"], spurious, split).reset_index(drop=True)
    extra = pd.read_csv(root / "unlabelled.csv", dtype={"content": str})
    parts["unlabelled"] = extra[extra["content"].isin(set(parts["train"]["content"]))] \
        .reset_index(drop=True).assign(mos=np.nan)
    for part in ("val", "test", "heldout"):  # a leak check that fails loudly
        if set(parts.get(part, pd.DataFrame({"content": []}))["content"]) & \
                set(parts["unlabelled"]["content"]):
            raise RuntimeError(f"split {split}: unlabelled images of {part} contents")
    out = {}
    for part, df in parts.items():
        if smoke:
            df = df.sample(min(64, len(df)), random_state=0).reset_index(drop=True)
        rows = bank.rows(df["image"])
        out[part] = (bank.tokens[rows], torch.tensor(df["mos"].to_numpy(), dtype=torch.float32),
                     df)
    return out


def train_run(spec: RunSpec, data: dict, width: int, teacher_state: dict | None = None,
              student_steps: int = 0, tail: dict | None = None) -> dict:
    """Train one run on cached tokens; select on validation; score test and held-out.

    Args:
        data: :func:`load_run_data`'s output; width: token width.
        teacher_state: the teacher's ``(model config, weights)`` (distilled students).
        student_steps: for ``match_steps``: the steps to take.
        tail: a trainable tail's layout (:mod:`qfm.core.tail`; cached packed rows) or None.
    Returns:
        Metrics, the validation curve, QFM diagnostics and the selected ``state``.
    """
    cfg, t = spec.cfg, spec.cfg.train
    seed_everything(spec.seed)
    tokens, mos, _ = data["train"]
    index = torch.arange(len(mos))
    objective = make_objective(cfg)
    # the student first: seed s gives it the initialisation of every other variant's seed-s run
    # (a teacher built before it would consume the generator); batches come from their own
    width = tail["width"] if tail else width
    model = build_model(cfg.model, width=width)
    if tail:  # the fine-tuning regime: the upstream's last stage(s) train too
        attach(model, tail, cfg.model)
    if spec.teacher:
        tcfg, tstate = teacher_state
        teacher = build_model(from_dict(ModelConfig, tcfg, "model"), width=width)
        if tail:
            attach(teacher, tail, cfg.model)
        teacher.load_state_dict(tstate)
        u_tokens = data["unlabelled"][0]
        pseudo = torch.tensor(score(teacher, u_tokens), dtype=torch.float32)
        tokens = torch.cat([tokens, u_tokens])
        mos = torch.cat([mos, pseudo])
        index = torch.cat([index, -1 - torch.arange(len(pseudo))])  # < 0: pseudo-labelled
        objective = DistillObjective(cfg.qfm, cfg.distill.lambda_kd, spec.seed)
    # fused: one kernel for every parameter (a small head's step is mostly optimizer overhead)
    opt = torch.optim.AdamW(scaled_groups(model, param_groups(model, t.weight_decay)),
                            lr=t.lr, fused=True)
    for g in opt.param_groups:
        g["initial_lr"] = t.lr * g["lr_scale"]
    per_epoch = max(len(mos) // t.batch_size, 1)
    epochs = 1 if cfg.shared.smoke else t.epochs
    if spec.match_steps and student_steps:
        epochs = max(epochs, math.ceil(student_steps / per_epoch))
    lr_fn = lambda s: lr_factor(s, per_epoch, t.warmup_epochs, t.step_epochs,  # noqa: E731
                                t.gamma)
    val_tokens, val_mos, _ = data["val"]

    def batches(epoch):
        gen = torch.Generator().manual_seed(spec.seed * 1000003 + epoch)
        return _batches(tokens, mos, index, t.batch_size, gen, _flip(model))

    def validate(epoch):
        return {"srcc": correlations(score(model, val_tokens), val_mos.numpy(),
                                     logistic=False)["srcc"]}

    t0 = time.perf_counter()
    history, best, best_state = train_and_select(
        model, opt, objective, epochs=epochs, batches=batches, validate=validate,
        steps_per_epoch=per_epoch, lr_fn=lr_fn, device=torch.device("cpu"),
        clip_grad=t.clip_grad, amp=False, eval_every=t.eval_every,
        patience=0 if spec.match_steps else t.patience)
    seconds = time.perf_counter() - t0
    curve = [h["val"]["srcc"] for h in history if "val" in h]
    logs_sum = {}
    for h in history:
        for k, v in h.items():
            if isinstance(v, float):
                logs_sum[k] = logs_sum.get(k, 0.0) + v
    model.load_state_dict(best_state)
    out = {"variant": spec.variant, "seed": spec.seed, "spurious": spec.spurious,
           "epochs": len(history), "max_epochs": epochs, "steps": len(history) * per_epoch,
           "best_epoch": best["epoch"], "stopped_early": len(history) < epochs,
           # the cap reached while validation still improved: training was too short
           "best_is_last": best["epoch"] == epochs - 1, "val_srcc": best["srcc"],
           "val_curve": curve, "seconds": seconds,
           "train_images": int(len(data["train"][1])), "pseudo_images":
               int(len(mos) - len(data["train"][1]))}
    for k in ("partner_rate", "candidates", "shift", "shift_rel"):
        if k in logs_sum:
            out[k] = logs_sum[k] / len(history)
    out.update(_knobs(spec))
    if "test" in data:  # (the tuner's splits have no test part)
        x, y, _ = data["test"]
        with torch.no_grad():
            model.eval()
            feats = model.features(x.float())  # the cached tokens, or the tail's
            emb = model.decoder.embed(model.select(feats)).numpy()
        out["share"] = noise_share(*pair_arrays(emb, y.numpy()))[0]
        out["share_upstream"] = noise_share(*pair_arrays(feats.mean(1).numpy(), y.numpy()))[0]
    for part in ("test", "heldout"):
        if part in data:
            x, y, _ = data[part]
            c = correlations(score(model, x), y.numpy())
            out[f"{part}_srcc"], out[f"{part}_plcc"] = c["srcc"], c["plcc_logistic"]
            out[f"{part}_plcc_raw"] = c["plcc"]
    out["state"] = best_state
    out["model_cfg"] = to_dict(cfg.model)
    return out


def _knobs(spec: RunSpec) -> dict:
    """The knobs a run trains with (the tuned or fixed values; None where a term is off)."""
    cfg, q = spec.cfg, spec.cfg.qfm
    return {"lr": cfg.train.lr, "rho": q.rho if q.enabled else None,
            "lambda_qfm": q.lambda_qfm if q.enabled else None,
            "tau": q.tau if q.enabled else None,
            "lambda_kd": cfg.distill.lambda_kd if spec.teacher else None}


def run_key(spec: RunSpec, teacher_key: str = "", steps: int = 0) -> str:
    """What decides a run's numbers. A QFM term with λ_qfm = 0 adds 0 × L_qfm to the loss: the
    same gradients, batches and initialisation as with QFM off (tested bit for bit), so its
    ``qfm`` section is written as off. Two specs with one key train identically: one run
    serves both (:func:`run_specs`)."""
    cfg = to_dict(spec.cfg)
    if not cfg["qfm"]["enabled"] or cfg["qfm"]["lambda_qfm"] == 0:
        cfg["qfm"] = {"enabled": False}
    split = "" if spec.split_table is None else spec.split_table.to_csv(index=False)
    text = json.dumps([cfg, spec.spurious, spec.halve, spec.match_steps, steps, teacher_key,
                       hashlib.sha1(split.encode()).hexdigest()], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _as(res: dict, spec: RunSpec) -> dict:
    """``res`` as ``spec``'s row: its own name and knobs, ``same_as`` the variant that ran."""
    if res["variant"] == spec.variant:
        return res
    drop = ("partner_rate", "candidates", "shift", "shift_rel")  # of no term that trained
    return {**{k: v for k, v in res.items() if k not in drop}, "variant": spec.variant,
            **_knobs(spec), "same_as": res.get("same_as", res["variant"])}


# -- fan-out -------------------------------------------------------------------------------
_BANK: dict = {}


def _worker_init(features_path: str) -> None:
    torch.set_num_threads(1)
    _BANK["bank"] = FeatureBank(features_path)


def _run_task(args) -> dict:
    spec, source, teacher_state, student_steps = args
    bank = _BANK["bank"]
    if isinstance(source, str):  # the world's folder
        data = load_run_data(bank, source, spec.seed, spec.spurious, spec.cfg.shared.smoke,
                             spec.split_table, spec.halve)
    else:  # a real data set (qfm.study.real.RealSource): its splits, its images' views
        data = source.load(bank, spec.seed, spec.cfg.shared.smoke, bool(spec.teacher),
                           spec.split_table)
    return train_run(spec, data, bank.width, teacher_state, student_steps,
                     bank.meta.get("tail"))


def run_specs(specs: list[RunSpec], features_path: str, world, workers: int = 2,
              progress: bool = True, given: dict | None = None,
              memo: dict | None = None) -> list[dict]:
    """Run every spec: plain runs first, then students (their teachers' weights passed on).
    Specs with one :func:`run_key` run once; the others' rows are that run's, under their own
    name and knobs, with ``same_as`` naming the variant that ran (e.g. every QFM variant when
    λ_qfm = 0 was chosen: each equals the gate-only run of its seed).

    Args:
        world: the world's folder (str), or a real data set's
            :class:`~qfm.study.real.RealSource`.
        given: runs at hand, ``{(variant, seed, spurious): result}`` (the tuner's teachers).
        memo: ``{run key: result}`` shared between calls (the tuner's trials); filled here.
    Returns:
        One metrics dict per spec, in the order given (``state`` kept).
    """
    done, memo = dict(given or {}), ({} if memo is None else memo)  # by (variant, seed, spurious)

    def fan(tasks):
        keyed, fresh = [], {}
        for a in tasks:
            s, _, _, steps = a
            k = run_key(s, done[(s.teacher, s.seed, s.spurious)].get("_key", s.teacher)
                        if s.teacher else "", steps)
            keyed.append(k)
            if k not in memo and k not in fresh:
                fresh[k] = a
        ran = []
        if fresh and workers <= 1:
            _worker_init(features_path)
            ran = [_run_task(a) for a in fresh.values()]
        elif fresh:
            with ProcessPoolExecutor(workers, initializer=_worker_init,
                                     initargs=(features_path,)) as pool:
                ran = list(pool.map(_run_task, fresh.values()))
        for k, res in zip(fresh, ran):
            memo[k] = dict(res, _key=k)
        return [_as(memo[k], a[0]) for k, a in zip(keyed, tasks)]

    key3 = lambda s: (s.variant, s.seed, s.spurious)  # noqa: E731
    out: dict[int, dict] = {}
    first = [i for i, s in enumerate(specs) if not s.teacher and not s.match_steps
             and key3(s) not in done]
    need = {key3(specs[i]) for i in first} | set(done)
    for s in specs:  # a teacher is a plain run of the same group, one per seed
        if s.teacher and ((s.teacher, s.seed, s.spurious) not in need or sum(
                key3(specs[i]) == (s.teacher, s.seed, s.spurious) for i in first) > 1):
            raise ConfigError(f"variants.{s.variant}.teacher: {s.teacher} must be run in the "
                              f"same group, once per seed")
    t0 = time.perf_counter()
    second, third = ([i for i, s in enumerate(specs) if getattr(s, a)]
                     for a in ("teacher", "match_steps"))
    for phase in (first, second, third):
        if phase is third:
            steps = {specs[i].seed: out[i]["steps"] for i in second}
            if third and not steps:
                raise ConfigError("match_steps: needs a distilled variant in the same group")
        tasks = []
        for i in phase:
            s = specs[i]
            t = done[(s.teacher, s.seed, s.spurious)] if s.teacher else None
            tasks.append((s, world, (t["model_cfg"], t["state"]) if t else None,
                          steps.get(s.seed, 0) if phase is third else 0))
        for i, res in zip(phase, fan(tasks)):
            out[i] = done[key3(specs[i])] = res
    if progress:
        print(f"{len(specs)} runs in {time.perf_counter() - t0:.0f}s", flush=True)
    return [out[i] if i in out else done[key3(s)] for i, s in enumerate(specs)]


def make_specs(params: dict, base: RunConfig, variants: list[str], seeds: list[int],
               spurious: float, extra: dict | None = None, per_variant: dict | None = None,
               split_tables: dict | None = None, halve: bool = False) -> list[RunSpec]:
    """Specs of ``variants`` × ``seeds`` from ``params.yaml``'s ``variants`` section.

    Args:
        params: the raw params mapping; base: the component sections (typed).
        extra: dotted overrides applied to every run.
        per_variant: ``{variant: {dotted: value}}`` applied after ``extra`` (the tuned values,
            ``tune.json``'s ``chosen``); a variant's own keys win over both (ρ = 0 control).
        split_tables: ``{seed: image,split rows}`` replacing the world's split files (tuning).
        halve: the knob's half of the training part at strength 0 too (see RunSpec).
    """
    table = params.get("variants") or {}
    specs = []
    for v in variants:
        if v not in table:
            raise ConfigError(f"study: unknown variant {v!r} (known: {', '.join(table)})")
        over, study = split_variant(table[v])
        for seed in seeds:
            cfg = override(base, {**(extra or {}), **(per_variant or {}).get(v, {}),
                                  **flatten(over), "shared.seed": seed,
                                  "train.split": seed, "world.spurious": spurious})
            specs.append(RunSpec(v, seed, cfg, spurious, study.get("teacher", ""),
                                 bool(study.get("match_steps", False)),
                                 (split_tables or {}).get(seed), halve))
    return specs


def summary_row(res: dict) -> dict:
    """A run's metrics without its weights (what the result JSON stores)."""
    return {k: v for k, v in res.items() if k not in ("state", "model_cfg", "_key")}
