"""The tuner (stage ``tune``): every ``auto`` knob chosen on validation SRCC, never on test.

``params.yaml``'s ``study`` section::

    study:
      features: efficientnet_lite0       # the cached tokens (data/features/<name>.safetensors)
      seeds: [0, 1, ..., 9]               # paired seeds = content splits
      workers: 2                          # processes (one thread each)
      tune:
        seeds: [100, 101]                 # tuning seeds (their own splits: tuning_split)
        extend: 2                         # grid extensions per knob when the best is at an edge
        lr: {variants: [baseline, gate, ...], grid: [...]}  # one rate per architecture
        rho: {variants: gate_qfm, grid: [...]}  # then λ_qfm, τ (QFM), λ_kd (students)
      groups:                             # stage study@<group>
        main: {spurious: 0.0, variants: [baseline, gate, gate_qfm, full, ...]}

:func:`tune` chooses every tunable knob (:data:`qfm.knobs.KNOBS`) that params.yaml leaves
at ``auto``, on **validation SRCC** (mean over the tuning seeds), one knob at a time with the
same kind of grid each: the learning rate once per *architecture* (a variant's ``model``
overrides: baseline, gate, gate_static, gate_params — every other variant takes the rate of
the architecture it is built on), then ρ, λ_qfm (0 in the grid) and τ on ``gate_qfm``, then
λ_kd on ``full`` (its teacher ``gate_qfm`` at the values just chosen). A chosen value at an
edge of its grid extends the grid one step that way and tries again (``extend`` times at
most; 0 is a bound, never crossed; ρ, whose 0 is the off switch, still at its lowest value
after them tries 0); a knob's targets (e.g. the four architectures' rates) tune side by
side, each round's trials in one pool of workers. A QFM knob whose turn comes after λ_qfm = 0
was chosen is moot (every value trains the same runs) and recorded so, not tuned. Runs that
would train identically run once (:func:`qfm.study.runner.run_key`). A knob params.yaml sets to
a number is fixed: not tuned, recorded as ``fixed by params.yaml``. The tuning runs train and validate on their own splits
(:func:`tuning_split`), whose validation contents are never a test content of a reported
seed; nothing here reads a test number. :func:`run_group` runs a group with each variant's
chosen values and writes one row per run; the group ``main`` also stores the head of the full
QFM-IQM run with the best validation SRCC (the default model's head).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from qfm import paths
from qfm.config import ConfigError, flatten, read_params, split_variant, to_dict
from qfm.files import write_json
from qfm.knobs import BY_KEY, BY_NAME, KNOBS, auto_keys
from qfm.study.run import summary_row
from qfm.study.runner import make_specs, run_specs
from qfm.study.stages import base_config, features_path, reported_seeds, study_params

MOOT = "moot: λ_qfm = 0 was chosen (QFM's term is off)"  # a QFM knob tuned after that


def tuning_split(world: str | Path, reported: list[int], seed: int,
                 train_fraction: float) -> tuple[pd.DataFrame, dict]:
    """The split a tuning run trains and validates on.

    Every content of the world is a test content of *some* reported seed's split unless it is
    kept out: validation here is the in-world contents that no reported seed tests on, so a
    tuned value is never chosen on a content it is later tested on. Training is a seeded
    sample (``train_fraction`` of the in-world contents, as the reported splits) of the rest;
    there is no test part.

    Args:
        world: the world folder (``table.csv``, ``splits/split_k.csv``).
        reported: the reported seeds (their split files are read).
        seed: the tuning seed (draws the training sample).
        train_fraction: ``world.split[0]``.
    Returns:
        (``image,split`` rows, a record: contents per part and why the split is leak-free).
    """
    world = Path(world)
    table = pd.read_csv(world / "table.csv", dtype={"content": str})[["image", "content"]]
    part_of = {}
    for k in reported:
        split = pd.read_csv(world / "splits" / f"split_{k}.csv", dtype=str)
        part_of[k] = table.merge(split, on="image")
    inworld = sorted(set().union(*[set(f.loc[f["split"] != "heldout", "content"])
                                   for f in part_of.values()]))
    tested = set().union(*[set(f.loc[f["split"] == "test", "content"])
                           for f in part_of.values()])
    val = [c for c in inworld if c not in tested]
    rest = [c for c in inworld if c in tested]
    if len(val) < 2:
        raise ConfigError(f"study.tune: only {len(val)} content(s) are no reported seed's test "
                          f"content; fewer reported seeds or a larger world are needed")
    n_train = min(len(rest), max(1, int(round(train_fraction * len(inworld)))))
    rng = np.random.default_rng(seed)
    train = sorted(rng.choice(rest, n_train, replace=False).tolist())
    part = {**{c: "train" for c in train}, **{c: "val" for c in val}}
    rows = table[table["content"].isin(part)].assign(
        split=lambda d: d["content"].map(part))[["image", "split"]].reset_index(drop=True)
    record = {"train_contents": len(train), "val_contents": len(val),
              "in_world_contents": len(inworld), "reported_seeds": list(reported),
              "why": "validation = the in-world contents that are a test content of no "
                     "reported seed; training = a seeded sample of the others; no test part"}
    return rows, record


def grid_step(grid: list[float], up: bool, key: str, last: bool = False) -> float | None:
    """The next value beyond an edge of ``grid`` (geometric), or None at a bound; once the
    extensions are spent (``last``), only a knob whose 0 is its off switch goes on: to 0."""
    if last:
        off = BY_KEY[key].off
        return off if not up and off is not None and grid[0] > off else None
    if up:
        hi, prev = grid[-1], grid[-2] if len(grid) > 1 else 0.0
        new = hi * hi / prev if prev > 0 else 3 * hi if hi > 0 else None
        upper = BY_KEY[key].upper
        if new is not None and upper is not None:
            new = min(new, upper) if hi < upper else None
        return new
    lo, nxt = grid[0], grid[1] if len(grid) > 1 else 0.0
    return lo * lo / nxt if lo > 0 and nxt > lo else None  # 0 (the off switch) is a bound


def tune(params_path: str | Path, out: str | Path, progress: bool = True,
         study: dict | None = None, source=None) -> dict:
    """Tune every ``auto`` knob on validation (see the module docstring for the order).

    Args:
        study: a study section to use instead of params.yaml's ``study`` (a real data set's).
        source: a real data set (:class:`qfm.study.real.RealSource`) instead of the world.

    Returns:
        ``{"chosen": {variant: {dotted key: value}}, "knobs": [...], "trials": [...],
        "seeds": [...], "split": {...}}``, also written to ``out``. ``chosen`` holds, for
        every variant of params.yaml, the tuned values it runs with (its learning rate is its
        architecture's; QFM knobs only where QFM is on; λ_kd only for students); ``knobs``
        one record per tuned (or fixed) knob and target.
    """
    raw = read_params(params_path)
    st = study_params(raw if study is None else {"study": study})
    base = base_config(params_path, st)
    tn = st["tune"]
    seeds = list(tn["seeds"])
    smoke, auto = base.shared.smoke, set(auto_keys(raw))
    table = raw.get("variants") or {}
    world = paths.world_dir() if source is None else source
    tables, split_rec = {}, {}
    for s in seeds:
        tables[s], split_rec = tuning_split(world, reported_seeds(st, smoke), s,
                                            base.world.split[0]) if source is None else \
            source.tuning_split(reported_seeds(st, smoke), s)
    arch = {v: json.dumps(split_variant(e)[0].get("model", {}), sort_keys=True)
            for v, e in table.items()}
    probe = {v: make_specs(raw, base, [v], [0], 0.0)[0] for v in table}
    current = {k: v for k, v in flatten(to_dict(base)).items() if k in BY_KEY}
    lr_of: dict[str, float] = {}  # architecture → tuned learning rate

    def context(v: str) -> dict:  # the knob values a trial of variant v runs with
        cfg, ctx = probe[v].cfg, {"train.lr": lr_of.get(arch[v], current["train.lr"])}
        if cfg.qfm.enabled:
            ctx.update({k.key: current[k.key] for k in KNOBS if k.part == "qfm"})
        if probe[v].teacher:
            ctx.update({k.key: current[k.key] for k in KNOBS if k.part == "distill"})
        return ctx

    trials, memo, runs_memo = [], {}, {}  # runs_memo: run key → run (run_specs dedupes)
    teachers = {probe[v].teacher for v in table if probe[v].teacher}

    def run(items: list[tuple[str, dict]]) -> list[list[dict]]:
        """Each (variant, knob values)'s runs over the tuning seeds, trained in one pool."""
        ks = [(v, tuple(sorted(ctx.items()))) for v, ctx in items]
        todo = list({k: (v, ctx) for k, (v, ctx) in zip(ks, items) if k not in memo}.items())
        tv = sorted({probe[v].teacher for _, (v, _) in todo if probe[v].teacher})
        given = {(t, s, 0.0): r for t, res in zip(tv, run([(t, context(t)) for t in tv])
                                                  if tv else []) for s, r in zip(seeds, res)}
        specs = [sp for _, (v, ctx) in todo for sp in make_specs(
            raw, base, [v], seeds, 0.0, per_variant={v: ctx}, split_tables=tables,
            halve=bool(st.get("halve", False)))]
        res = run_specs(specs, features_path(st), str(world) if source is None else source,
                        st.get("workers", 2), progress, given=given, memo=runs_memo) \
            if specs else []
        for j, (k, (v, _)) in enumerate(todo):
            part = res[j * len(seeds):(j + 1) * len(seeds)]
            memo[k] = part if v in teachers else [summary_row(r) for r in part]
        return [memo[k] for k in ks]

    def trial(knob: str, items: list[tuple[str, dict]]) -> list[float]:
        reused = [(v, tuple(sorted(c.items()))) in memo for v, c in items]  # earlier trials'
        vals = []
        for (v, ctx), rows, again in zip(items, run(items), reused):
            again = again or all("same_as" in r for r in rows)  # e.g. λ_qfm = 0: the gate's
            vals.append(float(np.mean([r["val_srcc"] for r in rows])))
            trials.append({"knob": knob, "variant": v, **ctx, "val_srcc": vals[-1],
                           "reused": again, "val_curves": [r["val_curve"] for r in rows],
                           "best_is_last": float(np.mean([r["best_is_last"] for r in rows]))})
        return vals

    knobs = []
    for name, key in ((k.name, k.key) for k in BY_NAME.values()):
        if name not in tn:
            continue
        targets = tn[name]["variants"]
        targets = [targets] if isinstance(targets, str) else list(targets)
        if key not in auto:
            knobs.append({"knob": key, "on": targets, "value": current[key],
                          "status": "fixed by params.yaml"})
            continue
        active = []  # a knob's targets tune side by side: each round's trials in one pool
        for v in targets:
            if v not in table:
                raise ConfigError(f"study.tune.{name}.variants: unknown variant {v!r}")
            if key.startswith("qfm.") and key != "qfm.lambda_qfm" and \
                    probe[v].cfg.qfm.enabled and \
                    float(context(v)["qfm.lambda_qfm"]) == BY_KEY["qfm.lambda_qfm"].off:
                knobs.append({"knob": key, "on": v, "value": current[key], "status": MOOT})
                continue  # every value would train the same runs (QFM's term is off)
            grid = sorted(set(float(x) for x in tn[name]["grid"]))
            active.append({"v": v, "grid": grid[:1] if smoke else grid, "scores": {},
                           "added": [], "open": True})
        rounds = 0 if smoke else int(tn.get("extend", 2))
        for rnd in range(2 + rounds):  # the round after the extensions only tries 0
            todo = [(a, g) for a in active if a["open"] for g in a["grid"]
                    if g not in a["scores"]]
            vals = trial(key, [(a["v"], {**context(a["v"]), key: g}) for a, g in todo])
            for (a, g), val in zip(todo, vals):
                a["scores"][g] = val
            for a in (a for a in active if a["open"]):
                grid = a["grid"]
                a["best"] = best = max(grid, key=lambda g: a["scores"][g])  # ties: smaller
                a["edge"] = edge = "" if len(grid) < 2 or grid[0] < best < grid[-1] else \
                    ("lower" if best == grid[0] else "upper")
                new = grid_step(grid, edge == "upper", key, rnd >= rounds) if edge else None
                a["open"] = new is not None
                if a["open"]:
                    a["added"].append(new)
                    a["grid"] = sorted(grid + [new])
        for a in active:
            if key == "train.lr":
                lr_of[arch[a["v"]]] = a["best"]
            else:
                current[key] = a["best"]
            knobs.append({"knob": key, "on": a["v"], "value": a["best"], "status": "tuned",
                          "grid": sorted(a["scores"]), "extended": a["added"],
                          "at_edge": a["edge"]})
    chosen = {v: context(v) for v in table}
    for v, ctx in chosen.items():  # knobs params.yaml fixes are the base's: not "chosen"
        for k in [k for k in ctx if k not in auto]:
            del ctx[k]
        if arch[v] not in lr_of:
            ctx.pop("train.lr", None)
    result = {"chosen": chosen, "knobs": knobs, "seeds": seeds, "split": split_rec,
              "trials": trials, "selected_on": "validation SRCC, mean over the tuning seeds"}
    write_json(result, out)
    return result


