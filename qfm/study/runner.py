"""The study's runner: many runs (variants × paired seeds), fanned out, each once.

Specs come from ``params.yaml``'s ``variants`` (:func:`make_specs`); :func:`run_specs` runs
plain runs first, then students (their teachers' weights passed on), then steps-matched
controls; runs that would train identically (:func:`run_key`) run once. Runs fan out over
``workers`` processes (one thread each), seeded: the fan-out changes nothing. One run:
:mod:`qfm.study.run`.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from qfm.config import ConfigError, RunConfig, flatten, override, split_variant, to_dict
from qfm.knobs import qfm_term_off, row_values
from qfm.study.run import RunSpec, load_run_data, summary_row, train_run
from qfm.study.tokens import FeatureBank

__all__ = ["RunSpec", "load_run_data", "make_specs", "run_key", "run_specs", "summary_row",
           "train_run"]


def run_key(spec: RunSpec, teacher_key: str = "", steps: int = 0) -> str:
    """What decides a run's numbers. A QFM term with λ_qfm = 0 adds 0 × L_qfm to the loss: the
    same gradients, batches and initialisation as with QFM off (tested bit for bit), so its
    ``qfm`` section is written as off. Two specs with one key train identically: one run
    serves both (:func:`run_specs`)."""
    cfg = to_dict(spec.cfg)
    if qfm_term_off(cfg["qfm"]):
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
            **row_values(spec.cfg, bool(spec.teacher)), "same_as": res.get("same_as", res["variant"])}


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
